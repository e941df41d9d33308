"""What the triggers of one event loop share: a session per base URL, settings and a request budget.

One ``aiohttp.ClientSession`` per (event loop, base URL), reference-counted, without credentials, its
proxy resolved from the environment as ``requests`` does (never ``trust_env``); a connection's settings
shared per event loop and refreshed after a refused token; one :class:`RequestBudget` per (event loop,
connection id) that pauses every request, in this triggerer, on a connection the server asked to back
off. Why each, and how: see docs/internals.md, "What the triggers of one event loop share".
"""

from __future__ import annotations

import asyncio
import math
import time
import weakref
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from airflow_provider_aiontheball.defaults import DEFAULT_POOL_LIMIT, KEEPALIVE_SECONDS, SETTINGS_TTL_SECONDS
from airflow_provider_aiontheball.polling import DEFAULT_JITTER, Jitter

if TYPE_CHECKING:
    import aiohttp

    from airflow_provider_aiontheball.hooks._client import ClientSettings


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
            # Proxies from the environment as requests honours them, never trust_env=True (its netrc would break
            # our Bearer header): docs/internals.md, "What the triggers of one event loop share". aiohttp >= 3.11.
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


class RequestBudget:
    """One connection's request budget in one event loop: a shared pause after 429, and an optional cap.

    Use :data:`request_budgets` (one per event loop and connection id); build one directly only in tests.

    :param max_per_second: the most requests per second let through, spaced at least ``1 / max_per_second``
        apart; ``None`` for no cap. Default: none.
    :param clock: monotonic clock, injectable for tests. Default ``time.monotonic`` (the event loop's clock).
    :param sleep: how to wait, injectable for tests. Default ``asyncio.sleep``: never blocks the loop.
    :param jitter: spreads the held-back requests after a pause (:meth:`Jitter.spread
        <airflow_provider_aiontheball.polling.Jitter.spread>`). Default: the shared ``polling.DEFAULT_JITTER``.
    """

    def __init__(
        self,
        max_per_second: float | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
        jitter: Jitter | None = None,
    ) -> None:
        self._clock = clock
        self._sleep = sleep
        self._jitter = jitter if jitter is not None else DEFAULT_JITTER
        self._max_per_second: float | None = None
        self._interval = 0.0
        self.set_rate(max_per_second)
        self._paused_until = -math.inf
        self._pause_seconds = 0.0
        #: When the current (or last) pause began, on ``clock``; ``None`` before the first one.
        self.paused_at: float | None = None
        self._last_grant = -math.inf
        self._turn = asyncio.Lock()  # bound to the running loop at first use (Python >= 3.10)

    @property
    def max_per_second(self) -> float | None:
        return self._max_per_second

    def set_rate(self, max_per_second: float | None) -> None:
        """Change the cap (the connection's settings are reloaded every minute); ``None`` removes it."""
        if max_per_second is not None and not (math.isfinite(max_per_second) and max_per_second > 0):
            raise ValueError(f"max_per_second must be a positive number, got {max_per_second!r}")
        self._max_per_second = max_per_second
        self._interval = 1.0 / max_per_second if max_per_second else 0.0

    def pause(self, seconds: float) -> bool:
        """Stop letting requests through for ``seconds`` from now (the server's ``Retry-After``).

        A pause never shortens one already running (a second 429 with a shorter wait changes nothing).

        :return: whether the pause now ends later than before (the caller logs it once, not per 429).
        """
        now = self._clock()
        until = now + seconds
        if until <= self._paused_until:
            return False
        if self._paused_until <= now:
            self.paused_at = now
        self._paused_until, self._pause_seconds = until, seconds
        return True

    def paused_for(self) -> float:
        """Seconds until the current pause ends (0 when not paused)."""
        return max(0.0, self._paused_until - self._clock())

    async def acquire(self) -> None:
        """Wait until a request may be sent: while paused, then for the cap's next turn."""
        while True:
            if (remaining := self.paused_for()) > 0:
                # Held back for as long as the pause, the waiters go out over as long a window after it:
                # at most as fast as they came due. All at its last instant, the server that just refused
                # a burst would get a bigger one. Never earlier than it asked.
                await self._sleep(remaining + self._jitter.spread(self._pause_seconds))
                continue
            if not self._interval:
                return
            async with self._turn:  # one at a time, first come first served (asyncio.Lock is FIFO)
                if (wait := self._last_grant + self._interval - self._clock()) > 0:
                    await self._sleep(wait)
                if self.paused_for() > 0:
                    continue  # paused while this waiter held the turn: wait for the pause like the others
                # Spaced by the time each request was let through, not by its reservation: a late wakeup
                # never lets the next one follow closer than 1 / max_per_second.
                self._last_grant = self._clock()
                return


class RequestBudgets:
    """Registry of request budgets per (event loop, connection id); use :data:`request_budgets`."""

    def __init__(self) -> None:
        self._by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, RequestBudget]] = (
            weakref.WeakKeyDictionary()
        )

    def get(self, conn_id: str, max_per_second: float | None = None) -> RequestBudget:
        """The running loop's budget for ``conn_id``, created if needed, its cap set to ``max_per_second``
        (the connection's current ``max_requests_per_second``)."""
        entries = self._by_loop.setdefault(asyncio.get_running_loop(), {})
        budget = entries.get(conn_id)
        if budget is None:
            budget = entries[conn_id] = RequestBudget(max_per_second)
        elif budget.max_per_second != max_per_second:
            budget.set_rate(max_per_second)
        return budget


request_budgets = RequestBudgets()
