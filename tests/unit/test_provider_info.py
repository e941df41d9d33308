"""Provider metadata: schema-valid, discoverable by Airflow, and one connection form for both UIs."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
from pathlib import Path

import airflow
import jsonschema
import pytest

import airflow_provider_aiontheball
from airflow_provider_aiontheball.get_provider_info import CONN_FIELDS, get_provider_info
from airflow_provider_aiontheball.hooks.aiontheball import AIOnTheBallHook

PROVIDER_INFO = get_provider_info()
CONNECTION_TYPE = PROVIDER_INFO["connection-types"][0]


def test_provider_info_validates_against_installed_airflow_schema():
    schema = json.loads((Path(airflow.__file__).parent / "provider_info.schema.json").read_text())
    jsonschema.validate(PROVIDER_INFO, schema)


def test_provider_info_names_and_version():
    assert PROVIDER_INFO["package-name"] == "airflow-provider-aiontheball"
    assert PROVIDER_INFO["versions"] == [airflow_provider_aiontheball.__version__]
    assert CONNECTION_TYPE["connection-type"] == "aiontheball"
    assert CONNECTION_TYPE["hook-class-name"] == "airflow_provider_aiontheball.hooks.aiontheball.AIOnTheBallHook"


def test_entry_point_returns_provider_info():
    entry_points = importlib.metadata.entry_points(group="apache_airflow_provider")
    ours = [ep for ep in entry_points if ep.value.startswith("airflow_provider_aiontheball.")]
    assert len(ours) == 1, "the package must be installed (make test installs it)"
    assert ours[0].load()() == PROVIDER_INFO
    assert importlib.metadata.version("airflow-provider-aiontheball") == airflow_provider_aiontheball.__version__


def test_every_listed_module_and_class_imports():
    import importlib

    for section in ("hooks", "operators", "sensors", "triggers"):
        for entry in PROVIDER_INFO.get(section, []):
            for module in entry["python-modules"]:
                importlib.import_module(module)
    for dotted in [CONNECTION_TYPE["hook-class-name"], *PROVIDER_INFO.get("extra-links", [])]:
        module, _, name = dotted.rpartition(".")
        assert hasattr(importlib.import_module(module), name), dotted


def test_airflow2_form_behaviour_matches_provider_info():
    behaviour = AIOnTheBallHook.get_ui_field_behaviour()
    declared = CONNECTION_TYPE["ui-field-behaviour"]
    assert behaviour == {
        "hidden_fields": declared["hidden-fields"],
        "relabeling": declared["relabeling"],
        "placeholders": declared["placeholders"],
    }


def test_form_hides_unused_fields_and_relabels():
    behaviour = AIOnTheBallHook.get_ui_field_behaviour()
    assert {"schema", "port", "login"} <= set(behaviour["hidden_fields"])
    assert behaviour["relabeling"] == {"host": "Base URL", "password": "API token"}
    assert behaviour["placeholders"]["host"] == "https://aiontheball.nl/api/v1"
    assert {"timeout", "retry_limit"} <= set(CONNECTION_TYPE["conn-fields"])


def test_airflow2_form_widgets_match_conn_fields():
    pytest.importorskip("flask_appbuilder", reason="Airflow 2's Flask form only")
    from flask import Flask

    with Flask(__name__).app_context():
        widgets = AIOnTheBallHook.get_connection_form_widgets()
    assert set(widgets) == set(CONN_FIELDS)
    for name, widget in widgets.items():
        assert str(widget.args[0]) == CONN_FIELDS[name]["label"]


def test_airflow_providers_manager_discovers_the_connection_type():
    from airflow.providers_manager import ProvidersManager

    manager = ProvidersManager()
    assert "airflow-provider-aiontheball" in manager.providers
    hook_info = manager.hooks["aiontheball"]
    assert hook_info is not None
    assert hook_info.hook_class_name == CONNECTION_TYPE["hook-class-name"]
    assert hook_info.connection_id_attribute_name == "aiontheball_conn_id"
    if form_only_from_hook_class_without_fab():
        # What the compatibility table (docs/index.md) says: the generic form, until the FAB provider is installed.
        assert "aiontheball" not in manager.field_behaviours
    else:
        assert manager.field_behaviours["aiontheball"]["relabeling"]["password"] == "API token"


def form_only_from_hook_class_without_fab() -> bool:
    """Airflow 3.0 and 3.1 build a connection form only from the hook class's wtforms widgets, and
    wtforms comes with the FAB provider; 2.11 ships FAB, 3.2+ read the form from the provider info."""
    major, minor = (int(part) for part in importlib.metadata.version("apache-airflow").split(".")[:2])
    return (major, minor) in {(3, 0), (3, 1)} and importlib.util.find_spec("wtforms") is None


def test_the_asset_uri_scheme_is_declared_for_airflow_3_and_2():
    from airflow_provider_aiontheball.assets import sanitize_uri
    from airflow_provider_aiontheball.defaults import SCHEME
    from airflow_provider_aiontheball.openlineage import asset_to_openlineage

    expected = [
        {
            "schemes": [SCHEME],
            "handler": "airflow_provider_aiontheball.assets.sanitize_uri",
            "to_openlineage_converter": "airflow_provider_aiontheball.openlineage.asset_to_openlineage",
        }
    ]
    assert PROVIDER_INFO["asset-uris"] == expected  # Airflow 3
    assert PROVIDER_INFO["dataset-uris"] == expected  # Airflow 2
    for key, function in (("handler", sanitize_uri), ("to_openlineage_converter", asset_to_openlineage)):
        module, _, name = expected[0][key].rpartition(".")
        assert getattr(importlib.import_module(module), name) is function


def test_airflow_registers_the_uri_handler():
    from airflow_provider_aiontheball.assets import sanitize_uri

    try:  # where Asset() looks handlers up: the Task SDK's registry (Airflow 3.2+)
        from airflow.sdk.providers_manager_runtime import ProvidersManagerTaskRuntime

        handlers = ProvidersManagerTaskRuntime().asset_uri_handlers
    except ImportError:
        from airflow.providers_manager import ProvidersManager

        manager = ProvidersManager()
        # Airflow 3.0-3.1, then Airflow 2
        handlers = getattr(manager, "asset_uri_handlers", None) or manager.dataset_uri_handlers
    assert handlers["aiontheball"] is sanitize_uri
