"""Pre-flight checks of a video URL (airflow_provider_aiontheball/preflight.py) against real MP4, MOV and
Matroska files made here with PyAV, served over loopback by aiohttp's FileResponse (real Range support).

The files and the server's recording are in tests/media.py (shared with tests/unit/test_preflight_task.py).
No HTTP is mocked: every probe is real requests to the loopback server, which ignores query strings, so
presigned-style URLs are served like any other.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp import web

from airflow_provider_aiontheball.preflight import (
    CHECKS,
    MEDIA_CHECKS,
    PreflightResult,
    PreflightUnavailableError,
    VideoRequirementError,
    check_video_url,
    checks_from,
    container_of,
    presigned_expiry,
)

av = pytest.importorskip("av")

from tests.media import Served, Server, file_handler, make_video_dir, serving  # noqa: E402  (after the skip)

SIGNATURE = secrets.token_hex(32)
TARGET_SIGNATURE = secrets.token_hex(32)


@pytest.fixture(scope="session")
def video_dir() -> Path:
    return make_video_dir()


@pytest.fixture(scope="session")
def server(video_dir: Path) -> Iterator[Server]:
    seen = Served()

    async def redirect(request: web.Request) -> web.StreamResponse:
        raise web.HTTPFound(f"/files/{request.match_info['name']}?{request.query_string}")

    async def redirect_to_closed_port(request: web.Request) -> web.StreamResponse:
        # Like a short link in front of a presigned URL, whose host is down: the target has its own secret.
        raise web.HTTPFound(f"http://127.0.0.1:{closed_port()}/m.mp4?X-Amz-Signature={TARGET_SIGNATURE}")

    async def loop_forever(request: web.Request) -> web.StreamResponse:
        raise web.HTTPFound(f"/loop?{request.query_string}")

    async def no_ranges(request: web.Request) -> web.StreamResponse:
        # A server that ignores Range: the whole file with 200.
        return web.Response(body=(video_dir / request.match_info["name"]).read_bytes(), content_type="video/mp4")

    async def broken(request: web.Request) -> web.StreamResponse:
        raise web.HTTPServiceUnavailable()

    async def first_block_only(request: web.Request) -> web.StreamResponse:
        # Answers the first request of a probe, then is overloaded.
        if not request.headers.get("Range", "").startswith("bytes=0-"):
            raise web.HTTPServiceUnavailable()
        return web.FileResponse(video_dir / request.match_info["name"])

    app = web.Application()
    app.router.add_get("/files/{name}", file_handler(video_dir))
    app.router.add_get("/redirect/{name}", redirect)
    app.router.add_get("/loop", loop_forever)
    app.router.add_get("/redirect-to-closed-port", redirect_to_closed_port)
    app.router.add_get("/no-ranges/{name}", no_ranges)
    app.router.add_get("/unavailable", broken)
    app.router.add_get("/first-block-only/{name}", first_block_only)

    with serving(app, seen) as server:
        yield server


def presigned(expires_in: float, signed_ago: float = 0.0) -> str:
    """An S3-style presigned query (SigV4 parameter names) with a fresh secret signature."""
    signed = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=signed_ago)
    return (
        f"X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAEXAMPLE%2F20261207%2Feu-west-1%2Fs3%2Faws4_request"
        f"&X-Amz-Date={signed:%Y%m%dT%H%M%SZ}&X-Amz-Expires={round(expires_in + signed_ago)}"
        f"&X-Amz-SignedHeaders=host&X-Amz-Signature={SIGNATURE}"
    )


def url(server: Server, name: str, route: str = "files", query: str | None = None) -> str:
    return f"{server.base}/{route}/{name}?{presigned(7 * 86400) if query is None else query}"


def assert_no_secret(*texts: object) -> None:
    for text in texts:
        assert SIGNATURE not in str(text)
        assert "X-Amz-Credential" not in str(text)


# -- videos that meet every requirement ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "route"),
    [
        pytest.param("match-11min.mp4", "files", id="index-at-end"),
        pytest.param("match-11min.mp4", "redirect", id="behind-a-redirect"),
    ],
)
def test_a_video_that_meets_every_requirement_passes_reading_a_fraction_of_it(
    server: Server, video_dir: Path, name: str, route: str
) -> None:
    server.seen.reset()
    size = (video_dir / name).stat().st_size

    result = check_video_url(url(server, name, route))

    assert (result.status, result.size_bytes, result.content_type) == (206, size, "video/mp4")
    assert (result.container, result.width, result.height) == ("MP4", 64, 36)
    assert result.fps == pytest.approx(25)
    assert result.duration_seconds == pytest.approx(660, abs=0.1)
    assert result.usable_seconds == pytest.approx(660, abs=0.1)
    assert result.skipped == {}
    assert result.expires_at is not None
    # The header and the index only: a few blocks of a 20 MB file, each counted as the server sent it.
    assert result.bytes_read < size / 50
    assert result.bytes_read == server.seen.bytes_sent
    assert 2 <= result.requests <= 8
    assert all(rng and rng.startswith("bytes=") for path, rng, _ in server.seen.requests if path.startswith("/files"))
    assert result.probe_seconds < 5
    assert_no_secret(result, result.summary(), result.as_dict())


def test_a_full_hd_video_meets_the_resolution_requirement(server: Server) -> None:
    result = check_video_url(url(server, "full-hd.mp4"), skip=("duration",))

    assert (result.width, result.height, result.container) == (1920, 1080, "MP4")
    assert result.skipped == {"duration": "switched off"}


def test_duration_counts_from_the_offsets(server: Server) -> None:
    result = check_video_url(url(server, "match-11min.mp4"), start_offset_seconds=30, end_offset_seconds=640)

    assert result.usable_seconds == pytest.approx(610, abs=0.1)


# -- a requirement not met ------------------------------------------------------------------------------

FAILURES = [
    pytest.param("broadcast-50fps.mp4", {}, "fps", ["video is 50 fps; the API requires 25 fps"], id="50-fps"),
    pytest.param(
        "qhd-1440p.mp4",
        {},
        "resolution",
        ["video is 2560x1440; the API requires 1080p or lower (at most 1920x1080)"],
        id="1440p",
    ),
    pytest.param(
        "match-9min.mp4",
        {},
        "duration",
        ["video lasts 9m; the API requires at least 10m"],
        id="9-minutes",
    ),
    pytest.param(
        "match-11min.mp4",
        {"start_offset_seconds": 120},
        "duration",
        [
            "video lasts 9m between start_offset_seconds=120 and end_offset_seconds=the end (the file lasts 11m)",
            "the API requires at least 10m",
        ],
        id="11-minutes-less-a-2-minute-start-offset",
    ),
    pytest.param(
        "match-11min.mp4",
        {"end_offset_seconds": "300"},
        "duration",
        ["video lasts 5m between start_offset_seconds=0 and end_offset_seconds=300"],
        id="11-minutes-ending-at-5-from-a-template",
    ),
    pytest.param(
        "iphone.mov", {}, "container", ["video is QuickTime MOV; the API supports MP4 only"], id="quicktime-mov"
    ),
    pytest.param("export.mkv", {}, "container", ["video is Matroska/WebM; the API supports MP4 only"], id="matroska"),
    pytest.param(
        "share-page.html",
        {},
        "content_type",
        ["the URL serves an HTML page (text/html", "not a video", "the API requires a direct link to the MP4 file"],
        id="html-page",
    ),
    pytest.param(
        "login-page.mp4",
        {},
        "content_type",
        ["the URL serves an HTML page (video/mp4)", "the API requires a direct link"],
        id="html-page-named-mp4",
    ),
    pytest.param(
        "missing.mp4",
        {},
        "reachable",
        ["a GET without credentials answered 404 (no such file)", "the API requires a public URL"],
        id="404",
    ),
    pytest.param(
        "cut-short.mp4",
        {},
        "container",
        ["the file cannot be read as a video (FFmpeg: ", "the API requires an MP4 video"],
        id="cut-short",
    ),
    pytest.param(
        "empty.mp4", {}, "size", ["the file is 0 bytes; the API requires a video of at least 10 minutes"], id="0-bytes"
    ),
]


@pytest.mark.parametrize(("name", "offsets", "check", "phrases"), FAILURES)
def test_a_requirement_not_met_fails_naming_it_the_value_and_the_limit(
    server: Server, video_dir: Path, name: str, offsets: dict[str, int | str], check: str, phrases: list[str]
) -> None:
    # The one-second files would also fail the duration check: keep to the requirement under test.
    skip = () if check == "duration" or name.startswith("match") else ("duration",)
    target = url(server, name)

    with pytest.raises(VideoRequirementError) as raised:
        check_video_url(target, skip=skip, **offsets)

    error = raised.value
    assert isinstance(error, ValueError)  # operators turn it into AIOnTheBallInputError: no retries
    assert [failure.check for failure in error.failures] == [check]
    message = str(error)
    assert message.startswith(f"video_file_url: {target.split('?')[0]}?***: ")
    for phrase in phrases:
        assert phrase in message
    assert "pre-flight measured: " in message
    assert_no_secret(message, error.result, error.result.summary())
    path = video_dir / name
    if path.is_file() and path.stat().st_size > 1_000_000:
        assert error.result.bytes_read < path.stat().st_size / 20


def test_every_failure_is_reported_at_once(server: Server) -> None:
    with pytest.raises(VideoRequirementError) as raised:
        check_video_url(url(server, "qhd-1440p.mp4"))

    assert [failure.check for failure in raised.value.failures] == ["resolution", "duration"]
    assert "video is 2560x1440" in str(raised.value)
    assert "video lasts 1 s; the API requires at least 10m" in str(raised.value)


# -- presigned URLs ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expires_in", "signed_ago", "phrase"),
    [
        pytest.param(-3600, 7200, "the presigned URL expired 1h ago", id="expired-an-hour-ago"),
        pytest.param(90, 0, "the presigned URL expires in 1m", id="expires-in-90-s"),
    ],
)
def test_a_presigned_url_that_does_not_outlast_the_margin_fails_before_any_request(
    server: Server, expires_in: int, signed_ago: int, phrase: str
) -> None:
    server.seen.reset()

    with pytest.raises(VideoRequirementError) as raised:
        check_video_url(url(server, "match-11min.mp4", query=presigned(expires_in, signed_ago)))

    assert phrase in str(raised.value)
    assert "it must stay valid for at least 15m (expiry_margin_seconds)" in str(raised.value)
    assert raised.value.result.requests == 0
    assert server.seen.requests == []
    assert_no_secret(raised.value)


def test_the_expiry_margin_is_configurable(server: Server) -> None:
    result = check_video_url(url(server, "match-11min.mp4", query=presigned(120)), expiry_margin_seconds=60)

    assert result.expires_at is not None
    assert result.status == 206


NOW = dt.datetime(2026, 12, 7, 22, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        pytest.param("X-Amz-Date=20261207T220000Z&X-Amz-Expires=3600&X-Amz-Signature=ab", NOW.replace(hour=23), id="s3-v4"),
        pytest.param("x-amz-date=20261207T220000Z&x-amz-expires=600&x-amz-signature=ab", NOW.replace(minute=10), id="s3-lower-case"),
        pytest.param("X-Goog-Algorithm=GOOG4-RSA-SHA256&X-Goog-Date=20261207T220000Z&X-Goog-Expires=86400&X-Goog-Signature=ab", NOW + dt.timedelta(days=1), id="gcs-v4"),
        pytest.param("sv=2025-01-05&se=2026-12-07T23%3A30%3A00Z&sr=b&sp=r&sig=abc%3D", NOW.replace(hour=23, minute=30), id="azure-sas"),
        pytest.param("sv=2025-01-05&se=2026-12-08&sr=b&sp=r&sig=abc", dt.datetime(2026, 12, 8, tzinfo=dt.UTC), id="azure-sas-date-only"),
        pytest.param(f"AWSAccessKeyId=AKIA&Expires={int(NOW.timestamp()) + 60}&Signature=ab", NOW.replace(minute=1), id="s3-v2"),
        pytest.param("", None, id="not-presigned"),
        pytest.param("se=2026-12-08", None, id="se-without-a-signature"),
        pytest.param("X-Amz-Date=yesterday&X-Amz-Expires=60", None, id="unreadable-date"),
    ],
)  # fmt: skip
def test_presigned_expiry_is_read_from_each_provider_form(query: str, expected: dt.datetime | None) -> None:
    assert presigned_expiry(f"https://bucket.example.com/m.mp4?{query}") == expected


# -- what cannot be checked, and what is switched off --------------------------------------------------


def test_without_pyav_the_http_checks_run_and_the_media_checks_say_how_to_enable_them(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "av", None)  # `import av` raises ImportError, as when it is not installed

    result = check_video_url(url(server, "match-11min.mp4"))
    with pytest.raises(VideoRequirementError, match="video is QuickTime MOV"):
        check_video_url(url(server, "iphone.mov"))

    assert (result.status, result.container, result.fps) == (206, "MP4", None)
    assert set(result.skipped) == set(MEDIA_CHECKS)
    assert "pip install 'airflow-provider-aiontheball[media]'" in result.skipped["fps"]
    assert "skipped: resolution (PyAV is not installed" in result.summary()
    assert result.requests == 1


def test_a_server_that_ignores_ranges_is_not_downloaded(server: Server, video_dir: Path) -> None:
    result = check_video_url(url(server, "broadcast-50fps.mp4", route="no-ranges"))

    assert (result.status, result.container) == (200, "MP4")
    assert result.size_bytes == (video_dir / "broadcast-50fps.mp4").stat().st_size
    assert "does not answer range requests" in result.skipped["fps"]
    assert result.bytes_read <= 64 * 1024


def test_a_probe_never_reads_past_its_budget(server: Server) -> None:
    result = check_video_url(url(server, "match-11min.mp4"), max_read_bytes=100_000)

    assert result.bytes_read <= 100_000
    assert set(result.skipped) == set(MEDIA_CHECKS)
    assert "max_read_bytes" in result.skipped["duration"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(True, (True, ()), id="on"),
        pytest.param(False, (False, ()), id="off"),
        pytest.param({"fps": False, "duration": True}, (True, ("fps",)), id="fps-off"),
    ],
)
def test_checks_from_an_operator_argument(
    value: bool | dict[str, bool], expected: tuple[bool, tuple[str, ...]]
) -> None:
    assert checks_from(value) == expected


def test_checks_switched_off_do_not_fail(server: Server) -> None:
    result = check_video_url(url(server, "broadcast-50fps.mp4"), skip=("fps", "duration"))

    assert result.fps == pytest.approx(50)
    assert result.skipped == {"fps": "switched off", "duration": "switched off"}


def test_an_unknown_check_name_is_refused() -> None:
    with pytest.raises(ValueError, match=r"unknown check\(s\) colour; the checks are expiry, reachable"):
        check_video_url("https://example.com/m.mp4", skip=("colour",))
    with pytest.raises(ValueError, match="unknown check"):
        checks_from({"colour": False})


def test_every_check_switched_off_sends_nothing(server: Server) -> None:
    server.seen.reset()

    result = check_video_url(url(server, "missing.mp4"), skip=CHECKS)

    assert result == PreflightResult(url=result.url, expires_at=result.expires_at, skipped=dict.fromkeys(CHECKS, "switched off"), probe_seconds=result.probe_seconds)  # fmt: skip
    assert server.seen.requests == []


# -- the HTTP exchange ----------------------------------------------------------------------------------


def test_no_credentials_are_sent_even_with_a_netrc_entry(
    server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login alice password s3cret\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    server.seen.reset()

    check_video_url(url(server, "match-11min.mp4", route="redirect"))

    assert server.seen.requests
    assert all(authorization is None for _, _, authorization in server.seen.requests)


def test_a_server_that_stops_answering_mid_probe_is_worth_a_retry(server: Server) -> None:
    with pytest.raises(PreflightUnavailableError, match="answered 503") as raised:
        check_video_url(url(server, "match-11min.mp4", route="first-block-only"))

    assert_no_secret(raised.value)


def test_with_reachability_switched_off_an_error_page_checks_nothing_else(server: Server) -> None:
    result = check_video_url(url(server, "missing.mp4"), skip=("reachable",))

    assert result.status == 404
    assert result.skipped["reachable"] == "switched off"
    assert result.skipped["container"] == result.skipped["fps"] == "the URL answered 404"


def test_a_redirect_loop_fails_as_unreachable(server: Server) -> None:
    with pytest.raises(VideoRequirementError, match="the URL redirects more than 5 times") as raised:
        check_video_url(f"{server.base}/loop?{presigned(86400)}")

    assert_no_secret(raised.value)


@pytest.mark.parametrize(
    "target",
    [
        pytest.param("/unavailable", id="503"),
        pytest.param("closed-port", id="connection-refused"),
        pytest.param("/redirect-to-closed-port", id="redirected-to-a-presigned-url-on-a-closed-port"),
    ],
)
def test_a_server_that_cannot_answer_is_worth_a_retry_and_the_message_keeps_the_secret(
    server: Server, target: str
) -> None:
    if target == "closed-port":
        address = f"http://127.0.0.1:{closed_port()}/m.mp4?{presigned(86400)}"
    else:
        address = f"{server.base}{target}?{presigned(86400)}"

    with pytest.raises(PreflightUnavailableError) as raised:
        check_video_url(address)

    assert not isinstance(raised.value, ValueError)  # not an input error: Airflow's retries apply
    assert "127.0.0.1" in str(raised.value)
    assert_no_secret(raised.value)
    assert TARGET_SIGNATURE not in str(raised.value)


def closed_port() -> int:
    """A loopback port that was bound and closed: connecting to it is refused."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        pytest.param(b"\x00\x00\x00\x1cftypisom\x00\x00\x02\x00isomiso2mp41", "MP4", id="mp4-isom"),
        pytest.param(b"\x00\x00\x00\x18ftypXYZ1\x00\x00\x00\x00mp42", "MP4", id="unknown-brand-compatible-mp42"),
        pytest.param(b"\x00\x00\x00\x14ftypqt  \x00\x00\x02\x00qt  ", "QuickTime MOV", id="mov"),
        pytest.param(b"\x00\x00\x00\x08wide\x00\x00\x00\x08mdat", "QuickTime MOV", id="mov-without-ftyp"),
        pytest.param(b"\x00\x00\x00\x14ftyp3gp5\x00\x00\x00\x003gp5", "3GPP", id="3gp"),
        pytest.param(b"\x1a\x45\xdf\xa3\x01\x00", "Matroska/WebM", id="matroska"),
        pytest.param(b"RIFF\x00\x00\x00\x00AVI LIST", "AVI", id="avi"),
        pytest.param(b"<html>", "not a recognised video container", id="text"),
    ],
)
def test_container_of_first_bytes(head: bytes, expected: str) -> None:
    assert container_of(head) == expected


def test_importing_the_module_imports_neither_requests_nor_pyav() -> None:
    import subprocess

    code = "import sys, airflow_provider_aiontheball.preflight; print(sorted({'requests', 'av', 'airflow'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout

    assert out.strip() == "[]"


def test_no_log_line_at_any_level_quotes_the_signature(
    server: Server, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """urllib3 logs every request's path and query at DEBUG, the redirect target's too: the query never shows."""
    caplog.set_level(logging.DEBUG)
    masked: list[str] = []

    check_video_url(url(server, "match-11min.mp4", route="redirect"), on_secret=masked.append)

    assert any("GET /files/match-11min.mp4?***" in record.getMessage() for record in caplog.records)
    assert_no_secret(caplog.text)
    assert SIGNATURE in masked

    # A redirect to a target with a signature of its own: handed to the masker before it is requested.
    with pytest.raises(PreflightUnavailableError):
        check_video_url(f"{server.base}/redirect-to-closed-port", on_secret=masked.append)
    assert TARGET_SIGNATURE in masked
    assert TARGET_SIGNATURE not in caplog.text
