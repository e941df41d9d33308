"""Webhook delivery of :class:`Simulator`: a ticker that detects transitions and a sender."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from aiohttp import ClientSession, ClientTimeout, web

from airflow_provider_aiontheball.statuses import AnalysisStatus
from airflow_provider_aiontheball.testing.simulator.config import (
    WEBHOOK_TICK_SECONDS,
    WEBHOOK_TIMEOUT_SECONDS,
    WEBHOOK_USER_AGENT,
)
from airflow_provider_aiontheball.testing.simulator.core import _WEBHOOK_KEY, _SimulatorCore, log
from airflow_provider_aiontheball.testing.simulator.state import _Analysis


class _Webhooks(_SimulatorCore):
    """Webhooks, running only when ``webhook_url`` is configured when the app starts."""

    # ---- webhooks ------------------------------------------------------------------------------

    async def _start_webhooks(self, app: web.Application) -> None:
        if not self.config.webhook_url:
            return
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        app[_WEBHOOK_KEY].extend(
            [
                asyncio.create_task(self._webhook_ticker(queue), name="aib-webhook-ticker"),
                asyncio.create_task(self._webhook_sender(queue), name="aib-webhook-sender"),
            ]
        )

    async def _stop_webhooks(self, app: web.Application) -> None:
        tasks: list[asyncio.Task[None]] = app[_WEBHOOK_KEY]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        tasks.clear()

    def _webhook_payloads(self, now: float) -> list[dict[str, Any]]:
        """Detect state transitions since the last tick and return the webhooks they cause, in order."""
        payloads: list[dict[str, Any]] = []
        try:
            analyses = list(self._analyses.values())
        except RuntimeError:  # mutated by another thread; try again next tick
            return payloads
        for analysis in analyses:
            if analysis.webhook_done_sent:
                continue
            state = self._analysis_state(analysis, now)
            final = state.status in (AnalysisStatus.DONE.value, AnalysisStatus.ERROR.value)
            if state.ran:
                if state.status == AnalysisStatus.RUNNING.value or state.status == AnalysisStatus.ERROR.value:
                    reached = state.progress
                else:  # aggregating or done: every running step has been passed
                    reached = 95.0
                while analysis.webhook_next_step <= 90 and analysis.webhook_next_step <= reached:
                    payloads.append(
                        self._webhook(analysis, "analysis_completion_rate", "running", analysis.webhook_next_step)
                    )
                    analysis.webhook_next_step += 10
                entered_aggregating = state.status in (
                    AnalysisStatus.AGGREGATING.value,
                    AnalysisStatus.DONE.value,
                ) or (state.status == AnalysisStatus.ERROR.value and state.progress >= 95)
                if entered_aggregating and not analysis.webhook_aggregating_sent:
                    analysis.webhook_aggregating_sent = True
                    payloads.append(self._webhook(analysis, "analysis_completion_rate", "aggregating", 95))
            if final:
                analysis.webhook_done_sent = True
                payloads.append(self._webhook(analysis, "analysis_done", state.status, 100))
        return payloads

    @staticmethod
    def _webhook(analysis: _Analysis, event: str, status: str, rate: int) -> dict[str, Any]:
        return {"event": event, "analysis_id": analysis.uuid, "status": status, "completion_rate": rate}

    async def _webhook_ticker(self, queue: asyncio.Queue[dict[str, Any]]) -> None:
        while True:
            for payload in self._webhook_payloads(self.now()):
                queue.put_nowait(payload)
            await asyncio.sleep(WEBHOOK_TICK_SECONDS)

    async def _webhook_sender(self, queue: asyncio.Queue[dict[str, Any]]) -> None:
        timeout = ClientTimeout(total=WEBHOOK_TIMEOUT_SECONDS)
        async with ClientSession(timeout=timeout, headers={"User-Agent": WEBHOOK_USER_AGENT}) as session:
            while True:
                payload = await queue.get()
                url = self.config.webhook_url
                if not url:
                    continue
                try:
                    async with session.post(url, json=payload) as response:
                        await response.read()
                        ok = 200 <= response.status < 300
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # errors are swallowed and counted
                    log.debug("Webhook delivery failed: %s", type(exc).__name__)
                    ok = False
                if ok:
                    self._webhooks_sent += 1
                else:
                    self._webhooks_failed += 1
