"""OpenLineage lineage of the provider's operators (the ``[openlineage]`` extra).

Active only where ``apache-airflow-providers-openlineage`` is installed and configured: its listener
calls our operators' ``get_openlineage_facets_on_complete`` (and ``..._on_failure``) on the worker, and
those delegate here. Nothing here is imported when a DAG file is parsed. The datasets and their naming:
see docs/internals.md, "OpenLineage datasets".
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from airflow.providers.openlineage.extractors import OperatorLineage
    from openlineage.client.event_v2 import Dataset

__all__ = [
    "EVENT_COLUMNS",
    "QUERY_INTERVAL_COLUMNS",
    "TRACKING_COLUMNS",
    "asset_to_openlineage",
    "create_analysis_lineage",
    "create_video_lineage",
    "enabled",
    "location_dataset",
    "results_lineage",
    "source_dataset",
    "video_source_dataset",
]

#: ``GET /analyses/{id}/events``: a JSON array of these (API docs §7).
EVENT_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("start", "float", "seconds from the video's start"),
    ("end", "float", "seconds from the video's start"),
    ("label", "string", "team name, player id, phase or action name"),
    ("event_type", "string", "e.g. team_possession, scene, match_timeline, pass, shot, ball_phase"),
)
#: ``POST /analyses/{id}/query-intervals``: a JSON array of these (§9; ``type``, not ``event_type``).
QUERY_INTERVAL_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("start", "float", "seconds from the video's start"),
    ("end", "float", "seconds from the video's start"),
    ("label", "string", "interval description (team name, player, ...)"),
    ("type", "string", "the primary filter type"),
)
#: ``GET /analyses/{id}/tracking/download`` (§12), one row per tracked entity and frame (25 fps). The
#: columns are documented for the file as such; the JSON layout is not, so both formats get them.
TRACKING_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("timestamp", "int32", "milliseconds; steps of 40 ms"),
    ("role", "string", "player, goal_keeper, ball or referee"),
    ("player_id", "string", "'team-jersey' id such as '0-10'; null when the jersey could not be read"),
    ("player_id_conf", "float16", "identification confidence, 0-1"),
    ("x", "int16", "pitch position in cm, 0-10500, left to right"),
    ("y", "int16", "pitch position in cm, 0-6800, bottom to top"),
    ("bbox_x", "int16", "pixel x in the video (centre of the bounding box)"),
    ("bbox_y", "int16", "pixel y in the video (bottom of the bounding box)"),
)
_COLUMNS = {"events": EVENT_COLUMNS, "query_intervals": QUERY_INTERVAL_COLUMNS, "tracking": TRACKING_COLUMNS}
_DOCUMENTATION = {
    "summary": "Match summary of an AI on the Ball analysis: a JSON object (metadata, teams, match_stats, ...).",
    "schema": "What an AI on the Ball analysis supports: a JSON object (data_version, event_types, filters, "
    "frame_state).",
}
#: Object stores whose authority is a bucket or container: the name is the key, without a leading slash.
_BUCKET_SCHEMES = {"s3": "s3", "s3a": "s3", "gs": "gs", "gcs": "gs", "abfs": "abfs", "abfss": "abfss"}
_BUCKET_SCHEMES |= {"wasb": "wasb", "wasbs": "wasbs"}


def enabled() -> bool:
    """Whether OpenLineage would emit events from this process: the provider is installed and not disabled
    (its own test, ``airflow.providers.openlineage.conf.is_disabled()``: a transport, config file or URL is
    configured and ``[openlineage] disabled`` is not set). Cheap: the provider caches its config reads.

    A configuration the provider cannot read counts as enabled: the caller then keeps the lineage path open
    (a task resumes on a worker), which costs a worker start at most.
    """
    try:
        from airflow.providers.openlineage import conf
    except ImportError:
        return False
    try:
        return not conf.is_disabled()
    except Exception:
        return True


# -- datasets ----------------------------------------------------------------------------------------


def _dataset(namespace: str, name: str, facets: dict[str, Any] | None = None) -> Dataset:
    from openlineage.client.event_v2 import Dataset

    return Dataset(namespace=namespace, name=name, facets=facets or {})


def _authority(parts: Any) -> str:
    """Host and port of a split URL, never its user info (credentials)."""
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    return f"{host}:{port}" if port is not None else host


def source_dataset(url: str) -> Dataset | None:
    """The source video's dataset: namespace ``scheme://host[:port]``, name the URL's path. Query string,
    fragment and user info are dropped (a presigned URL's signature, a token). ``None`` for a value that is
    not an absolute URL."""
    try:
        parts = urlsplit(str(url).strip())
    except ValueError:
        return None
    if not parts.scheme or not parts.hostname:
        return None
    return _dataset(f"{parts.scheme.lower()}://{_authority(parts)}", parts.path or "/")


def video_source_dataset(value: Any) -> Dataset | None:
    """The dataset of a ``video_file_url``: an object-storage path (a string or an ``ObjectStoragePath``) is
    the object itself (``s3://bucket`` and its key: never the presigned URL the task made of it), anything else
    :func:`source_dataset`."""
    from airflow_provider_aiontheball.sources import parse_source

    try:
        source = parse_source(value)
    except ValueError:
        return None
    if source is not None:
        return _dataset(source.namespace, source.key)
    return source_dataset(value) if isinstance(value, str) else None


def location_dataset(location: str, facets: dict[str, Any] | None = None) -> Dataset:
    """The dataset of a written file: a local path or an object-storage URI (module doc)."""
    text = str(location)
    if "://" not in text:
        return _dataset("file", os.path.abspath(text), facets)
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    if scheme in ("file", "local"):
        return _dataset("file", parts.path, facets)
    if scheme in _BUCKET_SCHEMES:
        # ``urlsplit`` keeps the bucket's case in netloc (hostname would lower-case it): bucket names are exact.
        bucket = parts.netloc.rsplit("@", 1)[-1]
        return _dataset(f"{_BUCKET_SCHEMES[scheme]}://{bucket}", parts.path.lstrip("/"), facets)
    return _dataset(f"{scheme}://{_authority(parts)}", parts.path, facets)


def _asset_dataset(uri: str) -> Dataset:
    """``aiontheball://host/videos/789`` → namespace ``aiontheball://host``, name ``videos/789``."""
    scheme, _, rest = uri.partition("://")
    host, _, path = rest.partition("/")
    return _dataset(f"{scheme}://{host}", path)


def asset_to_openlineage(asset: Any, lineage_context: Any = None) -> Dataset:
    """Airflow's asset → OpenLineage converter for the ``aiontheball`` scheme (provider info
    ``asset-uris``/``dataset-uris`` key ``to_openlineage_converter``): the OpenLineage provider calls it for
    ``aiontheball://`` assets in ``inlets``/``outlets`` and asset events; it names the same dataset as the
    operators' lineage.

    :param asset: an Airflow ``Asset`` (or Airflow 2 ``Dataset``) with an ``aiontheball://`` URI.
    :param lineage_context: unused (the converter signature Airflow calls).
    """
    return _asset_dataset(str(asset.uri))


def _host(task: Any) -> str:
    """The API host of the task's connection (the asset URIs' host). The hook usually read the connection
    during ``execute`` already (its settings are cached); otherwise this reads it once."""
    from airflow_provider_aiontheball.assets import host_of

    return host_of(task.hook.settings.base_url)


def _video(video_id: Any, host: str) -> Dataset:
    from airflow_provider_aiontheball.assets import video_uri

    return _asset_dataset(video_uri(video_id, host=host))


def _analysis(analysis_id: Any, host: str) -> Dataset:
    from airflow_provider_aiontheball.assets import analysis_uri

    return _asset_dataset(analysis_uri(analysis_id, host=host))


def _schema_facets(columns: tuple[tuple[str, str, str], ...]) -> dict[str, Any]:
    from openlineage.client.facet_v2 import schema_dataset

    fields = [
        schema_dataset.SchemaDatasetFacetFields(name=name, type=type_, description=description)
        for name, type_, description in columns
    ]
    return {"schema": schema_dataset.SchemaDatasetFacet(fields=fields)}


def _documentation_facets(text: str) -> dict[str, Any]:
    from openlineage.client.facet_v2 import documentation_dataset

    return {"documentation": documentation_dataset.DocumentationDatasetFacet(description=text)}


def _lineage(inputs: list[Dataset], outputs: list[Dataset]) -> OperatorLineage:
    from airflow.providers.openlineage.extractors import OperatorLineage

    return OperatorLineage(inputs=inputs, outputs=outputs)


def _id_or_none(value: Any) -> int | None:
    from airflow_provider_aiontheball.assets import video_uri

    try:
        video_uri(value)  # the assets' id validation, one error text for both kinds
    except ValueError:
        return None
    return int(value)


def _joined(output_path: str, filename: str) -> str:
    """Where the results operator writes ``filename`` (its ``_target``, without creating directories)."""
    if "://" in output_path:
        return output_path.rstrip("/") + "/" + filename
    return os.path.join(output_path, filename)


# -- per operator ------------------------------------------------------------------------------------


def create_video_lineage(task: Any) -> OperatorLineage:
    """Input: the source video file (its URL without query string, or the object in storage); output: the AIB
    video, once created.

    :param task: the ``AIOnTheBallCreateVideoOperator`` after ``execute``/``execute_complete`` (rendered
        ``video_file_url``; ``_lineage_id``, the created video's id, set where it became known).
    """
    source = video_source_dataset(task.video_file_url)
    video_id = _id_or_none(getattr(task, "_lineage_id", None))
    outputs = [_video(video_id, _host(task))] if video_id is not None else []
    return _lineage([source] if source is not None else [], outputs)


def create_analysis_lineage(task: Any) -> OperatorLineage:
    """Input: the AIB video; output: the AIB analysis, once started.

    :param task: the ``AIOnTheBallCreateAnalysisOperator`` after ``execute``/``execute_complete`` (rendered
        ``video_id``; ``_lineage_id``, the analysis's id).
    """
    video_id = _id_or_none(task.video_id)
    analysis_id = _id_or_none(getattr(task, "_lineage_id", None))
    if video_id is None and analysis_id is None:
        return _lineage([], [])
    host = _host(task)
    inputs = [_video(video_id, host)] if video_id is not None else []
    outputs = [_analysis(analysis_id, host)] if analysis_id is not None else []
    return _lineage(inputs, outputs)


def results_lineage(task: Any, *, written: bool = True) -> OperatorLineage:
    """Input: the AIB analysis; outputs: the result files written under ``output_path`` (none when the
    results went to XCom), each with a schema or documentation facet.

    :param task: the ``AIOnTheBallAnalysisResultsOperator`` (rendered ``analysis_id``, ``results``,
        ``output_path``, ``tracking_format``): the file names follow from them.
    :param written: the files were written (the task succeeded). Default True; False (a failed task):
        the analysis only, since a failed task leaves no file under the final names.
    """
    analysis_id = _id_or_none(task.analysis_id)
    if analysis_id is None:
        return _lineage([], [])
    inputs = [_analysis(analysis_id, _host(task))]
    outputs: list[Dataset] = []
    if written and task.output_path:
        names = [task.results] if isinstance(task.results, str) else list(task.results)
        for name in dict.fromkeys(names):  # a name given twice is one file
            extension = task.tracking_format if name == "tracking" else "json"
            target = _joined(str(task.output_path), f"analysis_{analysis_id}_{name}.{extension}")
            if name in _COLUMNS:
                facets = _schema_facets(_COLUMNS[name])
            else:
                facets = _documentation_facets(_DOCUMENTATION.get(name, f"AI on the Ball analysis {name}."))
            outputs.append(location_dataset(target, facets))
    return _lineage(inputs, outputs)
