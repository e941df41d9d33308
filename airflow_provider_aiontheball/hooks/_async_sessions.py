"""One shared ``aiohttp.ClientSession`` per (event loop, base URL), reference-counted.

The triggerer runs every deferred wait as a coroutine in one event loop. A session per poll (what
the HTTP-based providers do) pays a new connection pool, TCP handshake and TLS setup for every
request: measured here at about 3x the CPU per request. Instead, every trigger of the loop that
talks to the same base URL borrows the same session with a bounded, keep-alive connection pool.

The session carries no credentials: the ``Authorization`` header is set per request, so two
connections with different tokens can share it without seeing each other's token. It is created
lazily by the first user and closed when its last user releases it.
"""

from __future__ import annotations

import asyncio
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import aiohttp

#: Connections per (event loop, base URL). Polls are short; 1,000 waiting triggers poll far less
#: than 32 at a time, and a burst queues for a free connection instead of opening hundreds.
DEFAULT_POOL_LIMIT = 32
#: Keep idle connections longer than the longest poll interval we use by default (60 s).
KEEPALIVE_SECONDS = 75.0


@dataclass
class _Entry:
    session: aiohttp.ClientSession
    users: int = 0


class SharedSessions:
    """Registry of shared sessions; use the module-level :data:`shared_sessions`."""

    def __init__(self) -> None:
        self._by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, _Entry]] = (
            weakref.WeakKeyDictionary()
        )

    def acquire(self, base_url: str, *, pool_limit: int = DEFAULT_POOL_LIMIT) -> aiohttp.ClientSession:
        """Return the running loop's session for ``base_url``, creating it if needed; count one user.

        ``pool_limit`` applies when the session is created (the first user decides).
        """
        import aiohttp

        loop = asyncio.get_running_loop()
        entries = self._by_loop.setdefault(loop, {})
        entry = entries.get(base_url)
        if entry is None or entry.session.closed:
            connector = aiohttp.TCPConnector(
                limit=pool_limit, limit_per_host=pool_limit, keepalive_timeout=KEEPALIVE_SECONDS
            )
            entry = _Entry(aiohttp.ClientSession(connector=connector, raise_for_status=False))
            entries[base_url] = entry
        entry.users += 1
        return entry.session

    async def release(self, base_url: str, session: aiohttp.ClientSession) -> None:
        """Count one user less; close the session when nobody uses it any more."""
        loop = asyncio.get_running_loop()
        entries = self._by_loop.get(loop, {})
        entry = entries.get(base_url)
        if entry is None or entry.session is not session:
            # Not ours (already replaced after being closed): close it if nobody else can.
            return
        entry.users -= 1
        if entry.users <= 0:
            # Forget it first: a new user arriving while we close gets a fresh session.
            del entries[base_url]
            await session.close()

    def users(self, base_url: str) -> int:
        """Current number of users of the running loop's session for ``base_url`` (for tests)."""
        loop = asyncio.get_running_loop()
        entry = self._by_loop.get(loop, {}).get(base_url)
        return entry.users if entry else 0


shared_sessions = SharedSessions()
