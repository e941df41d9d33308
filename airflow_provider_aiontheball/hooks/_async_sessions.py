"""What the triggers of one event loop share: an ``aiohttp.ClientSession`` per base URL, and settings.

**Sessions.** One shared ``aiohttp.ClientSession`` per (event loop, base URL), reference-counted.

The triggerer runs every deferred wait as a coroutine in one event loop. A session per poll (what
the HTTP-based providers do) pays a new connection pool, TCP handshake and TLS setup for every
request: measured here at about 3x the CPU per request. Instead, every trigger of the loop that
talks to the same base URL borrows the same session with a bounded, keep-alive connection pool.

The session carries no credentials: the ``Authorization`` header is set per request, so two
connections with different tokens can share it without seeing each other's token. It is created
lazily by the first user and closed when its last user releases it.

**Settings.** A triggerer restart resumes hundreds of waits at once; each would fetch the same
connection (on Airflow 3 a round trip through the supervisor) and parse it. The resolved settings
of a connection are shared per event loop for a minute, fetched once even when many triggers ask at
the same moment; a changed token or host is picked up within that minute.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import aiohttp

    from airflow_provider_aiontheball.hooks._client import ClientSettings

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

#: Seconds a loaded connection's settings are shared before the next trigger fetches them again.
SETTINGS_TTL_SECONDS = 60.0


@dataclass
class _Loaded:
    task: asyncio.Task[ClientSettings]
    expires: float


class SharedSettings:
    """Per event loop, the settings of each connection: loaded once, shared for a minute."""

    def __init__(self, ttl: float = SETTINGS_TTL_SECONDS) -> None:
        self.ttl = ttl
        self._by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[Hashable, _Loaded]] = (
            weakref.WeakKeyDictionary()
        )

    async def get(self, key: Hashable, load: Callable[[], Awaitable[ClientSettings]]) -> ClientSettings:
        """The settings for ``key``, from a load still fresh, in flight, or started now."""
        loop = asyncio.get_running_loop()
        entries = self._by_loop.setdefault(loop, {})
        entry = entries.get(key)
        if entry is None or loop.time() >= entry.expires:

            async def load_settings() -> ClientSettings:
                return await load()

            entry = _Loaded(loop.create_task(load_settings()), loop.time() + self.ttl)
            entries[key] = entry
        try:
            # shield: a cancelled trigger must not cancel the load other triggers are waiting for.
            return await asyncio.shield(entry.task)
        except Exception:
            if entries.get(key) is entry:
                del entries[key]  # a failed load is not shared: the next trigger tries again
            raise


shared_settings = SharedSettings()
