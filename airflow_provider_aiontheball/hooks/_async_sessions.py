"""What the triggers of one event loop share: an ``aiohttp.ClientSession`` per base URL, and settings.

**Sessions.** One shared ``aiohttp.ClientSession`` per (event loop, base URL), reference-counted.

The triggerer runs every deferred wait as a coroutine in one event loop. A session per poll (what
the HTTP-based providers do) pays a new connection pool, TCP handshake and TLS setup for every
request: measured here at about 3x the CPU per request. Instead, every trigger of the loop that
talks to the same base URL borrows the same session with a bounded, keep-alive connection pool.

The session carries no credentials: the ``Authorization`` header is set per request, so two
connections with different tokens can share it without seeing each other's token. It is created
lazily by the first user and closed when its last user releases it.

**Proxies.** The session honours ``HTTP_PROXY``/``HTTPS_PROXY``/``ALL_PROXY``/``NO_PROXY`` (and
the lowercase forms) exactly as ``requests`` (the sync hook) does: :func:`proxy_from_env` asks
``requests``' own resolution once, when the session is created (a session serves one base URL and
never follows redirects), and hands the result to aiohttp as the session's proxy. We do not set
aiohttp's ``trust_env``: besides proxies it reads ``~/.netrc`` (or ``$NETRC``) for Basic-auth
credentials of the API host, which makes every request fail ("Cannot combine AUTHORIZATION header
with AUTH argument") next to our ``Authorization: Bearer`` header, and it resolves proxy and netrc
again in a worker thread on every request.

**Settings.** A triggerer restart resumes hundreds of waits at once; each would fetch the same
connection (on Airflow 3 a round trip through the supervisor) and parse it. The resolved settings
of a connection are shared per event loop for a minute, fetched once even when many triggers ask at
the same moment; a changed token or host is picked up within that minute, and at once by a hook
whose request the API refused (401/403): it reloads through :meth:`SharedSettings.refresh` and
retries once with the new token (token rotation never fails a running wait).
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from airflow_provider_aiontheball.defaults import DEFAULT_POOL_LIMIT

if TYPE_CHECKING:
    import aiohttp

    from airflow_provider_aiontheball.hooks._client import ClientSettings

#: Keep idle connections longer than the longest poll interval we use by default (60 s).
KEEPALIVE_SECONDS = 75.0


def proxy_from_env(url: str) -> str | None:
    """The proxy ``requests`` would use for ``url`` given the environment, or ``None`` (direct).

    ``requests``' own functions, so both hooks agree: lowercase variables win over uppercase,
    ``NO_PROXY`` may list hosts, domain suffixes, ``host:port``, CIDR blocks or ``*``, and
    ``ALL_PROXY`` is the fallback. Credentials in the proxy URL are sent as ``Proxy-Authorization``;
    ``~/.netrc`` is never read.
    """
    from requests.utils import get_environ_proxies, prepend_scheme_if_needed, select_proxy

    proxy = select_proxy(url, get_environ_proxies(url))
    return prepend_scheme_if_needed(proxy, "http") if proxy else None


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
            # Proxies from the environment, as requests honours them, but without trust_env=True:
            # that would also read ~/.netrc for the API host and break (or replace) our Bearer
            # header, and re-resolve in a thread per request (see the module docstring).
            # A session-wide ``proxy`` needs aiohttp 3.11 (pyproject's floor).
            session = aiohttp.ClientSession(
                connector=connector, raise_for_status=False, trust_env=False, proxy=proxy_from_env(base_url)
            )
            entry = _Entry(session)
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

    async def refresh(
        self, key: Hashable, load: Callable[[], Awaitable[ClientSettings]], stale: ClientSettings
    ) -> ClientSettings:
        """Settings loaded anew, bypassing the minute of sharing: after the API refused ``stale``'s token.

        When 1,000 waits see the same revoked token, the first reloads and the others get its result:
        a refresh that already replaced ``stale`` (or is in flight) is shared, not repeated.
        """
        loop = asyncio.get_running_loop()
        entries = self._by_loop.setdefault(loop, {})
        entry = entries.get(key)
        if entry is not None:
            if not entry.task.done():
                return await self.get(key, load)
            if not entry.task.cancelled() and entry.task.exception() is None and entry.task.result() is not stale:
                return entry.task.result()
            del entries[key]
        return await self.get(key, load)


shared_settings = SharedSettings()
