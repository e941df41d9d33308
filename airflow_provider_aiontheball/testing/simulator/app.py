"""The :class:`Simulator`: its :class:`aiohttp.web.Application`, middleware and fault application."""

from __future__ import annotations

import asyncio
import json
from typing import Final

from aiohttp import web
from aiohttp.typedefs import Handler

from airflow_provider_aiontheball.testing.simulator.config import (
    API_PREFIX,
    CDN_PREFIX,
    CONTROL_PREFIX,
    Fault,
    RequestRecord,
)
from airflow_provider_aiontheball.testing.simulator.control import _ControlHandlers
from airflow_provider_aiontheball.testing.simulator.core import _BODY_KEY, _ORG_KEY, _TRUNCATE_KEY, _WEBHOOK_KEY, log
from airflow_provider_aiontheball.testing.simulator.handlers import _ApiHandlers
from airflow_provider_aiontheball.testing.simulator.state import _MALFORMED, _ApiError
from airflow_provider_aiontheball.testing.simulator.webhooks import _Webhooks

_GET_ANALYSIS_ROUTE: Final = "aib-get-analysis"
_HTTP_REASONS: Final = {
    # Laravel's own message for its throttle middleware; the rest are plain reason phrases.
    429: "Too Many Attempts.",
    500: "Server Error.",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


def _inflating_json(size: int) -> bytes:
    """A gzip stream of a JSON object that decompresses to about ``size`` bytes (compressed: ~1/1000)."""
    import zlib

    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)  # wbits 31: a gzip container
    head, tail = b'{"data": {"id": 1, "padding": "', b'"}}'
    parts = [compressor.compress(head)]
    chunk = b" " * (1024 * 1024)
    remaining = max(size - len(head) - len(tail), 0)
    while remaining > 0:
        parts.append(compressor.compress(chunk[: min(remaining, len(chunk))]))
        remaining -= len(chunk)
    parts += [compressor.compress(tail), compressor.flush()]
    return b"".join(parts)


class Simulator(_ApiHandlers, _ControlHandlers, _Webhooks):
    """The simulated API's state and its :class:`aiohttp.web.Application`.

    :param config: behaviour knobs (defaults mimic the documented API).
    :param clock: a ``() -> seconds`` function; defaults to :func:`time.monotonic`. :meth:`advance`
        adds a virtual offset on top of it, so tests can move time forward without sleeping.

    The helper methods are plain dictionary/list operations, safe enough to call from another thread
    than the one serving requests (as tests do with :class:`SimulatorServer`).
    """

    # ---- middleware ----------------------------------------------------------------------------

    async def _read_body(self, request: web.Request) -> object:
        if not request.body_exists:
            return None
        raw = await request.read()
        if not raw.strip():
            return None
        try:
            return json.loads(raw)
        except ValueError:
            return _MALFORMED

    def _route_error(self, request: web.Request, exc: web.HTTPException | None) -> web.StreamResponse:
        route = request.path.lstrip("/")
        if isinstance(exc, web.HTTPMethodNotAllowed):
            allowed = ", ".join(sorted(exc.allowed_methods))
            message = f"The {request.method} method is not supported for route {route}. "
            message += f"Supported methods: {allowed}."
            return web.json_response({"message": message}, status=405, headers={"Allow": allowed})
        # assumed (docs silent): Laravel's NotFoundHttpException message for unknown routes.
        return web.json_response({"message": f"The route {route} could not be found."}, status=404)

    async def _api(self, request: web.Request, handler: Handler, record: RequestRecord) -> web.StreamResponse:
        match_info = request.match_info
        if match_info.http_exception is not None or (
            match_info.route.name == _GET_ANALYSIS_ROUTE and not self.config.analysis_get_route
        ):
            return self._route_error(request, match_info.http_exception)
        org = self._organisation(request)
        if org is None:
            # assumed (docs silent): Laravel's default 401 body.
            return web.json_response({"message": "Unauthenticated."}, status=401)
        record.token_org = org
        request[_ORG_KEY] = org
        try:
            return await handler(request)
        except _ApiError as exc:
            return web.json_response(exc.payload, status=exc.status, headers=exc.headers)

    def _organisation(self, request: web.Request) -> str | None:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return None
        return self.config.tokens.get(token)

    @staticmethod
    def _drop(request: web.Request) -> web.StreamResponse:
        """Close the connection without a response.

        After ``abort()`` aiohttp cannot write the returned response; it treats that as a premature
        client disconnection and logs nothing.
        """
        transport = request.transport
        if transport is not None:
            transport.abort()
        return web.Response(status=599)

    async def _truncated(self, request: web.Request, response: web.StreamResponse) -> web.StreamResponse:
        """Send a handler's unsent response with its full ``Content-Length`` but only half its body."""
        if response.prepared:  # a streaming handler (the tracking download) already truncated itself
            return response
        body = response.body if isinstance(response, web.Response) and isinstance(response.body, bytes) else b""
        started = web.StreamResponse(status=response.status, reason=response.reason, headers=response.headers)
        started.content_length = len(body)
        await started.prepare(request)
        await started.write(body[: len(body) // 2])
        self._cut(request)
        return started

    @staticmethod
    def _status_response(fault: Fault) -> web.StreamResponse:
        headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else None
        message = fault.message or _HTTP_REASONS.get(fault.status) or f"HTTP {fault.status}"
        return web.json_response({"message": message}, status=fault.status, headers=headers)

    async def _apply_fault(self, request: web.Request, fault: Fault) -> web.StreamResponse | None:
        """Apply a pre-processing fault; return the response to send instead, or ``None`` to go on."""
        if fault.kind == "status":
            return self._status_response(fault)
        if fault.kind == "malformed":
            return web.Response(
                status=200,
                body=(fault.body if fault.body is not None else "<html>oops").encode(),
                content_type=fault.content_type or "text/html",
            )
        if fault.kind == "drop":
            return self._drop(request)
        if fault.kind == "redirect":
            status = fault.status if 300 <= fault.status < 400 else 302
            return web.Response(status=status, headers={"Location": str(fault.location)})
        if fault.kind == "inflate":
            return web.Response(
                status=200,
                body=_inflating_json(fault.size),
                headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
            )
        if fault.kind == "slow":
            await asyncio.sleep(fault.delay)
        return None

    def app(self) -> web.Application:
        """Build the :class:`aiohttp.web.Application` serving ``/api/v1`` and ``/_control``."""

        @web.middleware
        async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
            path = request.path
            if not (path == API_PREFIX or path.startswith(API_PREFIX + "/")):
                if request.match_info.http_exception is not None:
                    return self._route_error(request, request.match_info.http_exception)
                try:
                    return await handler(request)
                except _ApiError as exc:
                    return web.json_response(exc.payload, status=exc.status, headers=exc.headers)
            body = await self._read_body(request)
            request[_BODY_KEY] = body
            record = RequestRecord(
                method=request.method,
                path=path[len(API_PREFIX) :] or "/",
                query=dict(request.query.items()),
                status=None,
                token_org=None,
                time=self.now(),
                body=None if body is _MALFORMED else body,
                authorization="Authorization" in request.headers,
            )
            with self._lock:
                self._log.append(record)
                self._request_count += 1
            fault = self._take_fault(request.method, record.path, body)
            try:
                response = await self._apply_fault(request, fault) if fault is not None else None
                if response is None:
                    if fault is not None and fault.kind == "truncate":
                        request[_TRUNCATE_KEY] = True
                    response = await self._api(request, handler, record)
                    if fault is not None and fault.kind == "drop_after_processing":
                        response = self._drop(request)
                    elif fault is not None and fault.kind == "status_after_processing":
                        response = self._status_response(fault)
                    elif fault is not None and fault.kind == "slow_after_processing":
                        await asyncio.sleep(fault.delay)  # committed; the client still waits for the answer
                    elif fault is not None and fault.kind == "truncate":
                        response = await self._truncated(request, response)
            except Exception:
                log.exception("Simulator error while handling %s %s", request.method, record.path)
                response = web.json_response({"message": "Server Error."}, status=500)
            dropped = fault is not None and fault.kind in ("drop", "drop_after_processing")
            record.status = None if dropped else response.status
            return response

        app = web.Application(middlewares=[middleware], client_max_size=8 * 1024 * 1024)
        app[_WEBHOOK_KEY] = []
        add = app.router
        api = API_PREFIX
        add.add_get(f"{api}/videos", self._list_videos)
        add.add_post(f"{api}/videos", self._create_video)
        add.add_get(f"{api}/videos/{{video_id}}", self._get_video)
        add.add_put(f"{api}/videos/{{video_id}}", self._update_video)
        add.add_delete(f"{api}/videos/{{video_id}}", self._delete_video)
        add.add_post(f"{api}/videos/{{video_id}}/analysis", self._create_analysis)
        add.add_get(f"{api}/analyses/{{analysis_id}}", self._get_analysis, name=_GET_ANALYSIS_ROUTE)
        add.add_get(f"{api}/analyses/{{analysis_id}}/summary", self._summary)
        add.add_get(f"{api}/analyses/{{analysis_id}}/events", self._events)
        add.add_get(f"{api}/analyses/{{analysis_id}}/schema", self._schema)
        add.add_post(f"{api}/analyses/{{analysis_id}}/query-intervals", self._query_intervals)
        add.add_get(f"{api}/analyses/{{analysis_id}}/tracking/download", self._tracking)
        # A CDN's copy of the tracking files: public (no token), where a redirect fault can send downloads.
        add.add_get(f"{CDN_PREFIX}/tracking/{{analysis_id}}", self._cdn_tracking)
        ctl = CONTROL_PREFIX
        add.add_post(f"{ctl}/faults", self._control_add_fault)
        add.add_get(f"{ctl}/faults", self._control_list_faults)
        add.add_delete(f"{ctl}/faults", self._control_clear_faults)
        add.add_get(f"{ctl}/requests", self._control_requests)
        add.add_delete(f"{ctl}/requests", self._control_clear_requests)
        add.add_get(f"{ctl}/stats", self._control_stats)
        add.add_post(f"{ctl}/advance", self._control_advance)
        add.add_post(f"{ctl}/videos/{{video_id}}/status", self._control_video_status)
        add.add_post(f"{ctl}/script", self._control_script)
        add.add_post(f"{ctl}/reset", self._control_reset)
        add.add_post(f"{ctl}/tokens", self._control_add_token)
        add.add_delete(f"{ctl}/tokens", self._control_revoke_token)
        app.on_startup.append(self._start_webhooks)
        app.on_cleanup.append(self._stop_webhooks)
        return app
