"""The transport-independent half of the API client, shared by the sync and the async hook.

Everything that must be decided the same way whether a request goes out through ``requests`` (tasks)
or ``aiohttp`` (the triggerer) lives here, once: settings, requests, response interpretation, the retry
policy, outcome-unknown POSTs, pagination. Nothing here performs I/O or imports an HTTP library. See
docs/internals.md, "The hooks and their shared client".
"""

from __future__ import annotations

import email.utils
import ipaddress
import json
import math
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import parse_qsl, urlsplit

from airflow_provider_aiontheball import __version__
from airflow_provider_aiontheball.defaults import (
    CONN_TYPE,
    DEFAULT_BASE_URL,
    DEFAULT_CONN_ID,
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_MAX_RESPONSE_MB,
    DEFAULT_PREFLIGHT,
    DEFAULT_READ_TIMEOUT,
    DEFAULT_RETRY_LIMIT,
    DEFAULT_RETRY_MAX_WAIT,
    DEFAULT_RETRY_MIN_WAIT,
    MAX_DOWNLOAD_REDIRECTS,
    MAX_LIST_PAGES,
    RETRY_AFTER_CAP_SECONDS,
    RETRY_AFTER_FLOOR_SECONDS,
)
from airflow_provider_aiontheball.exceptions import (
    AIOnTheBallAPIError,
    AIOnTheBallConfigurationError,
    AIOnTheBallInvalidResponseError,
    AIOnTheBallTimeoutError,
    AIOnTheBallTransportError,
    api_error_class,
    describe_failure,
    truncate,
)

if TYPE_CHECKING:
    import tenacity


USER_AGENT = f"airflow-provider-aiontheball/{__version__}"
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
#: Statuses retried for any request: the server refused to process it, so re-sending is safe.
#: Only 429 proves that: a rate limiter answers before the application runs.
RETRY_ANY_METHOD_STATUSES = frozenset({429})
#: Statuses retried only for idempotent requests. A 502/503/504 may come from a proxy after the
#: backend already carried out a POST (a video created, then "503 Service Unavailable").
RETRY_IDEMPOTENT_STATUSES = frozenset({502, 503, 504})

_LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})
_DEFAULT_PORTS = {"http": 80, "https": 443}


# --------------------------------------------------------------------------------------------------
# Settings: base URL, token, timeouts, retries, headers
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry a transient failure.

    :param retry_limit: retries after the first attempt (0 disables retrying).
    :param min_wait: first backoff step in seconds; it doubles per attempt.
    :param max_wait: cap of each backoff step and of a server's ``Retry-After``.
    """

    retry_limit: int = DEFAULT_RETRY_LIMIT
    min_wait: float = DEFAULT_RETRY_MIN_WAIT
    max_wait: float = DEFAULT_RETRY_MAX_WAIT

    def wait_seconds(self, attempt: int, retry_after: float | None, rng: Callable[[], float] = random.random) -> float:
        """Seconds to wait after failed ``attempt`` (1-based): the server's ``Retry-After`` if it gave
        one, else exponential backoff with jitter (between half and all of the step), capped."""
        if retry_after is not None:  # already within [1 s, 5 min] (parse_retry_after)
            return min(retry_after, self.max_wait)
        step = min(self.max_wait, self.min_wait * (2 ** (attempt - 1)))
        return step / 2 + rng() * step / 2


@dataclass(frozen=True)
class ClientSettings:
    """Everything a request needs besides its own method, path and body.

    Built from the Airflow connection (and constructor overrides) by :func:`resolve_settings`; the token
    is excluded from ``repr`` and redacted from any text we quote from a response.
    """

    conn_id: str
    base_url: str
    token: str = field(repr=False)
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    read_timeout: float = DEFAULT_READ_TIMEOUT
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    #: Connection extra ``max_requests_per_second``: the most requests per second all the triggers of one
    #: triggerer send on this connection together (``hooks/_async_sessions.RequestBudget``). ``None``: no
    #: cap. Tasks (the sync hook) do not apply it.
    max_requests_per_second: float | None = None
    #: Connection extra ``max_response_mb``: the largest response body read (decompressed), in bytes.
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_MB * 1024 * 1024
    #: Connection extra ``preflight``: whether the create-video operator checks a video before its POST when the
    #: task does not say (its ``preflight`` argument). Default true.
    preflight: bool = DEFAULT_PREFLIGHT

    def headers(self, *, has_body: bool) -> dict[str, str]:
        """The request headers; the only place ``Authorization`` is written."""
        headers = {
            "Authorization": f"Bearer {self.token}",
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
        }
        if has_body:
            headers["Content-Type"] = "application/json"
        return headers

    def url(self, path: str) -> str:
        return self.base_url + path

    @property
    def server(self) -> str:
        """``host:port`` of the base URL, for messages about connecting to it."""
        return host_and_port(self.base_url)

    def redact(self, text: str) -> str:
        """Remove the token from ``text`` (a server might echo it back in an error message)."""
        return text.replace(self.token, "***") if self.token else text


def host_and_port(url: str) -> str:
    """``host:port`` of ``url`` (the scheme's default port when it names none); never its path or query."""
    try:
        parts = urlsplit(url)
        port = parts.port or _DEFAULT_PORTS.get(parts.scheme.lower(), 443)
    except ValueError:
        return "(invalid URL)"
    host = parts.hostname or "(no host)"
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def is_loopback_host(hostname: str) -> bool:
    name = hostname.strip("[]").lower()
    if name in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def safe_url(raw: str) -> str:
    """``raw`` for messages: never its credentials, query or fragment (``validation.display_url``)."""
    from airflow_provider_aiontheball.validation import display_url

    return truncate(display_url(raw), 80)


def resolve_base_url(host: str | None, *, port: int | None = None, conn_id: str = DEFAULT_CONN_ID) -> str:
    """Return the API base URL for a connection's ``host`` (empty → the public API).

    ``host`` is normally a full base URL such as ``https://aiontheball.nl/api/v1``. A bare host name
    (what ``aiontheball://:token@host`` URIs produce) is taken as ``https://host[:port]/api/v1``.
    Plain ``http`` is refused unless the host is loopback (the simulator): the bearer token would
    otherwise cross the network in clear text.
    """
    raw = (host or "").strip()
    if not raw:
        return DEFAULT_BASE_URL
    if "://" not in raw:
        netloc, _, path = raw.partition("/")
        if port:
            netloc = f"{netloc}:{port}"
        raw = f"https://{netloc}/{path or 'api/v1'}"
    where = f"Connection {conn_id!r}: base URL (host field)"
    try:
        parts = urlsplit(raw)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError as exc:
        raise AIOnTheBallConfigurationError(
            f"{where} is not a valid URL ({exc}); expected e.g. {DEFAULT_BASE_URL}"
        ) from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        raise AIOnTheBallConfigurationError(
            f"{where} must be an absolute https:// URL such as {DEFAULT_BASE_URL}, got {safe_url(raw)!r}"
        )
    if parts.query or parts.fragment:
        raise AIOnTheBallConfigurationError(f"{where} must not contain a query or fragment: {safe_url(raw)!r}")
    if parts.username or parts.password:
        raise AIOnTheBallConfigurationError(
            f"{where} must not contain credentials; put the API token in the password field"
        )
    if scheme == "http" and not is_loopback_host(parts.hostname):
        raise AIOnTheBallConfigurationError(
            f"{where} uses plain http for {parts.hostname!r}, which would send the API token in clear "
            "text; use https:// (plain http is only accepted for loopback hosts such as the simulator)"
        )
    return f"{scheme}://{parts.netloc}{parts.path.rstrip('/')}"


def _extra_value(extra: Mapping[str, Any], name: str) -> Any:
    # Airflow 2's connection form stored extras as ``extra__<conn_type>__<name>``; accept both.
    value = extra.get(name)
    if value in (None, ""):
        value = extra.get(f"extra__{CONN_TYPE}__{name}")
    return None if value in (None, "") else value


def _number(value: Any, name: str, conn_id: str, *, integer: bool = False, minimum: float = 0.0) -> float:
    try:
        if isinstance(value, bool):
            raise TypeError
        number = float(value)
        if integer and number != int(number):
            raise ValueError
    except (TypeError, ValueError):
        kind = "an integer" if integer else "a number"
        raise AIOnTheBallConfigurationError(
            f"Connection {conn_id!r}: {name} must be {kind}, got {truncate(repr(value), 40)}"
        ) from None
    if not math.isfinite(number) or number < minimum or (not integer and number == 0):
        raise AIOnTheBallConfigurationError(
            f"Connection {conn_id!r}: {name} must be a finite number greater than {minimum:g}, got {value!r}"
        )
    return number


def resolve_settings(
    conn_id: str,
    *,
    host: str | None,
    password: str | None,
    extra: Mapping[str, Any],
    port: int | None = None,
    timeout: float | tuple[float, float] | None = None,
    retry_limit: int | None = None,
    retry_min_wait: float | None = None,
    retry_max_wait: float | None = None,
) -> ClientSettings:
    """Combine a connection's fields with constructor overrides (which win) into :class:`ClientSettings`.

    :param timeout: read timeout in seconds, or a ``(connect, read)`` pair.
    """
    token = (password or "").strip()
    if not token:
        raise AIOnTheBallConfigurationError(
            f"Connection {conn_id!r} has no API token: put the token in the connection's password field"
        )
    base_url = resolve_base_url(host, port=port, conn_id=conn_id)

    def pick(override: Any, name: str) -> Any:
        return override if override is not None else _extra_value(extra, name)

    connect_timeout, read_timeout = float(DEFAULT_CONNECT_TIMEOUT), float(DEFAULT_READ_TIMEOUT)
    if isinstance(timeout, tuple):
        connect_timeout, read_timeout = (_number(t, "timeout", conn_id) for t in timeout)
    else:
        if (value := pick(timeout, "timeout")) is not None:
            read_timeout = _number(value, "timeout", conn_id)
        if (value := _extra_value(extra, "connect_timeout")) is not None:
            connect_timeout = _number(value, "connect_timeout", conn_id)
    policy = RetryPolicy()
    if (value := pick(retry_limit, "retry_limit")) is not None:
        policy = RetryPolicy(
            int(_number(value, "retry_limit", conn_id, integer=True)), policy.min_wait, policy.max_wait
        )
    if (value := pick(retry_min_wait, "retry_min_wait")) is not None:
        policy = RetryPolicy(policy.retry_limit, _number(value, "retry_min_wait", conn_id), policy.max_wait)
    if (value := pick(retry_max_wait, "retry_max_wait")) is not None:
        policy = RetryPolicy(policy.retry_limit, policy.min_wait, _number(value, "retry_max_wait", conn_id))
    # Validated here for both hooks, so a bad value fails a task as clearly as a trigger, before any request.
    max_rate = _extra_value(extra, "max_requests_per_second")
    max_mb = _extra_value(extra, "max_response_mb")
    max_bytes = DEFAULT_MAX_RESPONSE_MB if max_mb is None else _number(max_mb, "max_response_mb", conn_id)
    return ClientSettings(
        conn_id=conn_id,
        base_url=base_url,
        token=token,
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        retry=policy,
        max_requests_per_second=None if max_rate is None else _number(max_rate, "max_requests_per_second", conn_id),
        max_response_bytes=int(max_bytes * 1024 * 1024),
        preflight=_flag(_extra_value(extra, "preflight"), "preflight", conn_id, default=DEFAULT_PREFLIGHT),
    )


def _flag(value: Any, name: str, conn_id: str, *, default: bool) -> bool:
    """A boolean extra: ``true``/``false`` in JSON, or the strings a form or an env var gives."""
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    words = {"true": True, "1": True, "yes": True, "on": True, "false": False, "0": False, "no": False, "off": False}
    if isinstance(value, str | int) and str(value).strip().lower() in words:
        return words[str(value).strip().lower()]
    raise AIOnTheBallConfigurationError(
        f"Connection {conn_id!r}: {name} must be true or false, got {truncate(repr(value), 40)}"
    )


# --------------------------------------------------------------------------------------------------
# The server's clock
# --------------------------------------------------------------------------------------------------


class ServerClock:
    """The API server's time, learnt from the ``Date`` header of its responses (RFC 9110: whole seconds).

    A response whose ``Date`` says ``D`` was generated at server time ``D`` or later, and we received it
    after that: so at our local time ``t`` of receipt the server's clock read at least ``D``, and its offset
    from ours is at least ``D - t``. The largest such bound over every response is kept (:meth:`floor_at`
    never claims a server time that has not provably passed). The create operators compare it with the
    ``created_at`` the server lists, so their own clock's skew never matters.
    """

    def __init__(self, local: Callable[[], float] = time.time) -> None:
        #: This process's clock (epoch seconds); a test may put it ahead of or behind the server's.
        self.local = local
        self._offset_floor: float | None = None

    def observe(self, date_header: str | None, received_at: float | None = None) -> None:
        """Learn from one response's ``Date`` header, received at local epoch ``received_at`` (default: now)."""
        if received_at is None:
            received_at = self.local()
        if not date_header:
            return
        try:
            date = email.utils.parsedate_to_datetime(date_header)
        except (TypeError, ValueError, IndexError):
            return
        if date is None or date.tzinfo is None:  # RFC 9110 dates are GMT; a zone-less one is not trusted
            return
        offset = date.timestamp() - received_at
        if math.isfinite(offset) and (self._offset_floor is None or offset > self._offset_floor):
            self._offset_floor = offset

    def floor_at(self, local: float) -> float | None:
        """The earliest the server's clock can read at local epoch ``local``; ``None`` before any ``Date``."""
        return None if self._offset_floor is None else local + self._offset_floor


# --------------------------------------------------------------------------------------------------
# Requests and responses
# --------------------------------------------------------------------------------------------------


class Envelope(Enum):
    """How an endpoint wraps its result (the API is not uniform: see reference §13)."""

    DATA = "data"  # {"data": ...}: videos, analyses
    DATA_OR_BARE = "data_or_bare"  # GET /analyses/{id} is undocumented: accept either (assumed)
    BARE = "bare"  # summary/schema objects, events/query-intervals arrays
    PAGE = "page"  # {"data": [...], "links": ..., "meta": ...}: returned whole for pagination
    NONE = "none"  # 204 No Content, or a streamed download


@dataclass(frozen=True)
class ApiRequest:
    """One API call: method, path relative to the base URL, query, JSON body and how to read the reply.

    :param idempotent: whether re-sending is harmless after the server may have received the request.
        Defaults from the method; ``POST /query-intervals`` is a read and sets it explicitly.
    """

    method: str
    path: str
    params: tuple[tuple[str, str], ...] = ()
    json_body: Mapping[str, Any] | None = None
    envelope: Envelope = Envelope.DATA
    idempotent: bool | None = None

    @property
    def is_idempotent(self) -> bool:
        return self.idempotent if self.idempotent is not None else self.method in IDEMPOTENT_METHODS

    @property
    def display(self) -> str:
        query = "&".join(f"{k}={v}" for k, v in self.params)
        return f"{self.method} {self.path}{'?' + query if query else ''}"

    def body_bytes(self) -> bytes | None:
        if self.json_body is None:
            return None
        return json.dumps(self.json_body, separators=(",", ":")).encode()


def connect_timeout_error(
    settings: ClientSettings, request: ApiRequest, url: str | None = None
) -> AIOnTheBallTimeoutError:
    """No connection within the connect timeout: the request never left, so it is safe to re-send.

    :param url: the URL it went to, when not the base URL (a download's redirect). Default: the base URL.
    """
    return AIOnTheBallTimeoutError(
        method=request.method,
        path=request.path,
        reason=f"no connection to {host_and_port(url or settings.base_url)} within {settings.connect_timeout:g} s "
        "(timed out)",
        may_have_reached_server=False,
    )


#: Why a connection could not be made, as :func:`connect_error` words it.
ConnectFailure = Literal["dns", "refused", "other"]


def connect_error(
    settings: ClientSettings, request: ApiRequest, kind: ConnectFailure, detail: str, url: str | None = None
) -> AIOnTheBallTransportError:
    """No connection could be made (the request never left): names ``host:port`` and what failed, so a wrong
    base URL, a down server and a firewall read differently. Both hooks classify their library's error
    into ``kind``; the words are chosen here, once."""
    server = host_and_port(url or settings.base_url)
    host = server.rsplit(":", 1)[0]
    reason = {
        "dns": f"could not resolve the host name {host} (DNS)",
        "refused": f"connection refused by {server}",
        "other": f"could not connect to {server}",
    }[kind]
    return AIOnTheBallTransportError(
        method=request.method,
        path=request.path,
        reason=truncate(settings.redact(f"{reason}: {detail}" if detail else reason), 200),
        may_have_reached_server=False,
    )


def body_too_large(settings: ClientSettings, request: ApiRequest, status: int) -> AIOnTheBallInvalidResponseError:
    """A response body past ``max_response_bytes`` (decompressed): its reading stopped there."""
    return AIOnTheBallInvalidResponseError(
        status_code=status,
        method=request.method,
        path=request.path,
        detail=f"the response body is larger than {settings.max_response_bytes / 1024 / 1024:g} MiB once "
        "decompressed; not read further (connection extra max_response_mb)",
    )


def redirect_target(
    settings: ClientSettings, request: ApiRequest, url: str, status: int, location: str | None, hops: int
) -> str:
    """Where a download's redirect leads: an absolute https URL (http only on loopback), at most
    ``MAX_DOWNLOAD_REDIRECTS`` hops. The caller sends no ``Authorization`` there: the token is for the API.

    :raises AIOnTheBallInvalidResponseError: a redirect that cannot be followed (message without the
        target's query: a CDN's signed URL).
    """
    from urllib.parse import urljoin

    def refuse(why: str) -> AIOnTheBallInvalidResponseError:
        return AIOnTheBallInvalidResponseError(
            status_code=status, method=request.method, path=request.path, detail=f"redirect not followed: {why}"
        )

    if not location:
        raise refuse(f"{status} without a Location header")
    if hops >= MAX_DOWNLOAD_REDIRECTS:
        raise refuse(f"more than {MAX_DOWNLOAD_REDIRECTS} redirects (the last to {safe_url(location)})")
    target = urljoin(url, location.strip())
    try:
        parts = urlsplit(target)
    except ValueError:
        raise refuse(f"its target {safe_url(location)} is not a valid URL") from None
    scheme = parts.scheme.lower()
    if (
        not parts.hostname
        or scheme not in ("https", "http")
        or (scheme == "http" and not is_loopback_host(parts.hostname))
    ):
        raise refuse(f"its target {safe_url(target)} is not an https URL")
    if parts.username or parts.password:
        raise refuse(f"its target {safe_url(target)} carries credentials")
    return target


def read_timeout_error(settings: ClientSettings, request: ApiRequest) -> AIOnTheBallTimeoutError:
    """No response within the read timeout: the server may have acted on the request."""
    return AIOnTheBallTimeoutError(
        method=request.method,
        path=request.path,
        reason=f"no response within {settings.read_timeout:g} s",
        may_have_reached_server=True,
    )


def transport_error(
    settings: ClientSettings, request: ApiRequest, reason: str, *, may_have_reached_server: bool
) -> AIOnTheBallTransportError:
    """Any other failure to get a response, with the reason cleaned of the token and cut short."""
    return AIOnTheBallTransportError(
        method=request.method,
        path=request.path,
        reason=truncate(settings.redact(reason), 200),
        may_have_reached_server=may_have_reached_server,
    )


def parse_retry_after(value: str | None, now: Callable[[], float] = time.time) -> float | None:
    """Seconds from a ``Retry-After`` header, given as delay-seconds or an HTTP date; ``None`` if absent/bad.

    Bounded to [``RETRY_AFTER_FLOOR_SECONDS``, ``RETRY_AFTER_CAP_SECONDS``] (1 s, 5 min): ``0`` or a date in
    the past (clock skew) would otherwise spend a wait's whole error budget in milliseconds.
    """
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None:
            return None
        seconds = when.timestamp() - now()
    if not math.isfinite(seconds):
        return None
    # The one place a server's wish is bounded, for the hooks' retries and the waits alike.
    return min(max(seconds, RETRY_AFTER_FLOOR_SECONDS), RETRY_AFTER_CAP_SECONDS)


def connection_backoff(status: int, retry_after: float | None) -> float | None:
    """Seconds every request on the connection should wait after an answer with ``status``, or ``None``.

    A 429 is about the client as a whole (its token or address), not one resource: every wait on the
    connection backs off, for the server's ``Retry-After`` or, without one, the floor of 1 s (a rate
    limiter that names no time still needs the burst broken). A 503 with ``Retry-After`` is the server
    saying when it will take requests again; a bare 503 (or any other error) says nothing about the
    other requests, and only the wait that saw it backs off.
    """
    if status == 429:
        return RETRY_AFTER_FLOOR_SECONDS if retry_after is None else retry_after
    if status == 503 and retry_after is not None:
        return retry_after
    return None


def _server_message(payload: Any) -> tuple[str | None, dict[str, list[str]]]:
    if not isinstance(payload, Mapping):
        return None, {}
    message = payload.get("message") or payload.get("error")
    errors: dict[str, list[str]] = {}
    raw_errors = payload.get("errors")
    if isinstance(raw_errors, Mapping):
        for name, messages in raw_errors.items():
            if isinstance(messages, list):
                errors[str(name)] = [str(m) for m in messages]
            else:
                errors[str(name)] = [str(messages)]
    return (str(message) if message is not None else None), errors


def _decode(body: bytes) -> str:
    return body.decode("utf-8", errors="replace")


def interpret_response(
    settings: ClientSettings,
    request: ApiRequest,
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    on_backoff: Callable[[float], object] | None = None,
) -> Any:
    """Turn one HTTP response into the endpoint's result, or raise the matching typed exception.

    :param on_backoff: called with the seconds of :func:`connection_backoff` when the answer asks the whole
        connection to wait (the async hook's shared request budget; the sync hook passes none). Default: none.
    """
    if not 200 <= status < 300:
        text = settings.redact(_decode(body))
        try:
            payload = json.loads(text) if text.strip() else None
        except ValueError:
            payload = None
        message, errors = _server_message(payload)
        if 300 <= status < 400:  # JSON endpoints never redirect. Neither the target nor a body that may
            # repeat it is quoted whole: a CDN's redirect carries a signature.
            location = headers.get("Location")
            detail = f"unexpected redirect to {safe_url(location) if location else '(no Location header)'}"
        elif errors:  # 422: "date: The date field must match the format Y-m-d."
            detail = "; ".join(f"{name}: {' '.join(msgs)}" for name, msgs in errors.items())
        elif message:
            detail = message
        elif text.strip():
            detail = text
        else:
            detail = "(empty response body)"
        error = api_error_class(status)(
            status_code=status,
            method=request.method,
            path=request.path,
            detail=truncate(settings.redact(detail)),
            errors={k: [truncate(settings.redact(m)) for m in v] for k, v in errors.items()},
            retry_after=parse_retry_after(headers.get("Retry-After")),
        )
        if on_backoff is not None and (seconds := connection_backoff(status, error.retry_after)) is not None:
            on_backoff(seconds)
        raise error
    if request.envelope is Envelope.NONE or status == 204:
        return None
    text = _decode(body)
    try:
        payload = json.loads(text)
    except ValueError:
        raise AIOnTheBallInvalidResponseError(
            status_code=status,
            method=request.method,
            path=request.path,
            detail=f"expected a JSON body, got {truncate(settings.redact(text), 120)!r}",
        ) from None
    return unwrap(payload, request, status, redact=settings.redact)


def unwrap(payload: Any, request: ApiRequest, status: int = 200, *, redact: Callable[[str], str] = str) -> Any:
    """Check the envelope the endpoint documents and return the caller's part of ``payload``.

    :param redact: applied to any text quoted from ``payload`` (the token must never be echoed).
    """

    def malformed(expected: str) -> AIOnTheBallInvalidResponseError:
        return AIOnTheBallInvalidResponseError(
            status_code=status,
            method=request.method,
            path=request.path,
            detail=f"expected {expected}, got {truncate(redact(json.dumps(payload)), 120)}",
        )

    if request.envelope is Envelope.DATA:
        if not isinstance(payload, Mapping) or not isinstance(payload.get("data"), Mapping):
            raise malformed('a JSON object {"data": {...}}')
        return without_url_secrets(payload["data"])
    if request.envelope is Envelope.DATA_OR_BARE:
        if isinstance(payload, Mapping) and isinstance(payload.get("data"), Mapping):
            return without_url_secrets(payload["data"])
        if isinstance(payload, Mapping) and "id" in payload:
            return without_url_secrets(payload)
        raise malformed('an object, bare or as {"data": {...}}')
    if request.envelope is Envelope.PAGE:
        if isinstance(payload, list) or (isinstance(payload, Mapping) and isinstance(payload.get("data"), list)):
            return payload
        raise malformed('a page {"data": [...], "links": ..., "meta": ...} or a JSON array')
    return payload


# --------------------------------------------------------------------------------------------------
# Pagination (the shape is undocumented; Laravel's links/meta assumed, a bare list accepted)
# --------------------------------------------------------------------------------------------------


def _same_server(link: Any, base: Any) -> bool:
    """Whether a pagination link names the base URL's server. Only its path and query are used (the
    request goes to the base URL), so a link that differs only by scheme or an explicit default port —
    Laravel behind a TLS-terminating proxy writes ``http://`` — is the same server."""
    if (link.hostname or "").lower() != (base.hostname or "").lower() or link.username or link.password:
        return False
    ports = {p for p in (link.port, base.port) if p is not None and p not in _DEFAULT_PORTS.values()}
    return len(ports) <= 1 and (link.port == base.port or not ports)


class PageGuard:
    """Ends a listing that would not end by itself, whatever the server's links say.

    An empty page ends it, and so does the last page ``meta.last_page`` announces. A page that repeats
    the previous page's items, a request repeated, or more than ``max_pages`` pages is an error: a
    listing that silently stopped early could hide the very video a create operator looks for.
    """

    def __init__(self, max_pages: int = MAX_LIST_PAGES) -> None:
        self.max_pages = max_pages
        self.pages = 0
        self._requests: set[str] = set()
        self._previous_ids: list[Any] | None = None

    def admit(self, request: ApiRequest, page: Any, items: list[dict[str, Any]]) -> bool:
        """Whether to use ``page``'s items and go on; raises for a listing that loops or never ends."""

        def looping(why: str) -> AIOnTheBallInvalidResponseError:
            return AIOnTheBallInvalidResponseError(
                status_code=200, method=request.method, path=request.path, detail=f"pagination does not end: {why}"
            )

        self.pages += 1
        if request.display in self._requests:
            raise looping(f"{request.display} was already listed")
        self._requests.add(request.display)
        if self.pages > self.max_pages:
            raise looping(f"more than {self.max_pages} pages")
        if not items:
            return False
        ids = [item.get("id") for item in items]
        if ids == self._previous_ids:
            raise looping(f"page {self.pages} repeats the items of page {self.pages - 1}")
        self._previous_ids = ids
        return True


def page_is_last(page: Any) -> bool:
    """Whether ``page`` says it is the last one (``meta.current_page >= meta.last_page``)."""
    meta = page.get("meta") if isinstance(page, Mapping) else None
    if not isinstance(meta, Mapping):
        return not isinstance(page, Mapping)  # a bare list is the only page
    current, last = meta.get("current_page"), meta.get("last_page")
    return isinstance(current, int) and isinstance(last, int) and current >= last


def page_items(page: Any) -> list[dict[str, Any]]:
    items = page if isinstance(page, list) else page.get("data", [])
    return [without_url_secrets(item) for item in items if isinstance(item, Mapping)]


def without_url_secrets(resource: Mapping[str, Any]) -> dict[str, Any]:
    """``resource`` with an echoed ``video_file_url`` (undocumented; some servers may) cut to scheme,
    host and path: a presigned URL's signature must not travel on into XCom, trigger events or logs.
    The one place both hooks read every video through."""
    data = dict(resource)
    url = data.get("video_file_url")
    if isinstance(url, str) and ("?" in url or "@" in url or "#" in url):
        from airflow_provider_aiontheball.validation import display_url

        data["video_file_url"] = display_url(url)
    return data


def next_page_request(settings: ClientSettings, request: ApiRequest, page: Any) -> ApiRequest | None:
    """The request for the page after ``page``, or ``None`` on the last (or only) page.

    Follows ``links.next`` when present (assumed Laravel shape). Falls back to ``meta.current_page`` /
    ``meta.last_page`` with ``?page=N``. A next link that leaves the base URL is refused: following it
    would send the token to another host.
    """
    if not isinstance(page, Mapping):
        return None  # a bare, unpaginated list
    links = page.get("links")
    next_url = links.get("next") if isinstance(links, Mapping) else None
    if isinstance(next_url, str) and next_url:
        try:
            parts = urlsplit(next_url)
            same_server = not parts.scheme or _same_server(parts, urlsplit(settings.base_url))
        except ValueError:
            parts, same_server = urlsplit(""), False
        base = urlsplit(settings.base_url)
        if not same_server or not parts.path.startswith(base.path):
            raise AIOnTheBallInvalidResponseError(
                status_code=200,
                method=request.method,
                path=request.path,
                detail=f"refusing to follow pagination link {truncate(next_url, 100)!r}: it leaves the base "
                "URL, and following it would send the API token elsewhere",
            )
        path = parts.path[len(base.path) :] or "/"
        return ApiRequest(request.method, path, tuple(parse_qsl(parts.query)), envelope=Envelope.PAGE)
    meta = page.get("meta")
    if isinstance(meta, Mapping):
        current, last = meta.get("current_page"), meta.get("last_page")
        if isinstance(current, int) and isinstance(last, int) and current < last:
            params = (*((k, v) for k, v in request.params if k != "page"), ("page", str(current + 1)))
            return ApiRequest(request.method, request.path, params, envelope=Envelope.PAGE)
    return None


# --------------------------------------------------------------------------------------------------
# Retry policy (tenacity), shared by requests.Session and aiohttp paths
# --------------------------------------------------------------------------------------------------


def is_retryable(exc: BaseException, request: ApiRequest) -> bool:
    """Whether the client should re-send ``request`` after ``exc``.

    429 means the server did not process the request: retried for every method. 502, 503 and 504 may
    come from a gateway after the backend processed the request: retried only when re-sending is
    harmless. A connection that was never established is always safe to retry; a reset or timeout
    after sending only for idempotent requests — a POST /videos is never blindly re-sent (see
    :func:`outcome_unknown`; the create operators look for what it may have created instead).
    400/401/403/404/409/422 are never retried.
    """
    if isinstance(exc, AIOnTheBallAPIError):
        if isinstance(exc, AIOnTheBallInvalidResponseError):
            return False
        if exc.status_code in RETRY_ANY_METHOD_STATUSES:
            return True
        return exc.status_code in RETRY_IDEMPOTENT_STATUSES and request.is_idempotent
    if isinstance(exc, AIOnTheBallTransportError):
        return request.is_idempotent or not exc.may_have_reached_server
    return False


def outcome_unknown(exc: BaseException) -> bool:
    """Whether a request that raised ``exc`` may still have been carried out by the server.

    True for a response lost after sending (read timeout, reset, closed connection), any 5xx (a
    proxy's 502/503/504 or an application error may come after the commit) and a 2xx whose body
    could not be read. False where the answer proves nothing was done: no connection, 429, 3xx and
    4xx. Only meaningful for requests that are not idempotent (POSTs that create something).
    """
    if isinstance(exc, AIOnTheBallTransportError):
        return exc.may_have_reached_server
    if isinstance(exc, AIOnTheBallInvalidResponseError):
        return True
    if isinstance(exc, AIOnTheBallAPIError):
        return exc.status_code >= 500
    return False


def already_done(request: ApiRequest, exc: BaseException) -> bool:
    """Whether ``exc``, answering a retry of ``request`` after an attempt whose outcome is unknown, means
    that attempt did it: a ``DELETE`` answered 404 deleted the resource the first time."""
    return request.method == "DELETE" and isinstance(exc, AIOnTheBallAPIError) and exc.status_code == 404


def retry_options(settings: ClientSettings, request: ApiRequest, log: Any) -> dict[str, Any]:
    """Keyword arguments for ``tenacity.Retrying`` (sync) and ``tenacity.AsyncRetrying`` (async)."""
    import tenacity  # at first request, not when a DAG file imports an operator

    policy = settings.retry
    attempts = policy.retry_limit + 1

    def wait(state: tenacity.RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        retry_after = getattr(exc, "retry_after", None)
        return policy.wait_seconds(state.attempt_number, retry_after)

    def before_sleep(state: tenacity.RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        seconds = state.next_action.sleep if state.next_action else 0.0
        hint = " (as asked by Retry-After)" if getattr(exc, "retry_after", None) is not None else ""
        log.warning(
            "AI on the Ball API: %s failed with %s (attempt %d of %d); retrying in %.1f s%s",
            request.display,
            describe_failure(exc) if exc else "an unknown error",
            state.attempt_number,
            attempts,
            seconds,
            hint,
        )

    return {
        "stop": tenacity.stop_after_attempt(attempts),
        "wait": wait,
        "retry": tenacity.retry_if_exception(lambda exc: is_retryable(exc, request)),
        "before_sleep": before_sleep,
        "reraise": True,
    }
