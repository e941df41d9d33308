"""The anchor DAG's response checks (``benchmarks/bench_deployment.py``): is the video ``available``?

Its own module, on the ``PYTHONPATH`` of the Airflow processes the benchmark starts, because the HTTP
provider's ``HttpEventTrigger`` imports its check by dotted path in the triggerer — and re-imports
(``importlib.reload``) the module before every check, so it stays this small. The worker's first poke
(``HttpSensor.poke`` with ``response_check``) uses the synchronous twin.
"""

from __future__ import annotations

from typing import Any

AVAILABLE = "available"


def video_available(response: Any) -> bool:
    """``GET /videos/{id}`` answered ``{"data": {"status": "available", ...}}``."""
    return bool(response.json()["data"]["status"] == AVAILABLE)


async def video_available_async(response: Any) -> bool:
    """The same check for ``HttpEventTrigger(response_check_path=...)``, which wants a coroutine function."""
    return video_available(response)
