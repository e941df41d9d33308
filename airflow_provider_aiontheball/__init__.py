"""Apache Airflow provider for the AI on the Ball (AIB) Insight API.

Importing this package is deliberately cheap: it imports neither Airflow nor any HTTP library, so
DAG files that import our operators pay (almost) nothing at every parse.
"""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"
