"""The ``/_control`` handlers of :class:`Simulator`: faults, scripts, the request log, the clock, tokens."""

from __future__ import annotations

import json
from typing import Any, Final

from aiohttp import web

from airflow_provider_aiontheball.testing.simulator.config import Fault
from airflow_provider_aiontheball.testing.simulator.core import _SimulatorCore
from airflow_provider_aiontheball.testing.simulator.state import _ApiError
from airflow_provider_aiontheball.testing.simulator.validation import _is_int, _is_number

#: The fields of the token control bodies. A token is a secret: no answer or message ever contains it.
_ADD_TOKEN_FIELDS: Final = frozenset({"token", "organisation"})
_REVOKE_TOKEN_FIELDS: Final = frozenset({"token"})


def _token_field(body: dict[str, Any], allowed: frozenset[str]) -> str:
    """The ``token`` of a token control body; 400 (naming the field, never its value) if it is bad."""
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise _ApiError(400, {"message": f"unknown field(s): {', '.join(unknown)}"})
    token = body.get("token")
    if not isinstance(token, str) or not token.strip():
        raise _ApiError(400, {"message": "token (a non-empty string) is required."})
    return token


class _ControlHandlers(_SimulatorCore):
    """The control handlers: no authentication, never under ``/api/v1``."""

    # ---- control handlers (no auth; never under /api/v1) ---------------------------------------

    async def _control_body(self, request: web.Request) -> dict[str, Any]:
        raw = await request.read()
        if not raw:
            return {}
        try:
            body = json.loads(raw)
        except ValueError:
            raise _ApiError(400, {"message": "Malformed JSON body."}) from None
        if not isinstance(body, dict):
            raise _ApiError(400, {"message": "The body must be a JSON object."})
        return body

    async def _control_add_fault(self, request: web.Request) -> web.StreamResponse:
        body = await self._control_body(request)
        try:
            fault = Fault.from_dict(body)
        except (TypeError, ValueError) as exc:
            raise _ApiError(400, {"message": str(exc)}) from None
        self.add_fault(fault)
        return web.json_response({"faults": [f.to_dict() for f in self.faults]}, status=201)

    async def _control_list_faults(self, request: web.Request) -> web.StreamResponse:
        return web.json_response({"faults": [f.to_dict() for f in self.faults]})

    async def _control_clear_faults(self, request: web.Request) -> web.StreamResponse:
        self.clear_faults()
        return web.Response(status=204)

    async def _control_requests(self, request: web.Request) -> web.StreamResponse:
        return web.json_response({"requests": [record.to_dict() for record in self.requests]})

    async def _control_clear_requests(self, request: web.Request) -> web.StreamResponse:
        self.clear_requests()
        return web.Response(status=204)

    async def _control_stats(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(self.stats)

    async def _control_advance(self, request: web.Request) -> web.StreamResponse:
        body = await self._control_body(request)
        seconds = body.get("seconds")
        if not isinstance(seconds, int | float) or not _is_number(seconds) or seconds < 0:
            raise _ApiError(400, {"message": f"seconds must be a non-negative number, got {seconds!r}"})
        self.advance(seconds)
        return web.json_response({"time": self.now()})

    async def _control_video_status(self, request: web.Request) -> web.StreamResponse:
        body = await self._control_body(request)
        raw = request.match_info["video_id"]
        status = body.get("status")
        if not isinstance(status, str) or not status:
            raise _ApiError(400, {"message": "status (a non-empty string) is required."})
        try:
            self.set_video_status(int(raw) if raw.isdigit() else -1, status)
        except KeyError:
            raise _ApiError(404, {"message": f"No video {raw}."}) from None
        return web.json_response({"data": self.video_json(int(raw))})

    async def _control_script(self, request: web.Request) -> web.StreamResponse:
        body = await self._control_body(request)
        resource, outcome, count = body.get("resource"), body.get("outcome"), body.get("count", 1)
        if not _is_int(count) or count < 1:
            raise _ApiError(400, {"message": "count must be a positive integer."})
        try:
            if not isinstance(outcome, str):
                raise ValueError(f"outcome must be a string, got {outcome!r}")
            if resource == "video":
                self.script_next_videos(outcome, count)
            elif resource == "analysis":
                error_at = body.get("error_at_progress", 50.0)
                if not _is_number(error_at):
                    raise ValueError("error_at_progress must be a number")
                self.script_next_analyses(outcome, count, error_at_progress=error_at)
            else:
                raise ValueError("resource must be 'video' or 'analysis'")
        except ValueError as exc:
            raise _ApiError(400, {"message": str(exc)}) from None
        return web.json_response({"resource": resource, "outcome": outcome, "count": count}, status=201)

    async def _control_reset(self, request: web.Request) -> web.StreamResponse:
        self.reset()
        return web.Response(status=204)

    async def _control_add_token(self, request: web.Request) -> web.StreamResponse:
        body = await self._control_body(request)
        token = _token_field(body, _ADD_TOKEN_FIELDS)
        organisation = body.get("organisation", "org-1")
        if not isinstance(organisation, str) or not organisation:
            raise _ApiError(400, {"message": "organisation must be a non-empty string."})
        self.add_token(token, organisation)
        return web.json_response({"organisation": organisation, "tokens": len(self.config.tokens)}, status=201)

    async def _control_revoke_token(self, request: web.Request) -> web.StreamResponse:
        body = await self._control_body(request)
        if not self.revoke_token(_token_field(body, _REVOKE_TOKEN_FIELDS)):
            raise _ApiError(404, {"message": "That token is not accepted."})
        return web.Response(status=204)
