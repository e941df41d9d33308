"""The API's endpoints as :class:`ApiRequest` builders — one function per endpoint, shared by both hooks.

Each builder validates its arguments (so a bad value never leaves the process) and says how the
answer is wrapped. The hooks only send what these return.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airflow_provider_aiontheball.hooks._client import ApiRequest, Envelope
from airflow_provider_aiontheball.validation import (
    analysis_create_body,
    query_intervals_body,
    validate_id,
    validate_tracking_format,
    video_create_body,
    video_update_body,
)


def list_videos() -> ApiRequest:
    return ApiRequest("GET", "/videos", envelope=Envelope.PAGE)


def get_video(video_id: Any) -> ApiRequest:
    return ApiRequest("GET", f"/videos/{validate_id(video_id)}")


def create_video(fields: Mapping[str, Any]) -> ApiRequest:
    return ApiRequest("POST", "/videos", json_body=video_create_body(fields))


def update_video(video_id: Any, fields: Mapping[str, Any]) -> ApiRequest:
    return ApiRequest("PUT", f"/videos/{validate_id(video_id)}", json_body=video_update_body(fields))


def delete_video(video_id: Any) -> ApiRequest:
    return ApiRequest("DELETE", f"/videos/{validate_id(video_id)}", envelope=Envelope.NONE)


def create_analysis(video_id: Any, fps: Any = None) -> ApiRequest:
    return ApiRequest("POST", f"/videos/{validate_id(video_id)}/analysis", json_body=analysis_create_body(fps))


def get_analysis(analysis_id: Any) -> ApiRequest:
    # Undocumented endpoint (the Quick Start's "poll the analysis" is cut off): accept {"data": ...}
    # or a bare object (assumed); a 404 may mean "no such route" — see the hooks' get_analysis.
    return ApiRequest("GET", f"/analyses/{validate_id(analysis_id, 'analysis_id')}", envelope=Envelope.DATA_OR_BARE)


def get_summary(analysis_id: Any) -> ApiRequest:
    return ApiRequest("GET", f"/analyses/{validate_id(analysis_id, 'analysis_id')}/summary", envelope=Envelope.BARE)


def get_events(analysis_id: Any) -> ApiRequest:
    return ApiRequest("GET", f"/analyses/{validate_id(analysis_id, 'analysis_id')}/events", envelope=Envelope.BARE)


def get_schema(analysis_id: Any) -> ApiRequest:
    return ApiRequest("GET", f"/analyses/{validate_id(analysis_id, 'analysis_id')}/schema", envelope=Envelope.BARE)


def query_intervals(analysis_id: Any, filters: Any, **options: Any) -> ApiRequest:
    return ApiRequest(
        "POST",
        f"/analyses/{validate_id(analysis_id, 'analysis_id')}/query-intervals",
        json_body=query_intervals_body(filters, **options),
        envelope=Envelope.BARE,
        idempotent=True,  # a read: re-sending after a lost response is harmless
    )


def download_tracking(analysis_id: Any, format: Any = "parquet") -> ApiRequest:
    return ApiRequest(
        "GET",
        f"/analyses/{validate_id(analysis_id, 'analysis_id')}/tracking/download",
        params=(("format", validate_tracking_format(format)),),
        envelope=Envelope.NONE,
    )
