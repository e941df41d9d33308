"""The ``/api/v1`` request handlers of :class:`Simulator`."""

from __future__ import annotations

import contextlib
import json
import math
import uuid
from urllib.parse import parse_qs, urlsplit

from aiohttp import web

from airflow_provider_aiontheball.testing.simulator.config import (
    ANALYSIS_UUID_NAMESPACE,
    DEFAULT_FPS,
    VIDEO_OUTCOMES,
    RequestRecord,
)
from airflow_provider_aiontheball.testing.simulator.core import _ORG_KEY, _TRUNCATE_KEY, _SimulatorCore
from airflow_provider_aiontheball.testing.simulator.match import (
    _events_json,
    _schema_json,
    _summary_json,
    _tracking_parquet,
    tracking_sample_rows,
)
from airflow_provider_aiontheball.testing.simulator.query import _query_json, _validate_query
from airflow_provider_aiontheball.testing.simulator.state import (
    _Analysis,
    _ApiError,
    _check_video_outcome,
    _game_name,
    _utc_now_iso,
    _Video,
    _video_schedule,
)
from airflow_provider_aiontheball.testing.simulator.validation import (
    _Errors,
    _is_int,
    _validate_video_fields,
    _validation_payload,
)


class _ApiHandlers(_SimulatorCore):
    """The API handlers; the middleware of :meth:`Simulator.app` authenticates and applies faults first."""

    # ---- API handlers --------------------------------------------------------------------------

    async def _list_videos(self, request: web.Request) -> web.StreamResponse:
        per_page = max(int(self.config.per_page), 1)
        now = self.now()
        ids = [
            i
            for i in list(self._org_videos.get(request[_ORG_KEY], ()))
            if (video := self._videos.get(i)) is not None and video.listed <= now
        ]
        total = len(ids)
        last_page = max(math.ceil(total / per_page), 1)
        raw_page = request.query.get("page", "1")
        page = int(raw_page) if raw_page.isascii() and raw_page.isdigit() and len(raw_page) < 10 else 1
        page = max(page, 1)
        offset = (page - 1) * per_page
        items = [
            self._video_json(self._videos[i], now, listing=True)
            for i in ids[offset : offset + per_page]
            if i in self._videos
        ]
        path = str(request.url.with_query(None))
        return web.json_response(
            {
                "data": items,
                "links": {
                    "first": f"{path}?page=1",
                    "last": f"{path}?page={last_page}",
                    "prev": f"{path}?page={page - 1}" if page > 1 else None,
                    "next": f"{path}?page={page + 1}" if page < last_page else None,
                },
                "meta": {
                    "current_page": page,
                    "from": offset + 1 if items else None,
                    "last_page": last_page,
                    "path": path,
                    "per_page": per_page,
                    "to": offset + len(items) if items else None,
                    "total": total,
                },
            }
        )

    async def _create_video(self, request: web.Request) -> web.StreamResponse:
        body = self._body_object(request)
        errors = _Errors()
        clean = _validate_video_fields(body, errors, creating=True, current=None)
        outcome: str | None = None
        if "video_file_url" in clean:
            wanted = parse_qs(urlsplit(clean["video_file_url"]).query).get("sim_outcome")
            if wanted:
                try:
                    outcome = _check_video_outcome(wanted[-1])
                except ValueError:
                    errors.add(
                        "video_file_url",
                        "The video file url sim_outcome parameter is invalid (simulator only): use "
                        f"{', '.join(VIDEO_OUTCOMES)} or status:<value>.",
                    )
        errors.raise_if_any()
        now = self.now()
        _, created_at = _utc_now_iso()
        with self._lock:
            if outcome is None:
                outcome = self._video_script.popleft() if self._video_script else "available"
            video_id = self._next_video_id
            self._next_video_id += 1
            name = _game_name(video_id, self._game_names)
            self._game_names.add(name)
        video = _Video(
            id=video_id,
            org=request[_ORG_KEY],
            created=now,
            created_at=created_at,
            game_name=name,
            video_file_url=clean["video_file_url"],
            title=clean.get("title"),
            home_team_name=clean.get("home_team_name"),
            away_team_name=clean.get("away_team_name"),
            date=clean.get("date"),
            start_offset_seconds=clean.get("start_offset_seconds"),
            end_offset_seconds=clean.get("end_offset_seconds"),
            left_start_team=clean.get("left_start_team"),
            outcome=outcome,
            schedule=_video_schedule(now, self.config.video_step_seconds, outcome),
            listed=now + max(float(self.config.commit_delay_seconds), 0.0),
        )
        self._videos[video_id] = video
        self._org_videos.setdefault(video.org, []).append(video_id)
        # assumed (docs silent): 201 Created.
        return web.json_response({"data": self._video_json(video, now, listing=False, created=True)}, status=201)

    async def _get_video(self, request: web.Request) -> web.StreamResponse:
        video = self._owned_video(request)
        now = self.now()
        with self._lock:
            video.gets += 1
            if video.gets < self.config.video_ready_after_gets:
                video.hold_final_status(now)
        return web.json_response({"data": self._video_json(video, now, listing=False)})

    async def _update_video(self, request: web.Request) -> web.StreamResponse:
        video = self._owned_video(request)
        errors = _Errors()
        clean = _validate_video_fields(self._body_object(request), errors, creating=False, current=video)
        errors.raise_if_any()
        for name, value in clean.items():
            setattr(video, name, value)
        return web.json_response({"data": self._video_json(video, self.now(), listing=False)})

    async def _delete_video(self, request: web.Request) -> web.StreamResponse:
        video = self._owned_video(request)
        self._videos.pop(video.id, None)
        with contextlib.suppress(ValueError, KeyError):
            self._org_videos[video.org].remove(video.id)
        for analysis_id in video.analysis_ids:
            self._analyses.pop(analysis_id, None)
        return web.Response(status=204)

    async def _create_analysis(self, request: web.Request) -> web.StreamResponse:
        video = self._owned_video(request)
        body = self._body_object(request)
        errors = _Errors()
        fps = body.get("fps")
        if fps is None or fps == "":
            fps = DEFAULT_FPS  # assumed (docs silent): the tracking docs' 25 fps
        elif not _is_int(fps):
            errors.add("fps", "The fps field must be an integer.")
        elif fps < 1:
            errors.add("fps", "The fps field must be at least 1.")
        errors.raise_if_any()
        now = self.now()
        wall, created_at = _utc_now_iso()
        with self._lock:
            outcome, error_at = self._analysis_script.popleft() if self._analysis_script else ("done", 50.0)
            analysis_id = self._next_analysis_id
            self._next_analysis_id += 1
        analysis = _Analysis(
            id=analysis_id,
            video_id=video.id,
            org=video.org,
            uuid=str(uuid.uuid5(ANALYSIS_UUID_NAMESPACE, str(analysis_id))),
            created=now,
            created_at=created_at,
            created_wall=wall,
            fps=int(fps),
            outcome=outcome,
            error_at_progress=error_at,
            listed=now + max(float(self.config.commit_delay_seconds), 0.0),
        )
        self._analyses[analysis_id] = analysis
        video.analysis_ids.append(analysis_id)
        # assumed (docs silent): 201 Created.
        return web.json_response({"data": self._analysis_json(analysis, now)}, status=201)

    async def _get_analysis(self, request: web.Request) -> web.StreamResponse:
        analysis = self._owned_analysis(request)
        data = self._analysis_json(analysis, self.now())
        # assumed (docs silent): enveloped by default, like every other analysis object.
        return web.json_response({"data": data} if self.config.analysis_get_envelope else data)

    async def _summary(self, request: web.Request) -> web.StreamResponse:
        analysis, video, state = self._done_analysis(request)
        match = self._match(analysis, video)
        return web.json_response(_summary_json(match, analysis, video, state.done_at or self.now()))

    async def _events(self, request: web.Request) -> web.StreamResponse:
        analysis, video, _ = self._done_analysis(request)
        return web.json_response(_events_json(self._match(analysis, video)))

    async def _schema(self, request: web.Request) -> web.StreamResponse:
        self._done_analysis(request)
        return web.json_response(_schema_json())

    async def _query_intervals(self, request: web.Request) -> web.StreamResponse:
        self._owned_analysis(request)
        query = _validate_query(self._body_object(request))
        analysis, video, _ = self._done_analysis(request)
        return web.json_response(_query_json(self._match(analysis, video), query))

    async def _tracking(self, request: web.Request) -> web.StreamResponse:
        self._owned_analysis(request)
        fmt = request.query.get("format", "parquet")
        if fmt not in ("parquet", "json"):
            raise _ApiError(422, _validation_payload({"format": ["The selected format is invalid."]}))
        analysis, _, _ = self._done_analysis(request)
        return await self._tracking_file(request, analysis.id, fmt)

    async def _cdn_tracking(self, request: web.Request) -> web.StreamResponse:
        """A CDN's public copy of an analysis's tracking file (no token needed; a ``redirect`` fault sends
        downloads here). Logged like an API request, with whether an ``Authorization`` header came along."""
        record = RequestRecord(
            method=request.method,
            path=request.path,
            query=dict(request.query.items()),
            status=None,
            token_org=None,
            time=self.now(),
            body=None,
            authorization="Authorization" in request.headers,
        )
        with self._lock:
            self._log.append(record)
        try:
            analysis_id = int(request.match_info["analysis_id"])
        except ValueError:
            analysis_id = -1
        fmt = request.query.get("format", "parquet")
        if analysis_id not in self._analyses or fmt not in ("parquet", "json"):
            record.status = 404
            return web.Response(status=404, text="Not Found")
        record.status = 200
        return await self._tracking_file(request, analysis_id, fmt)

    async def _tracking_file(self, request: web.Request, analysis_id: int, fmt: str) -> web.StreamResponse:
        response = web.StreamResponse(
            status=200,
            headers={
                # assumed (docs silent): content types and attachment file name.
                "Content-Type": "application/octet-stream" if fmt == "parquet" else "application/json",
                "Content-Disposition": f"attachment; filename=tracking_{analysis_id}.{fmt}",
            },
        )
        response.enable_chunked_encoding()
        await response.prepare(request)
        chunks: list[bytes] = []
        if fmt == "parquet":
            data = _tracking_parquet()
            chunks = [data[start : start + 16_384] for start in range(0, len(data), 16_384)]
        else:
            rows = tracking_sample_rows()
            for start in range(0, len(rows), 100):
                chunk = ",".join(json.dumps(row, separators=(",", ":")) for row in rows[start : start + 100])
                prefix = "[" if start == 0 else ","
                chunks.append((prefix + chunk).encode())
            chunks.append(b"]" if rows else b"[]")
        await self._write_body(request, response, chunks)
        return response

    # ---- streaming bodies ------------------------------------------------------------------------

    @staticmethod
    def _cut(request: web.Request) -> None:
        """Close the connection after what was written so far (``close()`` sends buffered data first).

        aiohttp's own end of the response then fails on the closing transport, which it treats as a
        premature client disconnection: no terminating chunk is sent and nothing is logged.
        """
        transport = request.transport
        if transport is not None:
            transport.close()

    async def _write_body(self, request: web.Request, response: web.StreamResponse, chunks: list[bytes]) -> None:
        """Write a prepared streaming response's body and end it; under a ``truncate`` fault only its
        first half, then close the connection."""
        if not request.get(_TRUNCATE_KEY):
            for chunk in chunks:
                await response.write(chunk)
            await response.write_eof()
            return
        budget = sum(len(chunk) for chunk in chunks) // 2
        for chunk in chunks:
            if budget <= 0:
                break
            await response.write(chunk[:budget])
            budget -= len(chunk)
        self._cut(request)
