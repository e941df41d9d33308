"""Polling schedules (polling.py), on a virtual clock (no sleeping)."""

from __future__ import annotations

import pytest

from airflow_provider_aiontheball.polling import AdaptiveSchedule, ProgressSchedule


def test_adaptive_schedule_backs_off_while_nothing_changes_and_resets_on_change():
    schedule = AdaptiveSchedule(min_interval=5, max_interval=60, factor=1.5)
    waits = [schedule.after_observation("downloading") for _ in range(9)]
    assert waits[:4] == [5, 7.5, 11.25, 16.875]
    assert waits[-1] == 60, "capped at the poll interval"
    assert schedule.after_observation("locally_available") == 5, "a change polls soon again"


def test_adaptive_schedule_failures_back_off_and_retry_after_wins():
    schedule = AdaptiveSchedule(min_interval=2, max_interval=30)
    assert [schedule.after_failure() for _ in range(6)] == [2, 4, 8, 16, 30, 30]
    assert schedule.after_failure(retry_after=7.5) == 7.5
    schedule.after_observation("init")
    assert schedule.after_failure() == 2, "a success ends the failure streak"


def test_progress_schedule_sleeps_long_far_from_the_finish_and_short_near_it():
    schedule = ProgressSchedule(min_interval=45, max_interval=1800, safety=0.5, margin_points=3)
    assert schedule.after_observation("running", 0, 0) == 45, "no rate yet: fallback"
    far = schedule.after_observation("running", 10, 1440)  # 10 points in 24 min: ~3.6 h left
    assert far == 1800
    assert schedule.eta_seconds() == pytest.approx(12960)
    closer = schedule.after_observation("running", 96, 13824)  # 1 point before the margin: 144 s
    assert closer == pytest.approx(72), "half the time to the margin"
    assert schedule.after_observation("running", 97.5, 14040) == 45, "within the margin: the minimum"


def test_progress_schedule_backs_off_gently_on_a_stalled_finish():
    schedule = ProgressSchedule(min_interval=30, max_interval=1800, stalled_max_interval=60)
    schedule.after_observation("running", 0, 0)
    schedule.after_observation("running", 96, 10000)
    waits = [schedule.after_observation("aggregating", 99, 10000 + i) for i in range(12)]
    assert waits[:4] == [30, 30, 30, 45], "a few polls at the minimum, then back off"
    assert waits[-1] == 60, "capped so a finish after a long stall is still noticed within a minute"


def test_progress_schedule_keeps_the_rate_from_running_into_aggregating():
    schedule = ProgressSchedule()
    schedule.after_observation("running", 0, 0)
    schedule.after_observation("running", 50, 5000)
    schedule.after_observation("aggregating", 95, 9500)
    assert schedule.eta_seconds() == pytest.approx(500)


def test_progress_schedule_measures_afresh_after_a_flat_phase():
    schedule = ProgressSchedule()
    schedule.after_observation("waiting_for_video", 0, 0)
    schedule.after_observation("waiting_for_video", 0, 3000)
    schedule.after_observation("running", 0, 3600)
    schedule.after_observation("running", 10, 4600)
    assert schedule.eta_seconds() == pytest.approx(9000), "rate from the start of running, not of waiting"
