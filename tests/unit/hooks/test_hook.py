"""AIOnTheBallHook against the simulator over real loopback HTTP: CRUD, pagination, errors, retries."""

from __future__ import annotations

import datetime as dt
import json
import time

import pytest

from airflow_provider_aiontheball.exceptions import (
    AIOnTheBallAuthError,
    AIOnTheBallConfigurationError,
    AIOnTheBallInvalidResponseError,
    AIOnTheBallNotFoundError,
    AIOnTheBallRateLimitError,
    AIOnTheBallServerError,
    AIOnTheBallTimeoutError,
    AIOnTheBallTransportError,
    AIOnTheBallValidationError,
)
from airflow_provider_aiontheball.hooks._client import ApiRequest
from airflow_provider_aiontheball.hooks.aiontheball import AIOnTheBallHook
from tests.helpers import CONN_ENV, FAST_RETRY_EXTRA, OTHER_TOKEN, TOKEN, api_requests, connection_json, inject, stats

VIDEO_URL = "https://example.com/match-video.mp4"
MATCH = {"title": "Team A vs Team B", "home_team_name": "Team A", "away_team_name": "Team B"}


@pytest.fixture
def hook(aiontheball_conn):
    with AIOnTheBallHook() as hook:
        yield hook


def test_constructor_does_no_io(simulator, monkeypatch):
    monkeypatch.delenv(CONN_ENV, raising=False)
    AIOnTheBallHook(aiontheball_conn_id="does_not_exist")  # no connection lookup, no request
    assert api_requests(simulator) == []


def test_crud_round_trip(hook, aiontheball_conn):
    created = hook.create_video(VIDEO_URL, date=dt.date(2025, 1, 15), left_start_team="home", **MATCH)
    video_id = created["id"]
    assert isinstance(video_id, int)
    assert created["status"] == "init"
    assert created["game_name"]

    fetched = hook.get_video(video_id)
    assert fetched["id"] == video_id
    assert fetched["title"] == MATCH["title"]

    updated = hook.update_video(video_id, title="Renamed", end_offset_seconds=5400)
    assert updated["title"] == "Renamed"

    assert video_id in [v["id"] for v in hook.list_videos()]

    assert hook.delete_video(video_id) is None
    with pytest.raises(AIOnTheBallNotFoundError, match=rf"404 on GET /videos/{video_id}"):
        hook.get_video(video_id)

    posted = api_requests(aiontheball_conn, "POST", "/videos")[0]["body"]
    assert posted == {**{"video_file_url": VIDEO_URL}, **MATCH, "date": "2025-01-15", "left_start_team": "home"}


def test_list_follows_all_pages(hook, aiontheball_conn):
    created = [hook.create_video(f"https://example.com/{n}.mp4")["id"] for n in range(40)]
    listed = [v["id"] for v in hook.list_videos()]
    assert sorted(listed) == sorted(created)
    assert len(listed) == 40, "no duplicates across pages"
    pages = api_requests(aiontheball_conn, "GET", "/videos")
    assert len(pages) == 3, "40 videos at 15 per page"


def test_list_is_lazy(hook, aiontheball_conn):
    for n in range(20):
        hook.create_video(f"https://example.com/{n}.mp4")
    first = next(iter(hook.list_videos()))
    assert "id" in first
    assert len(api_requests(aiontheball_conn, "GET", "/videos")) == 1, "second page only fetched when needed"


def test_session_is_reused_across_requests(hook, aiontheball_conn):
    before = stats(aiontheball_conn)["connections_opened"]
    video_id = hook.create_video(VIDEO_URL)["id"]
    for _ in range(5):
        hook.get_video(video_id)
    opened = stats(aiontheball_conn)["connections_opened"] - before
    assert opened == 2, "one keep-alive connection for the hook's six requests, one for this stats call"


def test_bad_token_is_401_naming_no_token(simulator, monkeypatch):
    monkeypatch.setenv(CONN_ENV, connection_json(simulator.base_url, token="wrong-token-123"))
    with pytest.raises(AIOnTheBallAuthError) as excinfo:
        AIOnTheBallHook().get_video(790)
    assert excinfo.value.status_code == 401
    assert str(excinfo.value).startswith("AI on the Ball API: 401 on GET /videos/790: ")
    assert "wrong-token-123" not in str(excinfo.value)
    assert len(api_requests(simulator)) == 1, "401 is never retried"


def test_other_organisations_video_is_not_found(hook, simulator, monkeypatch):
    video_id = hook.create_video(VIDEO_URL)["id"]
    monkeypatch.setenv("AIRFLOW_CONN_OTHER_ORG", connection_json(simulator.base_url, token=OTHER_TOKEN))
    with pytest.raises(AIOnTheBallNotFoundError):
        AIOnTheBallHook(aiontheball_conn_id="other_org").get_video(video_id)


def test_server_side_422_carries_field_messages(hook, aiontheball_conn):
    # Bypass our own validation to see how the server's answer is reported.
    with pytest.raises(AIOnTheBallValidationError) as excinfo:
        hook.run(
            ApiRequest(
                "POST", "/videos", json_body={"video_file_url": "https://example.com/m.mp4", "date": "15/01/2025"}
            )
        )
    error = excinfo.value
    assert error.status_code == 422
    assert "date" in error.errors
    assert str(error).startswith("AI on the Ball API: 422 on POST /videos: date: ")
    assert len(api_requests(aiontheball_conn, "POST")) == 1, "422 is never retried"


def test_client_validation_happens_before_any_request(hook, aiontheball_conn):
    with pytest.raises(ValueError, match=r"^left_start_team: "):
        hook.create_video(VIDEO_URL, left_start_team="left")
    with pytest.raises(ValueError, match=r"^video_id: "):
        hook.get_video("abc")
    with pytest.raises(ValueError, match=r"^colour: not a field"):
        hook.update_video(1, colour="red")
    assert api_requests(aiontheball_conn) == []


def test_429_honours_retry_after(hook, aiontheball_conn):
    video_id = hook.create_video(VIDEO_URL)["id"]
    inject(aiontheball_conn, kind="status", status=429, retry_after="1", count=1, method="GET")
    started = time.monotonic()
    assert hook.get_video(video_id)["id"] == video_id
    elapsed = time.monotonic() - started
    assert elapsed >= 0.95, "waited as long as Retry-After asked, not the 10 ms backoff"
    assert [r["status"] for r in api_requests(aiontheball_conn, "GET")] == [429, 200]


def test_503_twice_then_success(hook, aiontheball_conn):
    video_id = hook.create_video(VIDEO_URL)["id"]
    inject(aiontheball_conn, kind="status", status=503, count=2, method="GET")
    assert hook.get_video(video_id)["id"] == video_id
    assert [r["status"] for r in api_requests(aiontheball_conn, "GET")] == [503, 503, 200]


def test_retries_are_bounded(hook, aiontheball_conn):
    inject(aiontheball_conn, kind="status", status=502, count=10, method="GET")
    with pytest.raises(AIOnTheBallServerError, match="502 on GET /videos/790"):
        hook.get_video(790)
    assert len(api_requests(aiontheball_conn, "GET")) == FAST_RETRY_EXTRA["retry_limit"] + 1


def test_429_after_retries_is_rate_limit_error(hook, aiontheball_conn):
    inject(aiontheball_conn, kind="status", status=429, retry_after="0", count=10)
    with pytest.raises(AIOnTheBallRateLimitError):
        hook.get_video(790)


def test_dropped_connection_on_get_is_retried(hook, aiontheball_conn):
    video_id = hook.create_video(VIDEO_URL)["id"]
    inject(aiontheball_conn, kind="drop", count=1, method="GET")
    assert hook.get_video(video_id)["id"] == video_id
    assert len(api_requests(aiontheball_conn, "GET")) == 2


def test_post_is_not_resent_after_it_may_have_reached_the_server(hook, aiontheball_conn):
    inject(aiontheball_conn, kind="drop_after_processing", count=1, method="POST")
    with pytest.raises(AIOnTheBallTransportError) as excinfo:
        hook.create_video(VIDEO_URL)
    assert excinfo.value.may_have_reached_server
    assert len(api_requests(aiontheball_conn, "POST")) == 1, "not blindly re-sent"
    assert len(list(hook.list_videos())) == 1, "the server did create it: the create operator must find it"


def test_post_is_retried_when_server_refused_it(hook, aiontheball_conn):
    inject(aiontheball_conn, kind="status", status=429, count=1, method="POST", retry_after="0")
    assert hook.create_video(VIDEO_URL)["id"]
    assert len(list(hook.list_videos())) == 1


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_post_is_not_resent_after_a_5xx(hook, aiontheball_conn, status):
    """A proxy's 5xx may come after the backend created the video: re-sending could make two."""
    inject(aiontheball_conn, kind="status_after_processing", status=status, count=1, method="POST")
    with pytest.raises(AIOnTheBallServerError):
        hook.create_video(VIDEO_URL)
    assert len([r for r in api_requests(aiontheball_conn) if r["method"] == "POST"]) == 1
    assert len(list(hook.list_videos())) == 1, "the server did create it; the create operator finds it"


def test_malformed_json_is_a_clear_error(hook, aiontheball_conn):
    inject(aiontheball_conn, kind="malformed", count=1, method="GET")
    with pytest.raises(AIOnTheBallInvalidResponseError, match="expected a JSON body"):
        hook.get_video(790)


def test_slow_response_times_out_and_get_is_retried(aiontheball_conn):
    hook = AIOnTheBallHook(timeout=(1, 0.2))
    video_id = hook.create_video(VIDEO_URL)["id"]
    inject(aiontheball_conn, kind="slow", delay=1.0, count=1, method="GET")
    assert hook.get_video(video_id)["id"] == video_id
    inject(aiontheball_conn, kind="slow", delay=1.0, count=10, method="GET")
    with pytest.raises(AIOnTheBallTimeoutError, match=r"no response within 0\.2 s"):
        hook.get_video(video_id)


def test_plain_http_to_remote_host_refused_before_any_request(monkeypatch):
    monkeypatch.setenv(CONN_ENV, connection_json("http://aiontheball.nl/api/v1"))
    with pytest.raises(AIOnTheBallConfigurationError, match="clear text"):
        AIOnTheBallHook().get_video(1)


def test_test_connection_sends_one_request_whatever_the_retry_policy(aiontheball_conn):
    """The UI's Test button answers after one attempt, not after the retry policy's back-off (~20 s)."""
    inject(aiontheball_conn, kind="status", status=503, count=10, method="GET", path="/videos")
    ok, message = AIOnTheBallHook(retry_limit=5, retry_min_wait=30).test_connection()
    assert not ok
    assert "503" in message
    assert len(api_requests(aiontheball_conn, "GET", "/videos")) == 1


def test_test_connection_reports_success_and_failure(aiontheball_conn, monkeypatch):
    ok, message = AIOnTheBallHook().test_connection()
    assert ok, message
    assert aiontheball_conn.base_url in message
    monkeypatch.setenv(CONN_ENV, connection_json(aiontheball_conn.base_url, token="nope-nope"))
    ok, message = AIOnTheBallHook().test_connection()
    assert not ok
    assert "401" in message
    assert "nope-nope" not in message


def test_token_never_leaks(aiontheball_conn, all_logs, capsys):
    """The whole CRUD + error + retry flow at DEBUG: the token appears in no log line, message or repr."""
    texts: list[str] = []
    hook = AIOnTheBallHook()
    texts += [repr(hook), str(hook)]
    video_id = hook.create_video(VIDEO_URL, **MATCH)["id"]
    hook.get_video(video_id)
    hook.update_video(video_id, title="x")
    list(hook.list_videos())
    inject(aiontheball_conn, kind="status", status=503, count=1)
    hook.get_video(video_id)
    inject(aiontheball_conn, kind="drop", count=1)
    hook.get_video(video_id)
    for failing in (lambda: hook.get_video(999_999), lambda: hook.run(ApiRequest("POST", "/videos", json_body={}))):
        with pytest.raises(Exception) as excinfo:
            failing()
        texts += [str(excinfo.value), repr(excinfo.value)]
    hook.delete_video(video_id)
    texts += [repr(hook.settings), str(hook.settings)]
    out, err = capsys.readouterr()
    texts += [all_logs.text, out, err, json.dumps(api_requests(aiontheball_conn))]
    assert any("retrying" in message for message in all_logs.messages), "the retry was logged"
    assert any("-> 200" in message for message in all_logs.messages), "DEBUG request lines were captured"
    for text in texts:
        assert TOKEN not in text
