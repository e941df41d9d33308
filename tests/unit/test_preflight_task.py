"""A pre-flight failure inside a task fails it without retries (the pre-flight checks themselves:
tests/standalone/test_preflight.py)."""

from __future__ import annotations

import pytest
from airflow.providers.common.compat.sdk import AirflowFailException

from airflow_provider_aiontheball.exceptions import AIOnTheBallInputError, bad_input_fails_task
from airflow_provider_aiontheball.preflight import check_video_url

SIGNATURE = "5f1c" * 16


def test_a_requirement_not_met_becomes_an_input_error_that_skips_the_retries() -> None:
    # Expired long ago: the check fails before any request, so no server is needed.
    url = (
        "https://bucket.example.com/matches/ajax-psv.mp4?X-Amz-Date=20200101T000000Z&X-Amz-Expires=3600"
        f"&X-Amz-Signature={SIGNATURE}"
    )

    with pytest.raises(AIOnTheBallInputError) as raised, bad_input_fails_task():
        check_video_url(url)

    assert isinstance(raised.value, AirflowFailException)
    assert str(raised.value).startswith(
        "video_file_url: https://bucket.example.com/matches/ajax-psv.mp4?***: the presigned URL expired"
    )
    assert SIGNATURE not in str(raised.value)
