"""Errors raised by the AI on the Ball provider.

Every error derives from :class:`AIOnTheBallError` (an ``AirflowException``). Failures of an HTTP
exchange derive from :class:`AIOnTheBallAPIError` (the server answered with an error status or a body
we cannot read) or :class:`AIOnTheBallTransportError` (no usable answer at all). Their messages name
the method, the path and the server's words, never the API token, and never an unbounded body.

Which HTTP status maps to which class is decided in one place, :func:`api_error_class`, used by the
sync and the async client alike.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from airflow.providers.common.compat.sdk import AirflowException, AirflowFailException

from airflow_provider_aiontheball.defaults import MAX_QUOTED_CHARS


def truncate(text: str, limit: int = MAX_QUOTED_CHARS) -> str:
    """Return ``text`` on one line, cut to ``limit`` characters with a marker saying how much was cut."""
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    return f"{flat[:limit]}… [{len(flat) - limit} more characters]"


class AIOnTheBallError(AirflowException):
    """Base class of every error this provider raises."""


class AIOnTheBallConfigurationError(AIOnTheBallError, ValueError):
    """The connection or a hook argument is unusable (raised before any request is sent)."""


class AIOnTheBallAPIError(AIOnTheBallError):
    """The API answered, but not with what was asked for.

    :param status_code: HTTP status of the response.
    :param method: HTTP method of the request, e.g. ``"POST"``.
    :param path: path of the request relative to the base URL, e.g. ``"/videos"``.
    :param detail: the server's message (already free of secrets), or our description of the problem.
    :param errors: per-field validation messages (422), as sent by the server.
    :param retry_after: seconds the server asked us to wait (``Retry-After``), when it said so.
    """

    def __init__(
        self,
        *,
        status_code: int,
        method: str,
        path: str,
        detail: str,
        errors: Mapping[str, list[str]] | None = None,
        retry_after: float | None = None,
    ) -> None:
        # AirflowException declares status_code as an HTTPStatus for its REST API; ours is the API's status.
        self.status_code = status_code  # type: ignore[assignment]
        self.method = method
        self.path = path
        self.detail = detail
        self.errors: dict[str, list[str]] = {k: list(v) for k, v in (errors or {}).items()}
        self.retry_after = retry_after
        super().__init__(f"AI on the Ball API: {status_code} on {method} {path}: {detail}")

    def __reduce__(self) -> tuple[Any, ...]:
        # Keyword-only __init__: tell pickle how to rebuild us (Airflow may pickle task exceptions).
        return (
            _rebuild,
            (
                type(self),
                {
                    "status_code": self.status_code,
                    "method": self.method,
                    "path": self.path,
                    "detail": self.detail,
                    "errors": self.errors,
                    "retry_after": self.retry_after,
                },
            ),
        )


class AIOnTheBallAuthError(AIOnTheBallAPIError):
    """401 or 403: the token is missing, wrong, expired, or not allowed to see the resource."""


class AIOnTheBallNotFoundError(AIOnTheBallAPIError):
    """404: the resource (or, for undocumented endpoints, the route) does not exist."""


class AIOnTheBallRouteMissingError(AIOnTheBallNotFoundError):
    """404 because the server has no such endpoint at all (e.g. the undocumented ``GET /analyses/{id}``)."""


class AIOnTheBallConflictError(AIOnTheBallAPIError):
    """409: the request conflicts with the resource's state (e.g. results of an unfinished analysis)."""


class AIOnTheBallValidationError(AIOnTheBallAPIError):
    """422: the server rejected the submitted fields; :attr:`errors` maps each field to its messages."""


class AIOnTheBallRateLimitError(AIOnTheBallAPIError):
    """429 that outlasted the retries (or was not retried)."""


class AIOnTheBallServerError(AIOnTheBallAPIError):
    """5xx that outlasted the retries (or was not retried)."""


class AIOnTheBallInvalidResponseError(AIOnTheBallAPIError):
    """A success status with a body that is not the JSON the endpoint documents."""


class AIOnTheBallTransportError(AIOnTheBallError):
    """No usable response: the connection failed, was reset, or timed out.

    :param method: HTTP method of the request.
    :param path: path of the request relative to the base URL.
    :param reason: what went wrong, in words (never containing the token).
    :param may_have_reached_server: whether the server may have received (and acted on) the request.
        ``False`` only when the connection was never established.
    """

    def __init__(self, *, method: str, path: str, reason: str, may_have_reached_server: bool) -> None:
        self.method = method
        self.path = path
        self.reason = reason
        self.may_have_reached_server = may_have_reached_server
        super().__init__(f"AI on the Ball API: {method} {path} failed: {reason}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (
            _rebuild,
            (
                type(self),
                {
                    "method": self.method,
                    "path": self.path,
                    "reason": self.reason,
                    "may_have_reached_server": self.may_have_reached_server,
                },
            ),
        )


class AIOnTheBallTimeoutError(AIOnTheBallTransportError):
    """The connection or the response took longer than the configured timeout."""


class AIOnTheBallWaitError(AIOnTheBallError):
    """Waiting for a video or analysis ended without success, but retrying the task may help
    (deadline passed, or transient failures outlasted the error budget)."""


class AIOnTheBallResultsNotReadyError(AIOnTheBallError):
    """An analysis's results were requested before the analysis is ``done``; retrying later may help."""


class AIOnTheBallCreateOutcomeUnknownError(AIOnTheBallError):
    """A create request may or may not have been carried out (lost response, 5xx), and what it may
    have created did not become visible within the grace period.

    The request is not re-sent in the same try, so it can never create a duplicate; the task's next
    try looks for the resource again before creating anything (retries apply).
    """


class AIOnTheBallTerminalError(AIOnTheBallError, AirflowFailException):
    """The remote resource can never reach the awaited state (failed status, deleted, no access).

    Derived from ``AirflowFailException`` so Airflow fails the task without spending its retries.
    """


class AIOnTheBallInputError(AIOnTheBallError, AirflowFailException, ValueError):
    """A task argument is invalid (after templating); raised before any request.

    A ``ValueError`` whose message starts with the field's name. Derived from ``AirflowFailException``:
    the same input would fail again, so Airflow does not spend the task's retries on it.
    """


class AIOnTheBallMissingExtraError(AIOnTheBallError, AirflowFailException):
    """An optional dependency the task needs is not installed (an object store's provider or filesystem
    package); raised before any request. The message names the field, what is missing and the ``pip install``
    that brings it. Derived from ``AirflowFailException``: no retry installs it.
    """


class AIOnTheBallSourceAccessError(AIOnTheBallError, AirflowFailException):
    """The connection of a ``video_file_url`` in object storage cannot presign it (no credentials, or
    credentials that cannot sign, or another account); raised before any request to the API, without retries.
    """


@contextmanager
def bad_input_fails_task() -> Iterator[None]:
    """Turn the ``ValueError`` of a validation function into :class:`AIOnTheBallInputError`."""
    try:
        yield
    except AIOnTheBallError:
        raise
    except ValueError as exc:
        raise AIOnTheBallInputError(str(exc)) from None


def refusal_fails_task(
    exc: BaseException, *, conn_id: str, action: str, fields: Iterable[str]
) -> AIOnTheBallError | None:
    """The error that ends the task without retries when the API refused ``action`` for a reason no retry
    changes: the token (401/403, naming the connection) or submitted ``fields`` (400/422 whose errors all
    name one of them). ``None`` for anything else (a 404, 409 or 429 keeps its own error and retries).
    """
    if isinstance(exc, AIOnTheBallAuthError):
        return AIOnTheBallTerminalError(
            f"connection {conn_id!r}: the API refused its token for {action} ({exc.status_code}: {exc.detail}); "
            "put a valid API token in the connection's password, then clear the task"
        )
    if isinstance(exc, AIOnTheBallAPIError) and exc.status_code in (400, 422):
        named = set(fields)
        if exc.errors and set(exc.errors) <= named:
            rejected = "; ".join(f"{name}: {' '.join(messages)}" for name, messages in exc.errors.items())
            return AIOnTheBallInputError(f"{rejected} (the API rejected {action} with {exc.status_code})")
    return None


def _rebuild(cls: type[Exception], kwargs: dict[str, Any]) -> Exception:
    return cls(**kwargs)


_CLASS_BY_STATUS: dict[int, type[AIOnTheBallAPIError]] = {
    401: AIOnTheBallAuthError,
    403: AIOnTheBallAuthError,
    404: AIOnTheBallNotFoundError,
    409: AIOnTheBallConflictError,
    422: AIOnTheBallValidationError,
    429: AIOnTheBallRateLimitError,
}


def describe_failure(exc: BaseException) -> str:
    """A short reason for logs: ``"503 (Service Unavailable)"``-like text or the transport reason."""
    if isinstance(exc, AIOnTheBallAPIError):
        return f"{exc.status_code} ({truncate(exc.detail, 80)})"
    if isinstance(exc, AIOnTheBallTransportError):
        return exc.reason
    return f"{type(exc).__name__}: {truncate(str(exc), 80)}"


def api_error_class(status_code: int) -> type[AIOnTheBallAPIError]:
    """Return the exception class for an error ``status_code`` (the only status → class mapping)."""
    if status_code in _CLASS_BY_STATUS:
        return _CLASS_BY_STATUS[status_code]
    if status_code >= 500:
        return AIOnTheBallServerError
    return AIOnTheBallAPIError
