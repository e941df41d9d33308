"""Operator extra link "AI on the Ball video".

The link is built from XCom only (no API call when a page renders): the ``mp4_source`` of the video,
pushed by the create operator once it waited for the video, and by the video sensor. The API
documents no web page for a video; if it ever does, this is the one place to point at it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import BaseOperatorLink

from airflow_provider_aiontheball.defaults import XCOM_MP4_SOURCE

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import TaskInstanceKey


def reserve_link_xcom(context: Any) -> None:
    """Push an empty ``mp4_source`` when a task starts.

    Airflow 3 builds extra links when a task ends (also when it fails early or defers) and its XCom
    client logs an *error* for a key that does not exist yet; an empty value keeps task logs clean.
    The value is ``""``, not ``None``: Airflow 3.0's execution API rejects a null XCom value with a
    422, which fails the task before it makes a request.
    """
    context["ti"].xcom_push(key=XCOM_MP4_SOURCE, value="")


def push_link_xcom(context: Any, video: dict[str, Any]) -> None:
    """Push the available video's ``mp4_source`` for the link: read from XCom, never by calling the API
    when a page renders."""
    if video.get("mp4_source"):
        context["ti"].xcom_push(key=XCOM_MP4_SOURCE, value=video["mp4_source"])


class AIOnTheBallVideoLink(BaseOperatorLink):
    """Link to the video's MP4 (``mp4_source`` of ``GET /videos/{id}``), read from the task's XCom."""

    name = "AI on the Ball video"

    def get_link(self, operator: Any, *, ti_key: TaskInstanceKey) -> str:
        from airflow.providers.common.compat.sdk import XCom

        value = XCom.get_value(ti_key=ti_key, key=XCOM_MP4_SOURCE)
        return value if isinstance(value, str) and value.startswith(("https://", "http://")) else ""
