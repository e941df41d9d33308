"""Sphinx configuration of the documentation site: ``make docs`` builds it with warnings as errors.

Pages are Markdown (MyST); code samples are included from ``example_dags/`` between ``[START name]`` /
``[END name]`` markers (``tests/standalone/test_docs.py`` checks every one); the API reference is autodoc.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
# autodoc imports the provider's modules, which import Airflow: a throwaway home under the build directory
# (never the user's ~/airflow or $AIRFLOW_HOME: the build must not depend on, or write to, a real deployment).
os.environ["AIRFLOW_HOME"] = str(REPO / "docs" / "_build" / "airflow-home")
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__LOGGING__LOGGING_LEVEL"] = "WARNING"

from airflow_provider_aiontheball import __version__  # noqa: E402

project = "airflow-provider-aiontheball"
author = "airflow-provider-aiontheball maintainers"
copyright = "airflow-provider-aiontheball maintainers"
release = version = __version__

extensions = ["myst_parser", "sphinx.ext.autodoc", "sphinx.ext.viewcode"]
source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build"]
# Headings up to ### get anchors, so pages link to each other's sections ([text](page.md#a-heading)).
myst_heading_anchors = 3
myst_enable_extensions = ["colon_fence"]

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "show-inheritance": True}

# Nitpicky (make docs runs -n): every cross-reference must resolve, except these. The build is offline, so
# there is no intersphinx inventory for the standard library, Airflow or aiohttp; and the docstrings of the
# documented classes name internal modules (the underscore ones, waiting, task_end, ...) that the API
# reference leaves out on purpose (they are no public API); short member names (:meth:`advance`) are
# relative to a class autodoc cannot resolve them against.
nitpicky = True
nitpick_ignore_regex = [
    (r"py:.*", r"(collections\.abc|pathlib|time|typing|datetime|asyncio|urllib\.parse|io)\..*"),
    (r"py:.*", r"(airflow|aiohttp|requests|pendulum)(\..*)?"),
    (r"py:class", r"(Context|PokeReturnValue)"),
    (r"py:.*", r"airflow_provider_aiontheball\.(.*\.)?_[A-Za-z].*"),
    (
        r"py:.*",
        r"airflow_provider_aiontheball\."
        r"(waiting|task_end|task_start|deadlines|statuses|openlineage|validation)(\..*)?",
    ),
    (r"py:(meth|attr|func)", r"[a-z_]+"),
    (r"py:data", r"[A-Z_]+"),
]

html_theme = "furo"
html_title = f"{project} {release}"
