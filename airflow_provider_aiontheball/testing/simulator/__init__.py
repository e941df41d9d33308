"""An offline simulator of the AI on the Ball (AIB) Insight API v1, served over real HTTP.

Use it in tests, for an offline ``make demo``, or to try DAGs without an API token::

    from airflow_provider_aiontheball.testing.simulator import SimulatorServer

    with SimulatorServer() as server:  # 127.0.0.1, a free port, token "test-token"
        requests.get(f"{server.base_url}/videos", headers={"Authorization": "Bearer test-token"})
        server.simulator.advance(60)  # move the simulated clock instead of sleeping

or from a shell (``--port 0`` picks a free port; the token is never printed)::

    python -m airflow_provider_aiontheball.testing.simulator --port 8765 --token my-token

The simulator is an :class:`aiohttp.web.Application` (see :meth:`Simulator.app`) plus a runner that
serves it from a background thread (:class:`SimulatorServer`). It depends on aiohttp and the standard
library only, never on Airflow. Statuses are computed from the simulator's clock when a request asks
for them (a dictionary lookup and a few comparisons per request), so thousands of clients can poll
``GET /videos/{id}`` concurrently; there is no background loop over all videos, except a 0.2 s ticker
that exists only when a webhook URL is configured.

What the API documentation specifies is implemented as documented: paths, field names, the status
vocabularies (reused from :mod:`airflow_provider_aiontheball.statuses`), envelopes (``{"data": ...}``
for videos and analyses, bare objects/arrays for results), the summary, events, schema,
query-intervals and tracking shapes, 204 on delete, and the webhook payloads and User-Agent.

What the documentation leaves open, this simulator had to choose; a client must not depend on any
of it. Those **assumed (docs silent)** behaviours are listed in ``docs/simulator.md``, with a map of
this package's modules, the CLI flags, the control endpoints and the fault kinds.

Fault injection, scripted outcomes, the request log and counters are reached through the
``/_control`` routes (no authentication, never under ``/api/v1``) or the :class:`Simulator` methods.
"""

from __future__ import annotations

from airflow_provider_aiontheball.testing.simulator.app import Simulator
from airflow_provider_aiontheball.testing.simulator.cli import main
from airflow_provider_aiontheball.testing.simulator.config import (
    ALGORITHM_VERSION,
    ANALYSIS_OUTCOMES,
    ANALYSIS_UUID_NAMESPACE,
    API_PREFIX,
    CDN_PREFIX,
    CONTROL_PREFIX,
    DEFAULT_DURATION_SECONDS,
    DEFAULT_FPS,
    FAULT_KINDS,
    FILTER_TYPES,
    MP4_SOURCE_TEMPLATE,
    VIDEO_OUTCOMES,
    WEBHOOK_TICK_SECONDS,
    WEBHOOK_TIMEOUT_SECONDS,
    WEBHOOK_USER_AGENT,
    Fault,
    FaultKind,
    RequestRecord,
    SimulatorConfig,
)
from airflow_provider_aiontheball.testing.simulator.core import log as log
from airflow_provider_aiontheball.testing.simulator.match import _tracking_parquet as _tracking_parquet
from airflow_provider_aiontheball.testing.simulator.match import tracking_sample_rows
from airflow_provider_aiontheball.testing.simulator.server import SimulatorServer

__all__ = [
    "ALGORITHM_VERSION",
    "ANALYSIS_OUTCOMES",
    "ANALYSIS_UUID_NAMESPACE",
    "API_PREFIX",
    "CDN_PREFIX",
    "CONTROL_PREFIX",
    "DEFAULT_DURATION_SECONDS",
    "DEFAULT_FPS",
    "FAULT_KINDS",
    "FILTER_TYPES",
    "MP4_SOURCE_TEMPLATE",
    "VIDEO_OUTCOMES",
    "WEBHOOK_TICK_SECONDS",
    "WEBHOOK_TIMEOUT_SECONDS",
    "WEBHOOK_USER_AGENT",
    "Fault",
    "FaultKind",
    "RequestRecord",
    "Simulator",
    "SimulatorConfig",
    "SimulatorServer",
    "main",
    "tracking_sample_rows",
]
