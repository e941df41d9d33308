"""What every waiting operator and sensor takes from its base (``operators/_base.WaitingTask``): the wait
kwargs reach each task however a DAG gives them — as arguments, through ``default_args``, and through
``partial()`` of a mapped task — with each kind's own defaults."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from airflow_provider_aiontheball.defaults import (
    DEFAULT_ANALYSIS_MIN_POLL_INTERVAL,
    DEFAULT_ANALYSIS_POLL_INTERVAL,
    DEFAULT_CONN_ID,
    DEFAULT_ERROR_BUDGET_SECONDS,
    DEFAULT_MAX_CONSECUTIVE_ERRORS,
    DEFAULT_MIN_POLL_INTERVAL,
    DEFAULT_POLL_INTERVAL,
)
from airflow_provider_aiontheball.operators.analysis import AIOnTheBallCreateAnalysisOperator
from airflow_provider_aiontheball.operators.video import AIOnTheBallCreateVideoOperator
from airflow_provider_aiontheball.sensors.analysis import AIOnTheBallAnalysisSensor
from airflow_provider_aiontheball.sensors.video import AIOnTheBallVideoSensor

URL = "https://cdn.example.com/ajax-psv.mp4"

#: Each waiting task, its required arguments, and the field its ``expand()`` maps over.
WAITING_TASKS = [
    pytest.param(AIOnTheBallCreateVideoOperator, {"video_file_url": URL}, "video_file_url", id="create-video"),
    pytest.param(AIOnTheBallCreateAnalysisOperator, {"video_id": 790}, "video_id", id="create-analysis"),
    pytest.param(AIOnTheBallVideoSensor, {"video_id": 790}, "video_id", id="video-sensor"),
    pytest.param(AIOnTheBallAnalysisSensor, {"analysis_id": 1246}, "analysis_id", id="analysis-sensor"),
]

#: A value for every wait kwarg the base owns, none of them a default.
WAIT_KWARGS: dict[str, Any] = {
    "aiontheball_conn_id": "aib_other",
    "deferrable": True,
    "poll_interval": 31.0,
    "min_poll_interval": 3.0,
    "max_consecutive_errors": 4,
    "error_budget_seconds": 41.0,
    "finish_in_triggerer": False,
}


def _dag(**kwargs: Any) -> Any:
    from airflow.providers.common.compat.sdk import DAG

    return DAG("waiting_task_kwargs", schedule=None, start_date=dt.datetime(2025, 1, 1), catchup=False, **kwargs)


def _wait_kwargs_of(task: Any) -> dict[str, Any]:
    return {name: getattr(task, name) for name in WAIT_KWARGS}


@pytest.mark.parametrize(("task_cls", "required", "mapped_field"), WAITING_TASKS)
def test_wait_kwargs_given_as_arguments(task_cls: type, required: dict[str, Any], mapped_field: str) -> None:
    task = task_cls(task_id="t", **required, **WAIT_KWARGS)
    assert _wait_kwargs_of(task) == WAIT_KWARGS


@pytest.mark.parametrize(("task_cls", "required", "mapped_field"), WAITING_TASKS)
def test_wait_kwargs_given_through_default_args(task_cls: type, required: dict[str, Any], mapped_field: str) -> None:
    with _dag(default_args=WAIT_KWARGS):
        task = task_cls(task_id="t", **required)
    assert _wait_kwargs_of(task) == WAIT_KWARGS


@pytest.mark.parametrize(("task_cls", "required", "mapped_field"), WAITING_TASKS)
def test_wait_kwargs_given_through_partial(task_cls: type, required: dict[str, Any], mapped_field: str) -> None:
    """A season of matches: ``partial()`` takes every wait kwarg (an unknown one would fail the DAG's parse)."""
    with _dag():
        fixed = {name: value for name, value in required.items() if name != mapped_field}
        mapped = task_cls.partial(task_id="t", **fixed, **WAIT_KWARGS).expand(
            **{mapped_field: [required[mapped_field]]}
        )
    assert {name: mapped.partial_kwargs[name] for name in WAIT_KWARGS} == WAIT_KWARGS


@pytest.mark.parametrize(
    ("task_cls", "required", "poll_interval", "min_poll_interval"),
    [
        pytest.param(
            AIOnTheBallCreateVideoOperator,
            {"video_file_url": URL},
            DEFAULT_POLL_INTERVAL,
            DEFAULT_MIN_POLL_INTERVAL,
            id="create-video",
        ),
        pytest.param(
            AIOnTheBallCreateAnalysisOperator,
            {"video_id": 790},
            DEFAULT_ANALYSIS_POLL_INTERVAL,
            DEFAULT_ANALYSIS_MIN_POLL_INTERVAL,
            id="create-analysis",
        ),
        pytest.param(AIOnTheBallVideoSensor, {"video_id": 790}, None, DEFAULT_MIN_POLL_INTERVAL, id="video-sensor"),
        pytest.param(
            AIOnTheBallAnalysisSensor,
            {"analysis_id": 1246},
            DEFAULT_ANALYSIS_POLL_INTERVAL,
            DEFAULT_ANALYSIS_MIN_POLL_INTERVAL,
            id="analysis-sensor",
        ),
    ],
)
def test_each_kind_keeps_its_defaults(
    task_cls: type, required: dict[str, Any], poll_interval: float | None, min_poll_interval: float
) -> None:
    task = task_cls(task_id="t", **required)
    assert (task.aiontheball_conn_id, task.poll_interval, task.min_poll_interval) == (
        DEFAULT_CONN_ID,
        poll_interval,
        min_poll_interval,
    )
    assert (task.max_consecutive_errors, task.error_budget_seconds, task.finish_in_triggerer) == (
        DEFAULT_MAX_CONSECUTIVE_ERRORS,
        DEFAULT_ERROR_BUDGET_SECONDS,
        True,
    )


def test_the_video_sensor_polls_at_most_every_poke_interval_by_default() -> None:
    sensor = AIOnTheBallVideoSensor(task_id="t", video_id=790, poke_interval=45)
    assert sensor._settings.poll_interval == 45
