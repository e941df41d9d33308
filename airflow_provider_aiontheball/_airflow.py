"""The Airflow names that DAG-parse-time modules need, each from where it lives in this Airflow.

``airflow.providers.common.compat.sdk`` finds the same objects (newest location first), but importing
that layer adds to every DAG-file parse (benchmarks/README.md, "DAG-parse cost"). This is the one
place that knows the locations: a name is imported when first asked for (PEP 562), so a DAG that uses
only operators never imports the sensor base classes.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import (
        AirflowSensorTimeout,
        AirflowSkipException,
        BaseOperator,
        BaseOperatorLink,
        BaseSensorOperator,
        PokeReturnValue,
        conf,
        mask_secret,
    )

__all__ = [
    "AirflowSensorTimeout",
    "AirflowSkipException",
    "BaseOperator",
    "BaseOperatorLink",
    "BaseSensorOperator",
    "PokeReturnValue",
    "conf",
    "mask_secret",
    "mask_url_secrets",
]

#: name → its modules, newest Airflow first (Airflow 3.2+ / 3.0+, then Airflow 2 and 3.0-3.1).
_LOCATIONS: dict[str, tuple[str, ...]] = {
    "BaseOperator": ("airflow.sdk", "airflow.models.baseoperator"),
    "BaseOperatorLink": ("airflow.sdk", "airflow.models.baseoperatorlink"),
    "BaseSensorOperator": ("airflow.sdk", "airflow.sensors.base"),
    "PokeReturnValue": ("airflow.sdk", "airflow.sensors.base"),
    "AirflowSensorTimeout": ("airflow.sdk.exceptions", "airflow.exceptions"),
    "AirflowSkipException": ("airflow.sdk.exceptions", "airflow.exceptions"),
    "conf": ("airflow.sdk.configuration", "airflow.configuration"),
    "mask_secret": ("airflow.sdk.log", "airflow.sdk.execution_time.secrets_masker", "airflow.utils.log.secrets_masker"),
}


def __getattr__(name: str) -> Any:
    modules = _LOCATIONS.get(name)
    if modules is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    for module in modules:
        try:
            value = getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError):
            continue
        globals()[name] = value  # resolved once
        return value
    raise ImportError(f"cannot import {name!r} from any of {', '.join(modules)}")


def mask_url_secrets(url: Any) -> None:
    """Register the secret parts of ``url`` (its query, the longer query values, credentials) with Airflow's
    secrets masker: log lines and rendered fields then show ``***`` for them."""
    from airflow_provider_aiontheball.validation import url_secrets

    mask = __getattr__("mask_secret")
    for secret in url_secrets(url):
        mask(secret)
