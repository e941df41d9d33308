"""The pure parts of the distributed fault-drill harness (``make e2e-distributed``), and its contract
with the provider's trigger log line. The drills themselves run in real processes: scripts/e2e_distributed.py."""

from __future__ import annotations

import asyncio
import re
import time

import pytest

from aib_harness.distributed import (
    DEADLINE_LINE,
    STATUS_AFTER_START,
    Check,
    format_figures,
    longest_gap,
    match_conf,
)
from aib_harness.logs import find_secrets, never_started, read_log_lines
from airflow_provider_aiontheball.hooks.aiontheball import AIOnTheBallHook
from airflow_provider_aiontheball.triggers.video import AIOnTheBallVideoTrigger
from airflow_provider_aiontheball.waiting import utc_timestamp


@pytest.mark.parametrize(
    ("times", "window", "expected"),
    [
        pytest.param([0, 5, 25, 30], (10, 20), 20, id="the-gap-spanning-the-takeover"),
        pytest.param([0, 5, 10, 40], (0, 8), 5, id="a-later-gap-outside-the-window-ignored"),
        pytest.param([30, 0, 10], (0, 30), 20, id="unsorted-times"),
        pytest.param([7], (0, 30), None, id="one-poll-no-gap"),
        pytest.param([], (0, 30), None, id="no-polls"),
    ],
)
def test_longest_gap(times, window, expected):
    assert longest_gap(times, *window) == expected


@pytest.mark.parametrize(
    ("message", "is_a_poll"),
    [
        pytest.param("analysis 1248: running 28% (ETA ~1m 45s)", True, id="analysis-progress"),
        pytest.param("video 790: downloading", True, id="video-status"),
        pytest.param(
            "video 790: waiting in the triggerer; deadline 2026-12-02T18:00:00Z (started x)", False, id="start"
        ),
        pytest.param("Trigger fired event", False, id="airflow-line"),
        pytest.param("analysis 1280: poll failed with 503 (Service Unavailable) (1 of 10)", False, id="failed-poll"),
    ],
)
def test_a_trigger_status_line_shows_it_polled(message, is_a_poll):
    assert bool(STATUS_AFTER_START.match(message)) is is_a_poll


def test_find_secrets_names_the_file_not_the_secret(tmp_path):
    (tmp_path / "logs" / "deep").mkdir(parents=True)
    (tmp_path / "logs" / "deep" / "attempt=1.log").write_text("Authorization: Bearer s3cr3t-token\n")
    (tmp_path / "clean.log").write_text("nothing to see\n")
    found = find_secrets(tmp_path, ["s3cr3t-token", ""])
    assert found == [f"{tmp_path / 'logs' / 'deep' / 'attempt=1.log'}: secret #1"]
    assert "s3cr3t" not in " ".join(found)


def test_find_secrets_finds_a_signature_in_clear_by_its_pattern(tmp_path):
    signature = "ab12" * 16
    (tmp_path / "task.log").write_text(f"GET /matches/a.mp4?X-Amz-Date=20261208T000000Z&X-Amz-Signature={signature}\n")
    (tmp_path / "masked.log").write_text("GET /matches/a.mp4?X-Amz-Signature=*** and /matches/b.mp4?***\n")
    pattern = re.compile(rb"X-Amz-Signature=[0-9a-f]{64}")

    found = find_secrets(tmp_path, [], [pattern])

    assert found == [f"{tmp_path / 'task.log'}: pattern {pattern.pattern!r}"]
    assert signature not in " ".join(found)


@pytest.mark.parametrize(
    ("content", "started"),
    [
        pytest.param("", False, id="empty-log-of-a-task-lost-before-it-ran"),
        pytest.param(
            '{"timestamp":"2026-12-08T02:53:21.037765Z","level":"info","event":"::group::Pre Execute","logger":"task"}\n',
            True,
            id="airflow-3.2+-execution-start",
        ),
        pytest.param(
            '{"timestamp":"2026-12-08T02:53:21.065110Z","level":"info","event":"DAG bundles loaded: dags-folder"}\n',
            True,
            id="airflow-3.0-3.1-execution-start",
        ),
    ],
)
def test_a_try_that_never_started_is_told_from_one_that_ran(tmp_path, content, started):
    log = tmp_path / "attempt=1.log"
    log.write_text(content)

    assert never_started(read_log_lines(log)) is not started


def test_matches_have_distinct_urls_and_titles():
    matches = match_conf(40)
    assert len({m["video_file_url"] for m in matches}) == 40
    # The example DAG derives each title from the teams: distinct teams, distinct titles, so a retried
    # create can recognise its own video and the duplicate count is per match.
    assert len({(m["home_team_name"], m["away_team_name"]) for m in matches}) == 40


def test_figures_show_every_check_and_failures_loudly():
    class Harness:  # only what format_figures reads
        version = "3.3.2"

        class config:
            workers, worker_concurrency, triggerers, matches = 2, 4, 2, 40

    checks = [Check("outage", "no task failed", True, "none"), Check("run", "one video per match", False, "41 videos")]
    text = format_figures({"matches_completed": 40, "matches_expected": 40}, checks, Harness())  # type: ignore[arg-type]
    assert "| matches completed / expected | 40 / 40 |" in text
    assert "| outage | no task failed | ok: none |" in text
    assert "| run | one video per match | FAILED: 41 videos |" in text


@pytest.mark.asyncio
async def test_a_rebuilt_trigger_logs_the_stored_deadline(aiontheball_conn, all_logs):
    """The takeover drill compares the deadline each triggerer logged for the same wait: the line must
    be what the harness parses, and a rebuilt trigger (another triggerer, later) must log the same."""
    video_id = await asyncio.to_thread(lambda: AIOnTheBallHook().create_video("https://example.com/m.mp4")["id"])
    end_time = time.time() + 3600
    first = AIOnTheBallVideoTrigger(video_id, end_time=end_time, poll_interval=0.2, min_poll_interval=0.02)
    _, kwargs = first.serialize()

    async def run_to_its_event(trigger: AIOnTheBallVideoTrigger) -> None:
        events = await asyncio.wait_for(asyncio.ensure_future(anext(aiter(trigger.run()))), 15)
        assert events.payload["status"] == "success"

    await run_to_its_event(first)
    await asyncio.sleep(1.1)  # the rebuild happens on a later wall-clock second
    await run_to_its_event(AIOnTheBallVideoTrigger(**kwargs))
    parsed = [m for line in all_logs.messages if (m := DEADLINE_LINE.match(line))]
    assert len(parsed) == 2, all_logs.messages
    assert {(m["kind"], m["id"]) for m in parsed} == {("video", str(video_id))}
    assert {m["deadline"] for m in parsed} == {
        f"deadline {utc_timestamp(end_time)} (started {utc_timestamp(first.started_at)})"
    }
