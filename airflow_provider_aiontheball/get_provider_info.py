"""Provider metadata for Airflow's providers manager (entry point ``apache_airflow_provider``).

The connection form is described once, here: Airflow 3 reads ``conn-fields`` and
``ui-field-behaviour`` from this dict, and Airflow 2's form is built by
:meth:`AIOnTheBallHook.get_ui_field_behaviour` / ``get_connection_form_widgets`` from the same constants.
Nothing here imports Airflow or an HTTP library.
"""

from __future__ import annotations

from typing import Any

from airflow_provider_aiontheball import __version__
from airflow_provider_aiontheball.defaults import (
    CONN_TYPE,
    DEFAULT_BASE_URL,
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_READ_TIMEOUT,
    DEFAULT_RETRY_LIMIT,
)

PACKAGE_NAME = "airflow-provider-aiontheball"
INTEGRATION_NAME = "AI on the Ball"
HOOK_NAME = "AI on the Ball"
HOOK_CLASS_NAME = "airflow_provider_aiontheball.hooks.aiontheball.AIOnTheBallHook"

#: Connection fields the form does not use: the base URL lives in ``host``, the token in ``password``.
#: ``extra`` stays visible so that settings without a form field can still be given as JSON.
HIDDEN_FIELDS = ["schema", "port", "login"]
RELABELING = {"host": "Base URL", "password": "API token"}
PLACEHOLDERS = {
    "host": DEFAULT_BASE_URL,
    "password": "token issued by support@smart11.ai",
    "timeout": str(DEFAULT_READ_TIMEOUT),
    "connect_timeout": str(DEFAULT_CONNECT_TIMEOUT),
    "retry_limit": str(DEFAULT_RETRY_LIMIT),
}

#: Extra fields of the connection (stored in ``extra``), with the defaults the hooks apply (from ``defaults.py``).
CONN_FIELDS: dict[str, dict[str, Any]] = {
    "timeout": {
        "label": "Read timeout (seconds)",
        "schema": {"type": ["number", "null"], "default": DEFAULT_READ_TIMEOUT},
        "description": "Seconds to wait for each response before giving up on that attempt.",
    },
    "connect_timeout": {
        "label": "Connect timeout (seconds)",
        "schema": {"type": ["number", "null"], "default": DEFAULT_CONNECT_TIMEOUT},
        "description": "Seconds to wait for a TCP/TLS connection to the API.",
    },
    "retry_limit": {
        "label": "Retry limit",
        "schema": {"type": ["integer", "null"], "default": DEFAULT_RETRY_LIMIT, "minimum": 0},
        "description": "Retries of a request after a transient failure (connection error, 429, 502-504).",
    },
    "max_requests_per_second": {
        "label": "Max requests per second (per triggerer)",
        # No default: without the extra there is no cap (a 429 still pauses every wait on the connection).
        "schema": {"type": ["number", "null"]},
        "description": "Cap on the requests per second that all triggers of one triggerer send on this "
        "connection together (a positive number, e.g. 0.5 or 20). Empty: no cap. Tasks do not apply it.",
    },
}


#: The ``aiontheball://`` asset URI scheme and its normaliser (``assets.py``; the scheme is ``defaults.SCHEME``,
#: written out here so that reading the provider info does not import that module).
URI_HANDLER: dict[str, Any] = {
    "schemes": ["aiontheball"],
    "handler": "airflow_provider_aiontheball.assets.sanitize_uri",
    # How the OpenLineage provider names our assets in inlets/outlets (the names our operators emit too).
    "to_openlineage_converter": "airflow_provider_aiontheball.openlineage.asset_to_openlineage",
}


def get_ui_field_behaviour() -> dict[str, Any]:
    """Return the connection form behaviour in the shape ``BaseHook.get_ui_field_behaviour`` uses."""
    return {
        "hidden_fields": list(HIDDEN_FIELDS),
        "relabeling": dict(RELABELING),
        "placeholders": dict(PLACEHOLDERS),
    }


def get_provider_info() -> dict[str, Any]:
    """Return the provider's metadata; validated against Airflow's ``provider_info.schema.json`` in tests."""
    behaviour = get_ui_field_behaviour()
    return {
        "package-name": PACKAGE_NAME,
        "name": INTEGRATION_NAME,
        "description": "`AI on the Ball <https://aiontheball.nl>`__ Insight API: football match videos in, "
        "tracking, possession and event data out.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": INTEGRATION_NAME,
                "external-doc-url": "https://docs.aiontheball.nl/",
                "tags": ["service"],
            }
        ],
        "operators": [
            {
                "integration-name": INTEGRATION_NAME,
                "python-modules": [
                    "airflow_provider_aiontheball.operators.video",
                    "airflow_provider_aiontheball.operators.analysis",
                ],
            }
        ],
        "sensors": [
            {
                "integration-name": INTEGRATION_NAME,
                "python-modules": [
                    "airflow_provider_aiontheball.sensors.video",
                    "airflow_provider_aiontheball.sensors.analysis",
                ],
            }
        ],
        "hooks": [
            {
                "integration-name": INTEGRATION_NAME,
                "python-modules": ["airflow_provider_aiontheball.hooks.aiontheball"],
            }
        ],
        "triggers": [
            {
                "integration-name": INTEGRATION_NAME,
                "python-modules": [
                    "airflow_provider_aiontheball.triggers.video",
                    "airflow_provider_aiontheball.triggers.analysis",
                    "airflow_provider_aiontheball.triggers.analysis_done",
                ],
            }
        ],
        "extra-links": ["airflow_provider_aiontheball.links.video.AIOnTheBallVideoLink"],
        # Airflow 3 reads "asset-uris", Airflow 2 "dataset-uris" (deprecated in 3.0's schema, still accepted).
        # The handler gets a urllib SplitResult and returns the normalised one, or raises ValueError.
        "asset-uris": [dict(URI_HANDLER)],
        "dataset-uris": [dict(URI_HANDLER)],
        "connection-types": [
            {
                "connection-type": CONN_TYPE,
                "hook-class-name": HOOK_CLASS_NAME,
                "hook-name": HOOK_NAME,
                "ui-field-behaviour": {
                    "hidden-fields": behaviour["hidden_fields"],
                    "relabeling": behaviour["relabeling"],
                    "placeholders": behaviour["placeholders"],
                },
                "conn-fields": CONN_FIELDS,
            }
        ],
    }
