"""Secrets and faults hardening: presigned URLs, token rotation, Retry-After bounds, pagination that
never ends, redaction, reschedule-mode error budgets, retried deletes, deadlines and input edge cases.

Each test names the production failure it guards against; each fails on the code before the fix.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from airflow_provider_aiontheball.exceptions import (
    AIOnTheBallConfigurationError,
    AIOnTheBallInputError,
    AIOnTheBallInvalidResponseError,
)
from airflow_provider_aiontheball.hooks._client import (
    ApiRequest,
    ClientSettings,
    Envelope,
    PageGuard,
    interpret_response,
    next_page_request,
    parse_retry_after,
    resolve_base_url,
)
from airflow_provider_aiontheball.hooks.aiontheball import AIOnTheBallHook
from airflow_provider_aiontheball.operators.video import AIOnTheBallCreateVideoOperator, AIOnTheBallDeleteVideoOperator
from airflow_provider_aiontheball.triggers.video import AIOnTheBallVideoTrigger
from airflow_provider_aiontheball.validation import validate_id, validate_integer, video_create_body
from tests.helpers import (
    CONN_ENV,
    FAST_RETRY_EXTRA,
    HAS_TASK_STATE_STORE,
    TOKEN,
    api_requests,
    connection_json,
    inject,
    states,
    stored_text,
    task_context,
    write_dag,
)

SIGNATURE = "c0ffee5ca1ab1e0ddba11deadbeefcafef00d5eedbadc0de1234567890abcdef"
CREDENTIAL = "AKIAEXAMPLEKEY123456%2F20250115%2Feu-west-1%2Fs3%2Faws4_request"
PRESIGNED = (
    "https://matches.s3.eu-west-1.amazonaws.com/2025/ajax-psv.mp4"
    f"?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential={CREDENTIAL}&X-Amz-Expires=3600&X-Amz-Signature={SIGNATURE}"
)
FAST = {"poll_interval": 0.2, "min_poll_interval": 0.02}


# --------------------------------------------------------------------------------------------------
# 1. Presigned URLs are credentials
# --------------------------------------------------------------------------------------------------


def presigned(signature: str) -> str:
    return (
        "https://matches.s3.eu-west-1.amazonaws.com/2025/ajax-psv.mp4"
        f"?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential={CREDENTIAL}&X-Amz-Expires=3600&X-Amz-Signature={signature}"
    )


LEAK_DAG = """
import datetime as dt

try:
    from airflow.sdk import DAG
except ImportError:  # Airflow 2
    from airflow import DAG

from airflow_provider_aiontheball.operators.video import AIOnTheBallCreateVideoOperator

WAIT = dict(wait_for_available=True, deferrable=True, poll_interval=0.2, min_poll_interval=0.05)

with DAG("{dag_id}", schedule=None, start_date=dt.datetime(2025, 1, 1), catchup=False, params={{"url": "{url}"}}) as dag:
{task}
"""
#: The URL rendered from a template (a signature per render), unmapped and mapped; and literal in a mapped
#: task's list. Airflow's mapped rendering never calls an operator's render_template_fields.
LEAK_TASKS = {
    "unmapped": '    AIOnTheBallCreateVideoOperator(task_id="create_video", video_file_url="{{{{ params.url }}}}", '
    'title="Ajax vs PSV", **WAIT)',
    "mapped": '    AIOnTheBallCreateVideoOperator.partial(task_id="create_video", title="Ajax vs PSV", **WAIT).expand(\n'
    '        video_file_url=["{{{{ params.url }}}}", "{literal}"]\n    )',
}


@pytest.mark.simulator(echo_submitted_fields=True)  # the worst case: a server that echoes the URL back
@pytest.mark.parametrize("shape", sorted(LEAK_TASKS))
def test_a_presigned_signature_never_reaches_logs_rendered_fields_or_xcom(
    airflow_db, aiontheball_conn, all_logs, shape
):
    # Signatures of their own per test: the secrets masker is process-wide, one test must not hide another's.
    rendered, literal = presigned(f"{shape}-rendered-{SIGNATURE}"), presigned(f"{shape}-literal-{SIGNATURE}")
    dag_id = f"presigned_url_leak_probe_{shape}"
    dag = write_dag(
        LEAK_DAG.format(dag_id=dag_id, url=rendered, task=LEAK_TASKS[shape].format(literal=literal)), dag_id
    )
    dag_run = dag.test()
    assert set(states(dag_run).values()) == {"success"}
    posted = {r["body"]["video_file_url"] for r in api_requests(aiontheball_conn, "POST", "/videos")}
    assert posted == ({rendered, literal} if shape == "mapped" else {rendered}), "the API still gets the full URLs"
    stored = stored_text(dag.dag_id)
    # Every log line as written (Airflow 3's own DEBUG line "Sending request MaskSecret(value=...)" of its
    # task-runner protocol carries the secret as a structured field, never in a message: not ours).
    logged = "\n".join(all_logs.messages) + all_logs.caplog.text
    for secret in (SIGNATURE, CREDENTIAL, "X-Amz-Signature="):
        assert secret not in logged, f"{secret} in the task/trigger logs"
        assert secret not in stored, f"{secret} in rendered fields, XCom or trigger rows"
    assert "amazonaws.com/2025/ajax-psv.mp4" in stored, "the rendered URL is still recognisable"


def test_credentials_in_the_url_are_refused_without_being_echoed(aiontheball_conn):
    task = AIOnTheBallCreateVideoOperator(
        task_id="create_video", video_file_url="https://ingest:s3cr3t-pw@videos.example.com/a.mp4?sig=abc"
    )
    with pytest.raises(AIOnTheBallInputError, match=r"^video_file_url: must not contain credentials") as excinfo:
        task.execute(task_context())
    assert "s3cr3t-pw" not in str(excinfo.value)
    assert api_requests(aiontheball_conn) == []


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("ftp://user:pw@example.com/a.mp4?X-Amz-Signature=abc", id="bad-scheme"),
        pytest.param("https://[::1/v.mp4?X-Amz-Signature=abc", id="bad-ipv6"),
        pytest.param("https://example.com:port/v.mp4?X-Amz-Signature=abc", id="bad-port"),
    ],
)
def test_invalid_urls_are_named_and_never_quoted_with_their_query(url):
    with pytest.raises(ValueError, match=r"^video_file_url: ") as excinfo:
        video_create_body({"video_file_url": url})
    assert "X-Amz-Signature=abc" not in str(excinfo.value)
    assert "pw@" not in str(excinfo.value)


# --------------------------------------------------------------------------------------------------
# 2. Token rotation during a wait
# --------------------------------------------------------------------------------------------------

NEW_TOKEN = "rotated-token-7b1e93"


def _rotate(server, monkeypatch) -> None:
    """What an operator does: put the new token in the connection, then revoke the old one."""
    monkeypatch.setenv(CONN_ENV, connection_json(server.base_url, token=NEW_TOKEN, **FAST_RETRY_EXTRA))
    server.simulator.config.tokens = {NEW_TOKEN: "org-1"}


@pytest.mark.asyncio
async def test_a_token_rotated_mid_wait_does_not_fail_the_wait(aiontheball_conn, monkeypatch):
    video_id = await asyncio.to_thread(lambda: AIOnTheBallHook().create_video(PRESIGNED)["id"])
    run = AIOnTheBallVideoTrigger(video_id, **FAST).run()
    first = asyncio.ensure_future(run.__anext__())
    for _ in range(500):  # until the trigger has polled once with the old token (bounded)
        if api_requests(aiontheball_conn, "GET", f"/videos/{video_id}"):
            break
        await asyncio.sleep(0.01)
    _rotate(aiontheball_conn, monkeypatch)
    event = (await asyncio.wait_for(first, 15)).payload
    assert event["status"] == "success", event
    refused = [r for r in api_requests(aiontheball_conn, "GET", f"/videos/{video_id}") if r["status"] == 401]
    assert refused, "the old token was refused at least once, and the wait went on"


@pytest.mark.asyncio
async def test_a_token_revoked_before_the_connection_is_updated_does_not_fail_the_wait(aiontheball_conn, monkeypatch):
    # The other order of a rotation: the old token stops working first, the connection gets the new
    # one a moment later. A wait that already polled successfully tolerates the refusals meanwhile.
    video_id = await asyncio.to_thread(lambda: AIOnTheBallHook().create_video(PRESIGNED)["id"])
    run = AIOnTheBallVideoTrigger(video_id, **FAST).run()
    first = asyncio.ensure_future(run.__anext__())

    async def until(condition) -> None:
        for _ in range(500):  # bounded
            if condition():
                return
            await asyncio.sleep(0.01)

    def polls(status: int) -> list[dict]:
        return [r for r in api_requests(aiontheball_conn, "GET", f"/videos/{video_id}") if r["status"] == status]

    await until(lambda: polls(200))
    aiontheball_conn.simulator.config.tokens = {}  # revoked; the connection still holds it
    await until(lambda: polls(401))
    assert not first.done(), "a refused poll after successful ones is not the end of the wait"
    _rotate(aiontheball_conn, monkeypatch)
    event = (await asyncio.wait_for(first, 15)).payload
    assert event["status"] == "success", event


def test_the_sync_hook_follows_a_rotated_token(aiontheball_conn, monkeypatch):
    hook = AIOnTheBallHook()
    video_id = hook.create_video(PRESIGNED)["id"]
    _rotate(aiontheball_conn, monkeypatch)
    assert hook.get_video(video_id)["id"] == video_id
    assert [r["status"] for r in api_requests(aiontheball_conn, "GET")][-2:] == [401, 200]


# --------------------------------------------------------------------------------------------------
# 3. Retry-After: floor and cap, in one place
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        pytest.param("0", 1.0, id="zero-is-one-second"),
        pytest.param(email.utils.formatdate(time.time() - 600, usegmt=True), 1.0, id="past-date-clock-skew"),
        pytest.param("7", 7.0, id="sane-value-kept"),
        pytest.param("86400", 300.0, id="a-day-is-five-minutes"),
        pytest.param("-5", 1.0, id="negative"),
    ],
)
def test_retry_after_is_bounded_where_it_is_parsed(header, seconds):
    assert parse_retry_after(header) == seconds


# --------------------------------------------------------------------------------------------------
# 6. Pagination that never ends; next links behind a TLS proxy
# --------------------------------------------------------------------------------------------------

SETTINGS = ClientSettings(conn_id="c", base_url="https://aiontheball.nl/api/v1", token=TOKEN)
LIST = ApiRequest("GET", "/videos", envelope=Envelope.PAGE)


@pytest.mark.parametrize(
    "link",
    [
        pytest.param("http://aiontheball.nl/api/v1/videos?page=2", id="http-behind-tls-proxy"),
        pytest.param("https://aiontheball.nl:443/api/v1/videos?page=2", id="explicit-default-port"),
        pytest.param("http://AIONTHEBALL.nl:80/api/v1/videos?page=2", id="scheme-and-port-and-case"),
    ],
)
def test_next_links_differing_only_by_scheme_or_default_port_are_followed(link):
    page = {"data": [{"id": 1}], "links": {"next": link}}
    following = next_page_request(SETTINGS, LIST, page)
    assert following is not None
    assert (following.path, following.params) == ("/videos", (("page", "2"),))


@pytest.mark.parametrize(
    "link",
    [
        pytest.param("https://evil.example/api/v1/videos?page=2", id="other-host"),
        pytest.param("https://aiontheball.nl:8443/api/v1/videos?page=2", id="other-port"),
        pytest.param("https://user:pw@aiontheball.nl/api/v1/videos?page=2", id="credentials"),
    ],
)
def test_next_links_to_another_server_are_refused(link):
    with pytest.raises(AIOnTheBallInvalidResponseError, match="refusing to follow pagination link"):
        next_page_request(SETTINGS, LIST, {"data": [{"id": 1}], "links": {"next": link}})


class _EndlessPages(BaseHTTPRequestHandler):
    """A server whose ``next`` link changes on every page while the items never do."""

    def do_GET(self) -> None:
        number = int(self.path.rsplit("=", 1)[-1]) if "page=" in self.path else 1
        body = json.dumps(
            {
                "data": [{"id": 1, "title": "same"}, {"id": 2, "title": "same"}],
                "links": {"next": f"http://{self.headers['Host']}/api/v1/videos?page={number + 1}"},
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def test_a_listing_whose_next_link_never_ends_fails_instead_of_hanging(monkeypatch):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _EndlessPages)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}/api/v1"
        monkeypatch.setenv(CONN_ENV, connection_json(base, **FAST_RETRY_EXTRA))
        with pytest.raises(AIOnTheBallInvalidResponseError, match="pagination does not end: page 2 repeats"):
            list(AIOnTheBallHook().list_videos())
    finally:
        server.shutdown()
        server.server_close()


def test_the_page_guard_caps_and_ends_listings():
    guard = PageGuard(max_pages=3)
    pages = [ApiRequest("GET", "/videos", (("page", str(n)),)) for n in range(1, 5)]
    assert guard.admit(pages[0], {}, [{"id": 1}])
    assert guard.admit(pages[1], {}, [{"id": 2}])
    assert guard.admit(pages[2], {}, [{"id": 3}])
    with pytest.raises(AIOnTheBallInvalidResponseError, match="more than 3 pages"):
        guard.admit(pages[3], {}, [{"id": 4}])
    assert not PageGuard().admit(pages[0], {}, []), "an empty page ends the listing"
    repeat = PageGuard()
    repeat.admit(pages[0], {}, [{"id": 1}])
    with pytest.raises(AIOnTheBallInvalidResponseError, match="already listed"):
        repeat.admit(pages[0], {}, [{"id": 5}])


# --------------------------------------------------------------------------------------------------
# 7. Redaction gaps
# --------------------------------------------------------------------------------------------------


def test_an_unexpected_success_envelope_is_quoted_without_the_token():
    body = json.dumps({"unexpected": f"echo of Bearer {TOKEN}"}).encode()
    with pytest.raises(AIOnTheBallInvalidResponseError) as excinfo:
        interpret_response(SETTINGS, ApiRequest("GET", "/videos/1"), 200, {}, body)
    assert TOKEN not in str(excinfo.value)
    assert "***" in str(excinfo.value)


@pytest.mark.parametrize(
    ("host", "secret"),
    [
        pytest.param("https://aiontheball.nl/api/v1?key=hunter2-secret", "hunter2-secret", id="query"),
        pytest.param("https://aiontheball.nl/api/v1#hunter2-secret", "hunter2-secret", id="fragment"),
        pytest.param("ftp://admin:hunter2-secret@aiontheball.nl/api", "hunter2-secret", id="credentials-bad-scheme"),
        pytest.param("https://[::1/api?key=hunter2-secret", "hunter2-secret", id="unparseable"),
    ],
)
def test_configuration_errors_never_echo_secrets_of_the_host_field(host, secret):
    with pytest.raises(AIOnTheBallConfigurationError, match="base URL") as excinfo:
        resolve_base_url(host)
    assert secret not in str(excinfo.value)


# --------------------------------------------------------------------------------------------------
# 8. Reschedule mode: the error budget survives between pokes (Airflow 3.3+: task state store)
# --------------------------------------------------------------------------------------------------

RESCHEDULE_DAG = """
import datetime as dt

from airflow.sdk import DAG

from airflow_provider_aiontheball.sensors.video import AIOnTheBallVideoSensor

with DAG("reschedule_budget", schedule=None, start_date=dt.datetime(2025, 1, 1), catchup=False) as dag:
    AIOnTheBallVideoSensor(
        task_id="wait_for_video", video_id=790, mode="reschedule", poke_interval=0.1, timeout=600,
        max_consecutive_errors=3, deferrable=False,
    )
"""


@pytest.mark.skipif(not HAS_TASK_STATE_STORE, reason="Airflow < 3.3 has no task state store: documented limitation")
def test_reschedule_mode_spends_its_error_budget_across_pokes(airflow_db, aiontheball_conn):
    AIOnTheBallHook().create_video("https://example.com/a.mp4?sim_outcome=stuck")
    inject(aiontheball_conn, kind="status", status=503, method="GET", path="/videos/790", count=50)
    dag_run = write_dag(RESCHEDULE_DAG, "reschedule_budget").test()
    assert states(dag_run) == {("wait_for_video", -1): "failed"}
    polls = api_requests(aiontheball_conn, "GET", "/videos/790")
    attempts_per_poke = FAST_RETRY_EXTRA["retry_limit"] + 1  # the hook's own retries inside one poke
    assert len(polls) == 3 * attempts_per_poke, "three failing pokes, then the budget was spent (not the timeout)"


# --------------------------------------------------------------------------------------------------
# 9. A retried DELETE that already succeeded
# --------------------------------------------------------------------------------------------------


def test_a_delete_whose_answer_was_lost_counts_as_done_on_its_retry(aiontheball_conn):
    video_id = AIOnTheBallHook().create_video(PRESIGNED)["id"]
    inject(aiontheball_conn, kind="drop_after_processing", method="DELETE")
    task = AIOnTheBallDeleteVideoOperator(task_id="delete", video_id=video_id, missing_ok=False)
    assert task.execute(task_context()) == video_id
    assert [r["status"] for r in api_requests(aiontheball_conn, "DELETE")] == [None, 404]


def test_a_delete_of_a_video_that_never_existed_still_fails_when_missing_is_not_ok(aiontheball_conn):
    from airflow_provider_aiontheball.exceptions import AIOnTheBallTerminalError

    with pytest.raises(AIOnTheBallTerminalError, match="does not exist"):
        AIOnTheBallDeleteVideoOperator(task_id="delete", video_id=999, missing_ok=False).execute(task_context())


# --------------------------------------------------------------------------------------------------
# 10. The deadline bounds the request in flight
# --------------------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_slow_poll_does_not_make_the_timeout_event_late(aiontheball_conn):
    video_id = await asyncio.to_thread(lambda: AIOnTheBallHook().create_video(PRESIGNED)["id"])
    inject(aiontheball_conn, kind="slow", delay=4.0, method="GET", path=f"/videos/{video_id}", count=5)
    trigger = AIOnTheBallVideoTrigger(video_id, end_time=time.time() + 0.5, **FAST)
    # The read timeout is 5 s: before the fix the event came only after the slow answer (4 s).
    event = (await asyncio.wait_for(trigger.run().__anext__(), 2.5)).payload
    assert event["status"] == "timeout"


# --------------------------------------------------------------------------------------------------
# 11. Input edge cases
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "message"),
    [
        pytest.param(lambda: validate_id("١٢"), "video_id: expected an integer", id="arabic-indic-digits"),
        pytest.param(lambda: validate_id("\uff11\uff12"), "video_id: expected an integer", id="fullwidth-digits"),
        pytest.param(lambda: validate_id(2**63), "video_id: must be at most", id="id-beyond-64-bit"),
        pytest.param(lambda: validate_id("9" * 40), "video_id: must be at most", id="forty-digit-id"),
        pytest.param(
            lambda: validate_integer(10**9, "start_offset_seconds"),
            "start_offset_seconds: must be at most",
            id="offset",
        ),
        pytest.param(
            lambda: video_create_body({"video_file_url": "https://e.com/a.mp4", "end_offset_seconds": 86_401}),
            "end_offset_seconds: must be at most 86400",
            id="offset-in-body",
        ),
    ],
)
def test_numbers_are_ascii_and_bounded(call, message):
    with pytest.raises(ValueError, match=f"^{message}"):
        call()


def test_sane_values_still_pass():
    assert validate_id(" 790 ") == 790
    assert validate_id(2**63 - 1) == 2**63 - 1
    assert validate_integer("5400", "end_offset_seconds") == 5400
