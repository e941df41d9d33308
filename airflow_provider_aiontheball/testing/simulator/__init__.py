"""An offline simulator of the AI on the Ball (AIB) Insight API v1, served over real HTTP.

Use it in tests, for an offline ``make demo``, or to try DAGs without an API token::

    with SimulatorServer() as server:  # 127.0.0.1, a free port, token "test-token"
        server.simulator.advance(60)  # move the simulated clock instead of sleeping

or ``python -m airflow_provider_aiontheball.testing.simulator --port 8765 --token my-token``. See
docs/simulator.md (assumed behaviours, modules, CLI, control endpoints, faults) and docs/internals.md,
"The API simulator package".
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
