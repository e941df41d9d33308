"""Operator extra link "AI on the Ball video".

The link is built from XCom only (no API call when a page renders): the ``mp4_source`` of the video,
pushed by the create operator once it waited for the video, and by the video sensor. The API
documents no web page for a video; if it ever does, this is the one place to point at it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider_aiontheball._airflow import BaseOperatorLink

# From where airflow.providers.common.compat.sdk finds it (newest first), without importing that layer:
# it would add to every DAG-file parse (benchmarks/README.md, "DAG-parse cost").
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


def link_xcoms(video: dict[str, Any]) -> dict[str, str]:
    """The XComs a task that ends in the triggerer pushes for the link (:mod:`~airflow_provider_aiontheball.task_end`):
    ``mp4_source`` as :func:`push_link_xcom` pushes it, and on Airflow 3 the link's URL under the link's
    ``xcom_key`` — what Airflow 3's task runner stores when a task ends on a worker, and the only thing its
    UI reads (it never calls ``get_link``)."""
    source = video.get("mp4_source")
    if not source:
        return {}
    xcoms = {XCOM_MP4_SOURCE: str(source)}
    xcom_key = getattr(AIOnTheBallVideoLink(), "xcom_key", None)  # Airflow 3's BaseOperatorLink only
    if isinstance(xcom_key, str):
        xcoms[xcom_key] = link_url(source)
    return xcoms


def link_url(value: Any) -> str:
    """The link for a stored ``mp4_source``: only an http(s) URL, else no link."""
    return value if isinstance(value, str) and value.startswith(("https://", "http://")) else ""


class AIOnTheBallVideoLink(BaseOperatorLink):
    """Link to the video's MP4 (``mp4_source`` of ``GET /videos/{id}``), read from the task's XCom."""

    name = "AI on the Ball video"

    def get_link(self, operator: Any, *, ti_key: TaskInstanceKey) -> str:
        from airflow.providers.common.compat.sdk import XCom

        return link_url(XCom.get_value(ti_key=ti_key, key=XCOM_MP4_SOURCE))
