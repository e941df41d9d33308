"""What the API answers is read within bounds: bodies capped once decompressed, large ones decoded off the
triggerer's event loop, redirects followed only by downloads, to https, without the token, and never quoted
with their signature."""

from __future__ import annotations

import asyncio
import io
import json
import threading
from typing import Any

import pytest

from airflow_provider_aiontheball.exceptions import AIOnTheBallAPIError, AIOnTheBallInvalidResponseError
from airflow_provider_aiontheball.hooks import _client
from airflow_provider_aiontheball.hooks.aiontheball import AIOnTheBallAsyncHook, AIOnTheBallHook
from tests.helpers import CONN_ENV, FAST_RETRY_EXTRA, TOKEN, api_requests, connection_json, inject

VIDEO_URL = "https://example.com/match.mp4"
SIGNATURE = "X-Amz-Signature=cdn-signature-5e7d1c9a"


@pytest.fixture
def video_id(aiontheball_conn) -> int:
    return int(AIOnTheBallHook().create_video(VIDEO_URL, title="Ajax vs PSV")["id"])


@pytest.fixture
def done_analysis_id(aiontheball_conn, video_id) -> int:
    analysis = AIOnTheBallHook().create_analysis(video_id)
    aiontheball_conn.simulator.advance(60)
    return int(analysis["id"])


def get_video(flavour: str, video_id: int) -> dict[str, Any]:
    if flavour == "sync":
        return AIOnTheBallHook().get_video(video_id)

    async def run() -> dict[str, Any]:
        async with AIOnTheBallAsyncHook() as hook:
            return await hook.get_video(video_id)

    return asyncio.run(run())


@pytest.mark.parametrize("flavour", ["sync", "async"])
def test_a_body_that_inflates_past_the_cap_fails_its_request(aiontheball_conn, monkeypatch, video_id, flavour):
    """A small gzip body that decompresses to 8 MiB, with a 1 MiB cap: refused, not read into memory."""
    monkeypatch.setenv(CONN_ENV, connection_json(aiontheball_conn.base_url, max_response_mb=1, **FAST_RETRY_EXTRA))
    inject(aiontheball_conn, kind="inflate", size=8 * 1024 * 1024, method="GET", path=f"/videos/{video_id}")
    with pytest.raises(AIOnTheBallInvalidResponseError, match=r"larger than 1 MiB once decompressed.*max_response_mb"):
        get_video(flavour, video_id)
    assert get_video(flavour, video_id)["id"] == video_id, "the next answer is read as usual"


def test_the_cap_is_a_connection_setting_checked_before_any_request(aiontheball_conn, monkeypatch):
    monkeypatch.setenv(CONN_ENV, connection_json(aiontheball_conn.base_url, max_response_mb="lots"))
    with pytest.raises(ValueError, match="max_response_mb must be a number"):
        AIOnTheBallHook().get_video(1)
    assert api_requests(aiontheball_conn) == []


@pytest.mark.asyncio
async def test_a_large_body_is_decoded_off_the_event_loop(aiontheball_conn, monkeypatch, video_id):
    large = json.dumps({"data": {"id": video_id, "status": "available", "notes": "x" * 400_000}})
    small = json.dumps({"data": {"id": video_id, "status": "available"}})
    decoded_on: list[bool] = []
    loads = json.loads

    def watched_loads(text: Any, *args: Any, **kwargs: Any) -> Any:
        if text in (large, small):
            decoded_on.append(threading.get_ident() == loop_thread)
        return loads(text, *args, **kwargs)

    loop_thread = threading.get_ident()
    monkeypatch.setattr(_client.json, "loads", watched_loads)
    for body in (large, small):
        inject(aiontheball_conn, kind="malformed", body=body, content_type="application/json", method="GET")
        async with AIOnTheBallAsyncHook() as hook:
            assert (await hook.get_video(video_id))["id"] == video_id
    assert decoded_on == [False, True], "the 400 kB body in a thread, the small one on the loop"


def test_a_download_follows_a_redirect_to_another_host_without_the_token(
    aiontheball_conn, done_analysis_id, tmp_path, all_logs
):
    hook = AIOnTheBallHook()
    direct = tmp_path / "direct.parquet"
    hook.download_tracking(done_analysis_id, direct)
    # localhost is another host name than the API's 127.0.0.1: what a CDN in front of the API looks like.
    port = aiontheball_conn.base_url.split(":")[2].split("/")[0]
    cdn = f"http://localhost:{port}/_cdn/tracking/{done_analysis_id}?{SIGNATURE}"
    inject(aiontheball_conn, kind="redirect", status=302, location=cdn, path=f"/analyses/{done_analysis_id}")
    redirected = tmp_path / "redirected.parquet"
    hook.download_tracking(done_analysis_id, redirected)
    assert redirected.read_bytes() == direct.read_bytes()
    (served,) = [r for r in api_requests(aiontheball_conn) if r["path"].startswith("/_cdn/")]
    assert served["authorization"] is False, "the API token never goes to another host"
    # No line quotes it, urllib3's DEBUG line of the request included (its URL arguments lose their query;
    # the hook also registers the target's query with Airflow's secrets masker).
    assert "cdn-signature" not in all_logs.text
    assert any(f"/_cdn/tracking/{done_analysis_id}?***" in r.getMessage() for r in all_logs.caplog.records)
    assert any("served from http://localhost" in message for message in all_logs.messages)


@pytest.mark.parametrize(
    ("location", "count", "refusal"),
    [
        pytest.param(f"http://cdn.example/tracking.parquet?{SIGNATURE}", 1, "is not an https URL", id="plain-http"),
        pytest.param("", 1, "without a Location header", id="no-location"),
        pytest.param("/api/v1/analyses/{id}/tracking/download", 6, "more than 5 redirects", id="endless"),
    ],
)
def test_a_download_redirect_that_cannot_be_followed_fails_without_its_signature(
    aiontheball_conn, done_analysis_id, location, count, refusal
):
    target = location.format(id=done_analysis_id)
    inject(aiontheball_conn, kind="redirect", location=target or "x", count=count, path=f"/analyses/{done_analysis_id}")
    if not target:  # a 3xx without Location: the simulator always sends one, so answer through a status fault
        aiontheball_conn.simulator.clear_faults()
        inject(aiontheball_conn, kind="status", status=302, path=f"/analyses/{done_analysis_id}")
    with pytest.raises(AIOnTheBallInvalidResponseError, match=f"redirect not followed: .*{refusal}") as excinfo:
        AIOnTheBallHook().download_tracking(done_analysis_id, io.BytesIO())
    assert "cdn-signature" not in str(excinfo.value)


@pytest.mark.parametrize("flavour", ["sync", "async"])
def test_a_json_endpoint_never_follows_a_redirect(aiontheball_conn, video_id, flavour):
    inject(aiontheball_conn, kind="redirect", location=f"https://cdn.example/v?{SIGNATURE}", path=f"/videos/{video_id}")
    with pytest.raises(
        AIOnTheBallAPIError, match=r"302 on GET /videos/\d+: unexpected redirect to https://cdn\.example/v\?\*\*\*"
    ) as excinfo:
        get_video(flavour, video_id)
    assert "cdn-signature" not in str(excinfo.value)
    assert TOKEN not in str(excinfo.value)
