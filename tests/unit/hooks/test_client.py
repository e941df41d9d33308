"""The transport-independent client layer: base URL rules, settings, error mapping, retry policy."""

from __future__ import annotations

import email.utils

import pytest

from airflow_provider_aiontheball.exceptions import (
    AIOnTheBallAPIError,
    AIOnTheBallAuthError,
    AIOnTheBallConfigurationError,
    AIOnTheBallConflictError,
    AIOnTheBallInvalidResponseError,
    AIOnTheBallNotFoundError,
    AIOnTheBallRateLimitError,
    AIOnTheBallServerError,
    AIOnTheBallTimeoutError,
    AIOnTheBallTransportError,
    AIOnTheBallValidationError,
)
from airflow_provider_aiontheball.hooks._client import (
    USER_AGENT,
    ApiRequest,
    ClientSettings,
    Envelope,
    RetryPolicy,
    interpret_response,
    is_retryable,
    next_page_request,
    outcome_unknown,
    parse_retry_after,
    resolve_base_url,
    resolve_settings,
)
from airflow_provider_aiontheball.waiting import is_transient

TOKEN = "s3cr3t-token-value-0123456789"
SETTINGS = ClientSettings(conn_id="aiontheball_default", base_url="https://aiontheball.nl/api/v1", token=TOKEN)
GET_VIDEO = ApiRequest("GET", "/videos/790")
POST_VIDEOS = ApiRequest("POST", "/videos", json_body={"video_file_url": "https://example.com/m.mp4"})
PUT_VIDEO = ApiRequest("PUT", "/videos/790", json_body={"title": "x"})
DELETE_VIDEO = ApiRequest("DELETE", "/videos/790", envelope=Envelope.NONE)
QUERY = ApiRequest("POST", "/analyses/1/query-intervals", json_body={}, envelope=Envelope.BARE, idempotent=True)


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        pytest.param(None, "https://aiontheball.nl/api/v1", id="empty-means-public-api"),
        pytest.param("", "https://aiontheball.nl/api/v1", id="blank"),
        pytest.param("https://aiontheball.nl/api/v1/", "https://aiontheball.nl/api/v1", id="trailing-slash"),
        pytest.param("http://127.0.0.1:8765/api/v1", "http://127.0.0.1:8765/api/v1", id="loopback-ipv4-http"),
        pytest.param("http://localhost:8765/api/v1", "http://localhost:8765/api/v1", id="localhost-http"),
        pytest.param("http://[::1]:8765/api/v1", "http://[::1]:8765/api/v1", id="loopback-ipv6-http"),
        pytest.param("staging.aiontheball.nl", "https://staging.aiontheball.nl/api/v1", id="bare-host"),
    ],
)
def test_base_url_accepted(host, expected):
    assert resolve_base_url(host) == expected


@pytest.mark.parametrize(
    ("host", "words"),
    [
        pytest.param("http://aiontheball.nl/api/v1", "clear text", id="plain-http-remote"),
        pytest.param("http://10.0.0.5/api/v1", "clear text", id="plain-http-private-ip"),
        pytest.param("ftp://aiontheball.nl/api/v1", "https://", id="other-scheme"),
        pytest.param("https://aiontheball.nl/api/v1?x=1", "query", id="query"),
        pytest.param("https://user:pw@aiontheball.nl/api/v1", "credentials", id="userinfo"),
    ],
)
def test_base_url_refused_with_clear_error(host, words):
    with pytest.raises(AIOnTheBallConfigurationError, match=words) as excinfo:
        resolve_base_url(host, conn_id="my_conn")
    assert "'my_conn'" in str(excinfo.value)


def test_settings_from_extra_and_overrides():
    extra = {"timeout": "30", "connect_timeout": 5, "retry_limit": 2, "retry_min_wait": 0.5}
    settings = resolve_settings("c", host=None, password=TOKEN, extra=extra)
    assert (settings.connect_timeout, settings.read_timeout) == (5, 30)
    assert settings.retry == RetryPolicy(retry_limit=2, min_wait=0.5, max_wait=60.0)
    overridden = resolve_settings("c", host=None, password=TOKEN, extra=extra, timeout=(1, 2), retry_limit=0)
    assert (overridden.connect_timeout, overridden.read_timeout, overridden.retry.retry_limit) == (1, 2, 0)


def test_settings_accept_airflow2_prefixed_extras():
    settings = resolve_settings("c", host=None, password=TOKEN, extra={"extra__aiontheball__timeout": "12"})
    assert settings.read_timeout == 12


def test_settings_have_defaults():
    settings = resolve_settings("c", host=None, password=TOKEN, extra={})
    assert (settings.connect_timeout, settings.read_timeout, settings.retry.retry_limit) == (10, 60, 5)


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        pytest.param({"timeout": "soon"}, "timeout", id="timeout-word"),
        pytest.param({"timeout": 0}, "timeout", id="timeout-zero"),
        pytest.param({"retry_limit": 1.5}, "retry_limit", id="retry-fraction"),
        pytest.param({"retry_limit": -1}, "retry_limit", id="retry-negative"),
    ],
)
def test_settings_reject_bad_extras_naming_them(extra, field):
    with pytest.raises(AIOnTheBallConfigurationError, match=field):
        resolve_settings("c", host=None, password=TOKEN, extra=extra)


def test_missing_token_is_a_clear_error():
    with pytest.raises(AIOnTheBallConfigurationError, match="password field"):
        resolve_settings("c", host=None, password="", extra={})


def test_settings_repr_hides_token():
    assert TOKEN not in repr(SETTINGS)
    assert TOKEN not in str(SETTINGS)


def test_headers_are_built_in_one_place():
    assert SETTINGS.headers(has_body=False) == {
        "Authorization": f"Bearer {TOKEN}",
        "Accept": "application/json",
        "User-Agent": USER_AGENT,
    }
    assert SETTINGS.headers(has_body=True)["Content-Type"] == "application/json"
    assert USER_AGENT.startswith("airflow-provider-aiontheball/")


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        pytest.param(400, AIOnTheBallAPIError, id="400"),
        pytest.param(401, AIOnTheBallAuthError, id="401"),
        pytest.param(403, AIOnTheBallAuthError, id="403"),
        pytest.param(404, AIOnTheBallNotFoundError, id="404"),
        pytest.param(409, AIOnTheBallConflictError, id="409"),
        pytest.param(422, AIOnTheBallValidationError, id="422"),
        pytest.param(429, AIOnTheBallRateLimitError, id="429"),
        pytest.param(500, AIOnTheBallServerError, id="500"),
        pytest.param(503, AIOnTheBallServerError, id="503"),
        pytest.param(302, AIOnTheBallAPIError, id="redirect"),
    ],
)
def test_status_maps_to_exception_class(status, cls):
    with pytest.raises(cls) as excinfo:
        interpret_response(SETTINGS, GET_VIDEO, status, {}, b'{"message": "nope"}')
    assert type(excinfo.value) is cls
    assert excinfo.value.status_code == status


def test_validation_message_names_fields():
    body = b'{"message": "The date field must match the format Y-m-d.", "errors": {"date": ["The date field must match the format Y-m-d."]}}'
    with pytest.raises(AIOnTheBallValidationError) as excinfo:
        interpret_response(SETTINGS, POST_VIDEOS, 422, {}, body)
    assert str(excinfo.value) == (
        "AI on the Ball API: 422 on POST /videos: date: The date field must match the format Y-m-d."
    )
    assert excinfo.value.errors == {"date": ["The date field must match the format Y-m-d."]}


def test_long_bodies_are_truncated_and_token_redacted():
    body = ("<html>" + "x" * 5000 + TOKEN + "</html>").encode()
    with pytest.raises(AIOnTheBallServerError) as excinfo:
        interpret_response(SETTINGS, GET_VIDEO, 500, {}, body)
    message = str(excinfo.value)
    assert len(message) < 500
    assert "more characters" in message
    echoed = f'{{"message": "bad token {TOKEN}"}}'.encode()
    with pytest.raises(AIOnTheBallAuthError) as excinfo:
        interpret_response(SETTINGS, GET_VIDEO, 401, {}, echoed)
    assert TOKEN not in str(excinfo.value)


@pytest.mark.parametrize(
    ("body", "envelope"),
    [
        pytest.param(b"<html>oops", Envelope.DATA, id="html"),
        pytest.param(b'{"data": ', Envelope.DATA, id="truncated-json"),
        pytest.param(b'{"id": 790}', Envelope.DATA, id="missing-data-envelope"),
        pytest.param(b"[1, 2]", Envelope.DATA_OR_BARE, id="array-for-object"),
        pytest.param(b'{"data": 5}', Envelope.PAGE, id="page-without-list"),
    ],
)
def test_malformed_success_body_is_a_clear_error(body, envelope):
    request = ApiRequest("GET", "/videos/790", envelope=envelope)
    with pytest.raises(AIOnTheBallInvalidResponseError, match=r"^AI on the Ball API: 200 on GET /videos/790: expected"):
        interpret_response(SETTINGS, request, 200, {}, body)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param(b'{"data": {"id": 1247, "status": "running"}}', {"id": 1247, "status": "running"}, id="wrapped"),
        pytest.param(b'{"id": 1247, "status": "running"}', {"id": 1247, "status": "running"}, id="bare"),
    ],
)
def test_undocumented_analysis_envelope_either_way(body, expected):
    request = ApiRequest("GET", "/analyses/1247", envelope=Envelope.DATA_OR_BARE)
    assert interpret_response(SETTINGS, request, 200, {}, body) == expected


def _api_error(status: int) -> AIOnTheBallAPIError:
    from airflow_provider_aiontheball.exceptions import api_error_class

    return api_error_class(status)(status_code=status, method="X", path="/", detail="d")


NOT_CONNECTED = AIOnTheBallTransportError(method="X", path="/", reason="refused", may_have_reached_server=False)
RESET_AFTER_SEND = AIOnTheBallTransportError(method="X", path="/", reason="reset", may_have_reached_server=True)
READ_TIMEOUT = AIOnTheBallTimeoutError(method="X", path="/", reason="slow", may_have_reached_server=True)

RETRY_TABLE = [
    # (failure, request, retried?)
    pytest.param(NOT_CONNECTED, POST_VIDEOS, True, id="refused-post"),
    pytest.param(RESET_AFTER_SEND, GET_VIDEO, True, id="reset-get"),
    pytest.param(RESET_AFTER_SEND, POST_VIDEOS, False, id="reset-post-not-resent"),
    pytest.param(READ_TIMEOUT, GET_VIDEO, True, id="read-timeout-get"),
    pytest.param(READ_TIMEOUT, PUT_VIDEO, True, id="read-timeout-put"),
    pytest.param(READ_TIMEOUT, DELETE_VIDEO, True, id="read-timeout-delete"),
    pytest.param(READ_TIMEOUT, POST_VIDEOS, False, id="read-timeout-post-not-resent"),
    pytest.param(READ_TIMEOUT, QUERY, True, id="read-timeout-query-is-a-read"),
    pytest.param(_api_error(429), GET_VIDEO, True, id="429-get"),
    pytest.param(_api_error(429), POST_VIDEOS, True, id="429-post"),
    pytest.param(_api_error(503), GET_VIDEO, True, id="503-get"),
    pytest.param(_api_error(503), POST_VIDEOS, False, id="503-post-not-resent"),
    pytest.param(_api_error(502), GET_VIDEO, True, id="502-get"),
    pytest.param(_api_error(502), POST_VIDEOS, False, id="502-post"),
    pytest.param(_api_error(504), GET_VIDEO, True, id="504-get"),
    pytest.param(_api_error(504), POST_VIDEOS, False, id="504-post"),
    pytest.param(_api_error(500), GET_VIDEO, False, id="500"),
    pytest.param(_api_error(400), GET_VIDEO, False, id="400"),
    pytest.param(_api_error(401), GET_VIDEO, False, id="401"),
    pytest.param(_api_error(403), GET_VIDEO, False, id="403"),
    pytest.param(_api_error(404), GET_VIDEO, False, id="404"),
    pytest.param(_api_error(409), GET_VIDEO, False, id="409"),
    pytest.param(_api_error(422), POST_VIDEOS, False, id="422"),
    pytest.param(
        AIOnTheBallInvalidResponseError(status_code=200, method="GET", path="/", detail="d"),
        GET_VIDEO,
        False,
        id="malformed-200",
    ),
    pytest.param(ValueError("bug"), GET_VIDEO, False, id="programming-error"),
]


@pytest.mark.parametrize(("failure", "request_", "retried"), RETRY_TABLE)
def test_retry_classifier(failure, request_, retried):
    assert is_retryable(failure, request_) is retried


@pytest.mark.parametrize(
    ("failure", "unknown"),
    [
        pytest.param(NOT_CONNECTED, False, id="never-connected"),
        pytest.param(RESET_AFTER_SEND, True, id="reset-after-send"),
        pytest.param(READ_TIMEOUT, True, id="read-timeout"),
        pytest.param(_api_error(429), False, id="429-refused"),
        pytest.param(_api_error(500), True, id="500"),
        pytest.param(_api_error(502), True, id="502"),
        pytest.param(_api_error(503), True, id="503"),
        pytest.param(_api_error(504), True, id="504"),
        pytest.param(_api_error(400), False, id="400"),
        pytest.param(_api_error(401), False, id="401"),
        pytest.param(_api_error(404), False, id="404"),
        pytest.param(_api_error(409), False, id="409"),
        pytest.param(_api_error(422), False, id="422-validation"),
        pytest.param(
            AIOnTheBallInvalidResponseError(status_code=201, method="POST", path="/videos", detail="d"),
            True,
            id="garbled-201",
        ),
        pytest.param(ValueError("bug"), False, id="programming-error"),
    ],
)
def test_outcome_unknown_only_where_the_server_may_have_acted(failure, unknown):
    """Only these make a create operator look for what its POST may have created, instead of failing."""
    assert outcome_unknown(failure) is unknown


@pytest.mark.parametrize(
    ("failure", "transient"),
    [
        pytest.param(RESET_AFTER_SEND, True, id="reset"),
        pytest.param(READ_TIMEOUT, True, id="timeout"),
        pytest.param(_api_error(429), True, id="429"),
        pytest.param(_api_error(500), True, id="500"),
        pytest.param(_api_error(502), True, id="502"),
        pytest.param(_api_error(404), False, id="404"),
        pytest.param(_api_error(401), False, id="401"),
        pytest.param(_api_error(422), False, id="422"),
        pytest.param(
            AIOnTheBallInvalidResponseError(status_code=200, method="GET", path="/", detail="d"), True, id="garbled-200"
        ),
        pytest.param(ValueError("bug"), False, id="programming-error"),
    ],
)
def test_transient_classifier_for_waiters(failure, transient):
    assert is_transient(failure) is transient


NOW = 1_700_000_000.0


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        pytest.param("7", 7.0, id="delay-seconds"),
        pytest.param("1.5", 1.5, id="fractional"),
        pytest.param(email.utils.formatdate(NOW + 30, usegmt=True), 30.0, id="http-date"),
        pytest.param(email.utils.formatdate(NOW - 30, usegmt=True), 1.0, id="http-date-past-is-the-floor"),
        pytest.param("-5", 1.0, id="negative-is-the-floor"),
        pytest.param("soon", None, id="garbage"),
        pytest.param(None, None, id="absent"),
    ],
)
def test_parse_retry_after(header, seconds):
    assert parse_retry_after(header, now=lambda: NOW) == seconds


def test_backoff_grows_with_jitter_and_is_capped():
    policy = RetryPolicy(retry_limit=10, min_wait=1.0, max_wait=8.0)
    assert [policy.wait_seconds(n, None, rng=lambda: 1.0) for n in range(1, 6)] == [1, 2, 4, 8, 8]
    assert [policy.wait_seconds(n, None, rng=lambda: 0.0) for n in range(1, 4)] == [0.5, 1, 2]


def test_retry_after_overrides_backoff_up_to_the_cap():
    policy = RetryPolicy(retry_limit=3, min_wait=1.0, max_wait=8.0)
    assert policy.wait_seconds(1, 3.0) == 3.0
    assert policy.wait_seconds(1, 600.0) == 8.0


PAGE_REQUEST = ApiRequest("GET", "/videos", envelope=Envelope.PAGE)


def test_pagination_follows_links_next_within_base_url():
    page = {"data": [], "links": {"next": "https://aiontheball.nl/api/v1/videos?page=2"}, "meta": {}}
    nxt = next_page_request(SETTINGS, PAGE_REQUEST, page)
    assert nxt is not None
    assert (nxt.path, nxt.params) == ("/videos", (("page", "2"),))


def test_pagination_refuses_links_to_other_hosts():
    page = {"data": [], "links": {"next": "https://evil.example/api/v1/videos?page=2"}}
    with pytest.raises(AIOnTheBallInvalidResponseError, match="send the API token elsewhere"):
        next_page_request(SETTINGS, PAGE_REQUEST, page)


@pytest.mark.parametrize(
    ("page", "expected_page"),
    [
        pytest.param({"data": [], "meta": {"current_page": 1, "last_page": 3}}, "2", id="meta-only"),
        pytest.param(
            {"data": [], "links": {"next": None}, "meta": {"current_page": 3, "last_page": 3}}, None, id="last"
        ),
        pytest.param([{"id": 1}], None, id="bare-list"),
        pytest.param({"data": [{"id": 1}]}, None, id="no-links-no-meta"),
    ],
)
def test_pagination_fallbacks(page, expected_page):
    nxt = next_page_request(SETTINGS, PAGE_REQUEST, page)
    assert (dict(nxt.params).get("page") if nxt else None) == expected_page
