"""Asset URIs of the provider, asset objects, and the metadata the operators attach to asset events.

URIs are ``aiontheball://<host>/videos/<video_id>``, ``.../analyses/<analysis_id>`` and ``.../analyses``
(registered through the provider info, handler :func:`sanitize_uri`). Pure functions: nothing here imports
Airflow at module import. The scheme and why it names the host: see docs/internals.md, "Asset URIs".
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import SplitResult, urlsplit

from airflow_provider_aiontheball.defaults import DEFAULT_HOST, MAX_ID, SCHEME
from airflow_provider_aiontheball.validation import validate_id, validate_integer

_DEFAULT_PORTS = {"http": 80, "https": 443}
# A host as it appears in a URI authority: a DNS name or IPv4 address, or a bracketed IPv6 address,
# with an optional port. No userinfo ("@"), path, query or whitespace.
_HOST = re.compile(r"^(?:[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?$")


def _describe(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _id(value: Any, field: str) -> int:
    """A resource id (:func:`~airflow_provider_aiontheball.validation.validate_id`), refused in the words of
    asset URIs."""
    try:
        return validate_id(value, field)
    except ValueError as exc:
        if "must be at" in str(exc):  # an integer, out of range
            raise ValueError(f"{field}: expected a positive integer id (at most {MAX_ID}), got {int(value)}") from None
        raise ValueError(f"{field}: expected a positive integer id, got {_describe(value)}") from None


def _host(value: Any, field: str = "host") -> str:
    if not isinstance(value, str) or not _HOST.match(value.strip()):
        raise ValueError(
            f"{field}: expected a host name with an optional port (e.g. {DEFAULT_HOST!r} or '127.0.0.1:8123'), "
            f"got {_describe(value)}"
        )
    # Host names are case-insensitive: one spelling, so "AIOnTheBall.nl" and "aiontheball.nl" are one asset.
    return value.strip().lower()


def video_uri(video_id: int | str, *, host: str = DEFAULT_HOST) -> str:
    """The URI of a video's asset, e.g. ``aiontheball://aiontheball.nl/videos/789``.

    :param video_id: the video's id (a positive integer, or a string of digits).
    :param host: the API's host, see :func:`host_of`; default ``"aiontheball.nl"``.
    """
    return f"{SCHEME}://{_host(host)}/videos/{_id(video_id, 'video_id')}"


def analysis_uri(analysis_id: int | str, *, host: str = DEFAULT_HOST) -> str:
    """The URI of an analysis's asset (the analysis and its results), e.g.
    ``aiontheball://aiontheball.nl/analyses/1247``.

    :param analysis_id: the analysis's id (a positive integer, or a string of digits).
    :param host: the API's host, see :func:`host_of`; default ``"aiontheball.nl"``.
    """
    return f"{SCHEME}://{_host(host)}/analyses/{_id(analysis_id, 'analysis_id')}"


def analyses_uri(*, host: str = DEFAULT_HOST) -> str:
    """The URI of the asset "every analysis of the organisation", ``aiontheball://aiontheball.nl/analyses``:
    the asset a DAG updates for any match (a results task serving many matches, an AssetWatcher on
    "analysis done"); the match is then told by the event's ``extra`` (and partition key on Airflow 3.3).

    :param host: the API's host, see :func:`host_of`; default ``"aiontheball.nl"``.
    """
    return f"{SCHEME}://{_host(host)}/analyses"


def host_of(base_url: str) -> str:
    """The host of an API base URL as the asset URIs use it: lower-case, with the port only when it is not
    the scheme's default. ``host_of("https://aiontheball.nl/api/v1/") == "aiontheball.nl"``,
    ``host_of("http://127.0.0.1:8123/api/v1") == "127.0.0.1:8123"``. A URL without a scheme is read as https
    (a connection's ``host`` field may be given as ``aiontheball.nl/api/v1``).

    :param base_url: the connection's API base URL.
    """
    if not isinstance(base_url, str) or not base_url.strip():
        raise ValueError(f"base_url: expected the API's base URL, got {_describe(base_url)}")
    text = base_url.strip()
    if "://" not in text:
        text = "https://" + text
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"base_url: not a valid URL ({exc})") from None
    hostname = parts.hostname
    if not hostname:
        raise ValueError("base_url: the URL has no host")
    if ":" in hostname:  # IPv6: urlsplit drops the brackets, a URI authority needs them
        hostname = f"[{hostname}]"
    if port is not None and port != _DEFAULT_PORTS.get(parts.scheme.lower()):
        hostname = f"{hostname}:{port}"
    return _host(hostname, "base_url")


def sanitize_uri(uri: SplitResult) -> SplitResult:
    """Airflow's URI handler for the ``aiontheball`` scheme (provider info ``asset-uris``/``dataset-uris``).

    Airflow has already lower-cased the scheme, dropped user info and the fragment, and stripped trailing
    slashes. This accepts only the three documented forms, lower-cases the host and writes ids without
    leading zeros (``videos/0789`` and ``videos/789`` are one asset). Anything else raises ``ValueError``
    naming the URI's part that is wrong: Airflow 3 rejects the asset then; Airflow 2 warns (or raises
    with ``[core] strict_dataset_uri_validation``).

    :param uri: the URI, split by :func:`urllib.parse.urlsplit`.
    """
    shown = f"{uri.scheme}://{uri.netloc}{uri.path}"
    forms = f"expected {SCHEME}://<host>/videos/<id>, {SCHEME}://<host>/analyses/<id> or {SCHEME}://<host>/analyses"
    if not uri.netloc:
        raise ValueError(f"{SCHEME} URI {shown!r}: no host; {forms}")
    host = _host(uri.netloc, f"{SCHEME} URI host")
    if uri.query:
        # A query has no meaning here, and on a copied API URL it could be a signature: never keep one.
        raise ValueError(f"{SCHEME} URI {shown!r}: a query string is not allowed; {forms}")
    segments = uri.path.strip("/").split("/")
    if segments == ["analyses"]:
        path = "/analyses"
    elif len(segments) == 2 and segments[0] in ("videos", "analyses"):
        field = "video_id" if segments[0] == "videos" else "analysis_id"
        path = f"/{segments[0]}/{_id(segments[1], f'{SCHEME} URI {shown!r}: {field}')}"
    else:
        raise ValueError(f"{SCHEME} URI {shown!r}: unknown path {uri.path!r}; {forms}")
    return uri._replace(netloc=host, path=path, query="", fragment="")


# -- asset objects ------------------------------------------------------------------------------------


def _asset(uri: str, asset_kwargs: dict[str, Any]) -> Any:
    """An ``airflow.sdk.Asset`` (Airflow 3) or ``airflow.datasets.Dataset`` (Airflow 2) for ``uri``."""
    try:
        from airflow.sdk import Asset
    except ImportError:  # Airflow 2
        from airflow.datasets import Dataset

        unknown = set(asset_kwargs) - {"extra"}
        if unknown:
            raise TypeError(
                f"{', '.join(sorted(unknown))}: not supported by Airflow 2's Dataset (only 'extra'); "
                "these need Airflow 3's Asset"
            ) from None
        return Dataset(uri, **asset_kwargs)
    return Asset(uri=uri, **asset_kwargs)


def video_asset(video_id: int | str, *, host: str = DEFAULT_HOST, **asset_kwargs: Any) -> Any:
    """The asset of a video (:func:`video_uri`): an ``Asset`` on Airflow 3, a ``Dataset`` on Airflow 2.

    :param video_id: the video's id.
    :param host: the API's host, see :func:`host_of`; default ``"aiontheball.nl"``.
    :param asset_kwargs: passed to ``Asset`` (``name``, ``group``, ``extra``, ``watchers``, ...); on
        Airflow 2 only ``extra``.
    """
    return _asset(video_uri(video_id, host=host), asset_kwargs)


def analysis_asset(analysis_id: int | str, *, host: str = DEFAULT_HOST, **asset_kwargs: Any) -> Any:
    """The asset of an analysis (:func:`analysis_uri`): an ``Asset`` on Airflow 3, a ``Dataset`` on Airflow 2.

    :param analysis_id: the analysis's id.
    :param host: the API's host, see :func:`host_of`; default ``"aiontheball.nl"``.
    :param asset_kwargs: passed to ``Asset``; on Airflow 2 only ``extra``.
    """
    return _asset(analysis_uri(analysis_id, host=host), asset_kwargs)


def analyses_asset(*, host: str = DEFAULT_HOST, **asset_kwargs: Any) -> Any:
    """The asset "every analysis of the organisation" (:func:`analyses_uri`): an ``Asset`` on Airflow 3,
    a ``Dataset`` on Airflow 2.

    :param host: the API's host, see :func:`host_of`; default ``"aiontheball.nl"``.
    :param asset_kwargs: passed to ``Asset``; on Airflow 2 only ``extra``.
    """
    return _asset(analyses_uri(host=host), asset_kwargs)


# -- metadata of asset events ---------------------------------------------------------------------------

#: The keys of every asset event's ``extra`` the operators write, always all present (``None``, or ``{}``
#: for the two mappings, when unknown). A contract like the trigger payloads: keys are only ever added.
#:
#: * ``kind``: what produced the event: ``"video"`` (create-video task), ``"analysis"`` (create-analysis
#:   task) or ``"results"`` (results task).
#: * ``video_id``, ``analysis_id``: ints. ``video_uri``, ``analysis_uri``: their asset URIs on the
#:   connection's host (:func:`video_uri`, :func:`analysis_uri`).
#: * ``game_name`` (server-generated, unique), ``title``, ``home_team_name``, ``away_team_name``: strings.
#: * ``date``: the match date ``YYYY-MM-DD`` (the submitted date, the video's if the server lists one, or
#:   the summary's ``metadata.game_date``).
#: * ``status``: the video's or analysis's status when the task ended.
#: * ``algorithm_version`` (string, e.g. ``"0.4.98"``), ``data_version`` (int, from the schema, or the
#:   summary if it carries one).
#: * ``results``: ``{name: path}`` of each fetched result, ``None`` where it went to XCom.
#: * ``counts``: ``{name: number of items}`` of the results that are JSON arrays (``events``,
#:   ``query_intervals``); the tracking file is streamed, its rows are not counted.
#:
#: Never in it: the video's URL (a presigned URL is a credential), the ``mp4_source``, any query string.
EXTRA_KEYS: tuple[str, ...] = (
    "kind",
    "video_id",
    "analysis_id",
    "video_uri",
    "analysis_uri",
    "game_name",
    "title",
    "home_team_name",
    "away_team_name",
    "date",
    "status",
    "algorithm_version",
    "data_version",
    "results",
    "counts",
)
EVENT_KINDS: tuple[str, ...] = ("video", "analysis", "results")

#: First Airflow with partition keys set per outlet event (``OutletEventAccessor.add_partitions``).
PARTITIONS_MIN_AIRFLOW = (3, 3)

_DATE_PREFIX = re.compile(r"^(\d{4}-\d{2}-\d{2})")


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _version(value: Any) -> int | None:
    """A ``data_version``: a whole number (:func:`~airflow_provider_aiontheball.validation.validate_integer`)."""
    try:
        return validate_integer(value, "data_version", maximum=MAX_ID)
    except ValueError:
        return None


def _date(value: Any) -> str | None:
    """``YYYY-MM-DD`` of an ISO date or date-time string, or of a ``date``/``datetime``; else ``None``."""
    import datetime as dt

    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    match = _DATE_PREFIX.match(value.strip()) if isinstance(value, str) else None
    return match.group(1) if match else None


def _path(value: Any) -> str | None:
    # A path of a written result: never with a query string (object-store URIs do not have one; a
    # signed URL would).
    return str(value).split("?", 1)[0].split("#", 1)[0] if value is not None else None


def result_facts(name: str, data: Any) -> dict[str, Any]:
    """What one fetched result tells the asset event, read from data the task has anyway (no request):
    the item count of a JSON array, the summary's ``metadata`` (``game_date``, ``version``) and the
    schema's ``data_version``. Returns only the keys it found: ``count``, ``date``, ``algorithm_version``,
    ``data_version``.

    :param name: the result's name (``summary``, ``events``, ``schema``, ``query_intervals``, ``tracking``).
    :param data: the result as fetched (``None`` for the streamed tracking file).
    """
    facts: dict[str, Any] = {}
    if isinstance(data, list):
        facts["count"] = len(data)
    elif isinstance(data, dict):
        if name == "schema" and (version := _version(data.get("data_version"))) is not None:
            facts["data_version"] = version
        metadata = data.get("metadata") if name == "summary" else None
        if isinstance(metadata, dict):
            if (date := _date(metadata.get("game_date"))) is not None:
                facts["date"] = date
            if (algorithm := _text(metadata.get("version"))) is not None:
                facts["algorithm_version"] = algorithm
            # Assumed (docs silent): a summary may carry data_version in its metadata.
            if (version := _version(metadata.get("data_version"))) is not None:
                facts["data_version"] = version
    return facts


def event_extra(
    kind: str,
    *,
    host: str,
    video_id: int | None = None,
    analysis_id: int | None = None,
    video: Any = None,
    analysis: Any = None,
    submitted: Any = None,
    results: Any = None,
    facts: Any = None,
) -> dict[str, Any]:
    """The ``extra`` of an asset event (keys :data:`EXTRA_KEYS`, JSON-safe), from what the task already has.

    Only documented fields are copied, one by one, so nothing the server adds (a ``video_file_url`` it
    echoes, a presigned ``mp4_source``) can leak into an event.

    :param kind: one of :data:`EVENT_KINDS`.
    :param host: the API's host (:func:`host_of` of the connection's base URL).
    :param video_id: the video, if known apart from ``video``/``analysis``. Default: none.
    :param analysis_id: the analysis, if known apart from ``analysis``. Default: none.
    :param video: the video as the API returned it (``GET /videos/{id}`` or the POST's answer). Default: none.
    :param analysis: the analysis as the API returned it. Default: none.
    :param submitted: the fields the task submitted (a create-video body): team names and ``date`` that
        the POST's answer does not repeat. Default: none.
    :param results: ``{name: path or None}`` of the fetched results. Default: none.
    :param facts: ``{name: result_facts(...)}`` of the fetched results. Default: none.
    """
    if kind not in EVENT_KINDS:
        raise ValueError(f"kind: expected one of {', '.join(EVENT_KINDS)}, got {_describe(kind)}")
    video = video if isinstance(video, dict) else {}
    analysis = analysis if isinstance(analysis, dict) else {}
    submitted = submitted if isinstance(submitted, dict) else {}
    facts = facts if isinstance(facts, dict) else {}
    analysis_video = analysis.get("video") if isinstance(analysis.get("video"), dict) else {}

    def first(*values: Any) -> Any:
        return next((value for value in values if value is not None), None)

    def fact(key: str) -> Any:
        return first(*(entry.get(key) for entry in facts.values() if isinstance(entry, dict)))

    the_video_id = first(
        validate_id(video_id, strict=False),
        validate_id(video.get("id"), strict=False),
        validate_id(analysis.get("video_id"), strict=False),
        validate_id(analysis_video.get("id"), strict=False),
    )
    the_analysis_id = first(validate_id(analysis_id, strict=False), validate_id(analysis.get("id"), strict=False))
    status = analysis.get("status") if kind != "video" else video.get("status")
    return {
        "kind": kind,
        "video_id": the_video_id,
        "analysis_id": the_analysis_id,
        "video_uri": video_uri(the_video_id, host=host) if the_video_id is not None else None,
        "analysis_uri": analysis_uri(the_analysis_id, host=host) if the_analysis_id is not None else None,
        "game_name": _text(video.get("game_name")),
        "title": first(_text(video.get("title")), _text(analysis_video.get("title")), _text(submitted.get("title"))),
        "home_team_name": first(_text(video.get("home_team_name")), _text(submitted.get("home_team_name"))),
        "away_team_name": first(_text(video.get("away_team_name")), _text(submitted.get("away_team_name"))),
        # The documented video has no date; a server may list it (assumed), else what was submitted.
        "date": first(_date(video.get("date")), _date(submitted.get("date")), fact("date")),
        "status": _text(status),
        "algorithm_version": first(_text(analysis.get("algorithm_version")), fact("algorithm_version")),
        "data_version": fact("data_version"),
        "results": {str(name): _path(path) for name, path in (results or {}).items()},
        "counts": {
            str(name): entry["count"]
            for name, entry in facts.items()
            if isinstance(entry, dict) and isinstance(entry.get("count"), int)
        },
    }


def video_id_of(analysis: Any) -> int | None:
    """The video of an analysis as the API returned it (``video_id``, else ``video.id``), or ``None``.

    :param analysis: the analysis object (or ``None``).
    """
    if not isinstance(analysis, dict):
        return None
    video = analysis.get("video")
    return validate_id(analysis.get("video_id"), strict=False) or (
        validate_id(video.get("id"), strict=False) if isinstance(video, dict) else None
    )


def partition_key_of(video_id: int | str) -> str:
    """The asset partition of a match: its video id, in decimal (``"789"``).

    Why the video id and not the ``game_name`` (also unique and server-generated): one video is one
    match; every task of the pipeline knows the id without a request (the create-analysis and results
    tasks would need ``GET /videos/{id}`` for the name); it is what a consumer passes to the API
    (``int(dag_run.partition_key)``); and it never changes, where the docs promise nothing about the
    name's format or stability. The host is in the asset's URI, so ids of two servers do not mix. The
    name and teams are in the event's ``extra`` for people.

    :param video_id: the match's video.
    """
    return str(_id(video_id, "video_id"))


def supports_partitions(version: str | None = None) -> bool:
    """Whether this Airflow sets partition keys on outlet events (3.3+).

    :param version: an Airflow version string. Default: the installed Airflow's.
    """
    if version is None:
        import airflow

        version = airflow.__version__
    try:
        major, minor = (int(part) for part in version.split(".")[:2])
    except ValueError:
        return False
    return (major, minor) >= PARTITIONS_MIN_AIRFLOW


def check_partition_by_match(task: Any, partition_by_match: bool) -> None:
    """Parse-time check (no I/O) of an operator's ``partition_by_match``: it needs Airflow 3.3 and outlets.

    :raises ValueError: naming ``partition_by_match``.
    """
    if not isinstance(partition_by_match, bool):
        raise ValueError(f"partition_by_match: expected True or False, got {_describe(partition_by_match)}")
    if not partition_by_match:
        return
    if not supports_partitions():
        import airflow

        raise ValueError(
            f"partition_by_match: asset partitions per event need Airflow >= "
            f"{'.'.join(map(str, PARTITIONS_MIN_AIRFLOW))} (this is {airflow.__version__}); remove the argument "
            "(the event's extra still carries video_id and game_name)"
        )
    if not getattr(task, "outlets", None):
        raise ValueError(
            "partition_by_match: the task has no outlets to partition; add e.g. outlets=[analyses_asset(host=...)]"
        )


def _event_targets(outlets: Any) -> list[Any]:
    """The outlets that take an ``extra``: assets and asset references (Airflow 3), datasets (Airflow 2).
    Aliases (they need the concrete asset) and other lineage objects are left alone."""
    try:
        from airflow.sdk import Asset, AssetAlias
    except ImportError:  # Airflow 2
        from airflow.datasets import Dataset, DatasetAlias

        return [o for o in outlets if isinstance(o, Dataset) and not isinstance(o, DatasetAlias)]
    try:
        from airflow.sdk.definitions.asset import AssetRef
    except ImportError:  # not in every 3.x
        refs: tuple[type, ...] = ()
    else:
        refs = (AssetRef,)
    return [o for o in outlets if isinstance(o, (Asset, *refs)) and not isinstance(o, AssetAlias)]


def record_outlet_events(task: Any, context: Any, extra: dict[str, Any], *, partition_key: str | None = None) -> int:
    """Attach ``extra`` (and the partition key, Airflow 3.3+) to the task's outlet events; returns how many.

    Keys a user's code already set on an event stay unless ours has the same name. The events are
    emitted by Airflow when the task succeeds, from the worker (``task_end`` never ends a task with
    outlets in the triggerer).

    :param task: the operator.
    :param context: the task's context (``outlet_events``).
    :param extra: from :func:`event_extra`.
    :param partition_key: from :func:`partition_key_of`, or ``None`` for no partition.
    """
    outlets = getattr(task, "outlets", None) or []
    events = context.get("outlet_events") if hasattr(context, "get") else None
    if not outlets or events is None:
        return 0
    targets = _event_targets(outlets)
    for outlet in targets:
        accessor = events[outlet]
        accessor.extra.update(extra)
        if partition_key is not None:
            accessor.add_partitions(partition_key)
    return len(targets)


def emit_match_events(task: Any, context: Any, kind: str, **fields: Any) -> None:
    """The one path of the three operators once they know what the event is about: build the ``extra``
    (:func:`event_extra`, ``fields`` as it takes them), the match's partition when the task asked for
    ``partition_by_match`` (Airflow 3.3+), attach them to the outlet events, and say so in the task log.

    :raises ValueError: ``partition_by_match`` and the match's video is unknown (the server did not say).
    """
    extra = event_extra(kind, host=host_of(task.hook.settings.base_url), **fields)
    partition = None
    if getattr(task, "partition_by_match", False):
        if extra["video_id"] is None:
            raise ValueError(
                f"partition_by_match: the video of analysis {extra['analysis_id']} is unknown (the server did not "
                "say); pass video_id"
            )
        partition = partition_key_of(extra["video_id"])
    count = record_outlet_events(task, context, extra, partition_key=partition)
    subject = f"analysis {extra['analysis_id']}" if extra["analysis_id"] is not None else f"video {extra['video_id']}"
    task.log.info(
        "Asset events of %d outlet(s) carry %s's metadata%s.",
        count,
        subject,
        f" (partition {partition})" if partition else "",
    )


def wants_asset_events(task: Any) -> bool:
    """Whether the task has outlets, i.e. whether building the event's extra is worth a request."""
    return bool(getattr(task, "outlets", None))
