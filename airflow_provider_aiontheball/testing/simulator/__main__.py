"""``python -m airflow_provider_aiontheball.testing.simulator``: see :func:`main`."""

from __future__ import annotations

import sys

from airflow_provider_aiontheball.testing.simulator.cli import main

if __name__ == "__main__":
    sys.exit(main())
