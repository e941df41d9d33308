"""Videos in object storage: a ``video_file_url`` such as ``s3://bucket/key`` presigned at execute time.

The API downloads a video from a public URL. Data teams keep match videos in S3, GCS or Azure Blob
Storage; :func:`parse_source` reads such a path (a string, or Airflow's ``ObjectStoragePath``) and
:func:`presign` turns it into a time-limited URL with the Airflow connection of that store, through the
official providers (each an optional extra of this package):

- **S3** (``s3://``, ``s3a://``): ``S3Hook.generate_presigned_url`` (SigV4, ``X-Amz-*``), connection
  ``aws_default`` unless told otherwise; extra ``amazon``.
- **GCS** (``gs://``, ``gcs://``): a V4 signed URL (``X-Goog-*``) from the client of ``GCSHook``, connection
  ``google_cloud_default``; the credentials must be able to sign (a service-account key, or a service account
  that may sign through IAM); extra ``google``.
- **Azure Blob Storage** (``abfs://``, ``abfss://``: Airflow's object-storage schemes for Azure, ``az://``:
  fsspec's alias, ``wasb://``/``wasbs://``: the Hadoop form the ``WasbHook`` family uses): a read-only SAS for
  the one blob, from the credentials of ``WasbHook``'s client: an account key signs it, Entra ID credentials
  ask the account for a user-delegation key first. Connection ``wasb_default``; extra ``azure``.

A missing extra fails at once, naming the ``pip install``
(:class:`~airflow_provider_aiontheball.exceptions.AIOnTheBallMissingExtraError`, no retries). The presigned URL
is a credential: its query is masked in Airflow's logs (``mask_secret``) the moment it exists, and the operator
keeps it out of XCom, rendered fields, lineage and asset events; the exactly-once fingerprint is the object path
(``ObjectSource.uri``), so a retry that signs again is the same request.

:func:`require_filesystem` checks, for the results operator, that an object-storage ``output_path`` has the
filesystem package Airflow's ``ObjectStoragePath`` will need (``s3fs``, ``gcsfs``, ``adlfs``).

Imported only at execute time; the providers and cloud SDKs only inside the functions that use them.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib.util
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from airflow_provider_aiontheball import _airflow
from airflow_provider_aiontheball.defaults import (
    DEFAULT_PRESIGN_EXPIRES_IN,
    MAX_PRESIGN_EXPIRES_IN,
    PREFLIGHT_EXPIRY_MARGIN_SECONDS,
    SAS_START_SKEW_SECONDS,
)

__all__ = [
    "DEFAULT_CONN_IDS",
    "SCHEMES",
    "ObjectSource",
    "blob_sas_url",
    "gcs_signed_url",
    "parse_source",
    "presign",
    "require_filesystem",
    "resolve_conn_id",
    "validate_expires_in",
]

#: URL scheme → the store it names.
SCHEMES: dict[str, str] = {
    "s3": "s3",
    "s3a": "s3",
    "gs": "gcs",
    "gcs": "gcs",
    "abfs": "azure",
    "abfss": "azure",
    "az": "azure",
    "wasb": "azure",
    "wasbs": "azure",
}
#: The conventional Airflow connection id of each store (what its provider's hooks default to).
DEFAULT_CONN_IDS: dict[str, str] = {"s3": "aws_default", "gcs": "google_cloud_default", "azure": "wasb_default"}
#: store → (extra of this package, the provider module it brings, the provider's name in messages).
_EXTRAS: dict[str, tuple[str, str, str]] = {
    "s3": ("amazon", "airflow.providers.amazon.aws.hooks.s3", "the Amazon provider"),
    "gcs": ("google", "airflow.providers.google.cloud.hooks.gcs", "the Google provider"),
    "azure": ("azure", "airflow.providers.microsoft.azure.hooks.wasb", "the Microsoft Azure provider"),
}
_STORE_NAMES = {"s3": "an S3", "gcs": "a GCS", "azure": "an Azure Blob Storage"}
#: The canonical scheme of each store in ``ObjectSource.uri`` (``s3a://`` and ``s3://`` name the same object).
_CANONICAL = {"s3": "s3", "gcs": "gs", "azure": "abfs"}
#: What ``ObjectStoragePath`` needs to write ``output_path`` there: scheme → (package, what installs it).
_FILESYSTEMS: dict[str, tuple[str, str, str]] = {
    "s3": ("s3fs", "airflow.providers.amazon", "apache-airflow-providers-amazon[s3fs]"),
    "s3a": ("s3fs", "airflow.providers.amazon", "apache-airflow-providers-amazon[s3fs]"),
    "gs": ("gcsfs", "airflow.providers.google", "airflow-provider-aiontheball[google]"),
    "gcs": ("gcsfs", "airflow.providers.google", "airflow-provider-aiontheball[google]"),
    "abfs": ("adlfs", "airflow.providers.microsoft.azure", "airflow-provider-aiontheball[azure]"),
    "abfss": ("adlfs", "airflow.providers.microsoft.azure", "airflow-provider-aiontheball[azure]"),
    "adl": ("adlfs", "airflow.providers.microsoft.azure", "airflow-provider-aiontheball[azure]"),
}
# Bucket and container names: S3 allows dots, GCS dots and underscores; Azure containers neither (so a dot in
# an Azure authority is the account's host name of the ``container@account.<endpoint>`` form).
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$")
_ACCOUNT_HOST = re.compile(r"^([a-z0-9]{3,24})\.(?:blob|dfs)\.[a-z0-9.-]+$")
_KNOWN = ", ".join(f"{scheme}://" for scheme in SCHEMES)


@dataclass(frozen=True)
class ObjectSource:
    """A video in object storage, as :func:`parse_source` read it.

    :param store: ``"s3"``, ``"gcs"`` or ``"azure"``.
    :param bucket: the bucket (Azure: the container).
    :param key: the object's key (Azure: the blob's name), without a leading slash.
    :param account: Azure only: the storage account the path names (``container@account.blob...``), if any.
    :param conn_id: the connection the path names (``ObjectStoragePath.conn_id``, or ``s3://conn_id@bucket/key``).
    """

    store: str
    bucket: str
    key: str
    account: str | None = None
    conn_id: str | None = None

    @property
    def uri(self) -> str:
        """The object's path without any connection id: what names the file (the exactly-once fingerprint,
        lineage, logs). ``s3://bucket/key``, ``gs://bucket/key``, ``abfs://container@account/key``."""
        where = f"{self.bucket}@{self.account}" if self.account else self.bucket
        return f"{_CANONICAL[self.store]}://{where}/{self.key}"

    @property
    def namespace(self) -> str:
        """The OpenLineage dataset namespace of the object (its name is ``key``): ``s3://bucket``,
        ``gs://bucket``, ``wasbs://container@account.blob.core.windows.net`` (or ``abfs://container`` when
        the account comes from the connection)."""
        if self.store == "azure":
            if self.account:
                return f"wasbs://{self.bucket}@{self.account}.blob.core.windows.net"
            return f"abfs://{self.bucket}"
        return f"{_CANONICAL[self.store]}://{self.bucket}"


def parse_source(value: Any, field: str = "video_file_url") -> ObjectSource | None:
    """The object-storage path in ``value``, or ``None`` for an http(s) URL (left to the URL validation).

    :param value: a rendered ``video_file_url``: a string, or an ``ObjectStoragePath``.
    :param field: the name error messages start with.
    :raises ValueError: a path of a known store that names no bucket or no object, or a value that is neither
        an http(s) URL nor a path of a known store.
    """
    if _is_object_storage_path(value):
        protocol = str(value.protocol or "").lower()
        if protocol not in SCHEMES:
            raise ValueError(
                f"{field}: an ObjectStoragePath of protocol {protocol!r} cannot be presigned; "
                f"supported: {', '.join(sorted({'s3', 'gs', 'abfs'}))}"
            )
        # Airflow 3 has the ``conn_id`` property; Airflow 2 keeps it in ``storage_options``.
        conn_id = getattr(value, "conn_id", None) or (getattr(value, "storage_options", None) or {}).get("conn_id")
        bucket = str(value.bucket).rpartition("@")[2]  # Airflow 2's bucket keeps the "conn_id@" of its URL
        return _source(protocol, bucket, str(value.key), conn_id, field)
    if not isinstance(value, str):
        return None  # the URL validation names what is wrong with it
    text = value.strip()
    scheme, sep, _ = text.partition("://")
    scheme = scheme.lower()
    if not sep or scheme in ("http", "https"):
        return None
    if scheme not in SCHEMES:
        raise ValueError(
            f"{field}: expected an http(s) URL or an object-storage path ({_KNOWN}), got a {scheme}:// URL"
        )
    if any(c.isspace() for c in text) or "?" in text or "#" in text:
        raise ValueError(
            f"{field}: {_shown(text)}: an object-storage path has no spaces, query or fragment "
            "(it is presigned at execute time)"
        )
    parts = urlsplit(text)
    userinfo, at, host = parts.netloc.rpartition("@")
    store = SCHEMES[scheme]
    account = None
    conn_id = None
    if store == "azure" and ("." in host or scheme in ("wasb", "wasbs")):
        # container@account.blob.core.windows.net (or .dfs.): the Hadoop / adlfs form
        match = _ACCOUNT_HOST.match(host.lower())
        if not at or not match:
            raise ValueError(
                f"{field}: {_shown(text)}: expected {scheme}://container@account.blob.core.windows.net/path"
                + ("" if scheme in ("wasb", "wasbs") else f" or {scheme}://container/path")
            )
        container, account = userinfo, match.group(1)
    else:
        container = host  # scheme://[conn_id@]bucket/key, as Airflow's ObjectStoragePath reads it
        conn_id = (userinfo or None) if at else None
    return _source(scheme, container, parts.path.lstrip("/"), conn_id, field, account=account)


def _is_object_storage_path(value: Any) -> bool:
    """Airflow's ``ObjectStoragePath`` (2.8+ ``airflow.io.path``, 3.x ``airflow.sdk``), by what it has."""
    return not isinstance(value, str) and all(hasattr(value, name) for name in ("protocol", "bucket", "key"))


def _source(
    scheme: str, bucket: str, key: str, conn_id: str | None, field: str, *, account: str | None = None
) -> ObjectSource:
    store = SCHEMES[scheme]
    shown = f"{scheme}://{bucket}/{key}"
    if not bucket:
        raise ValueError(f"{field}: {_shown(shown)}: names no bucket")
    if not _BUCKET.match(bucket) or (store == "azure" and ("." in bucket or "_" in bucket)):
        raise ValueError(f"{field}: {_shown(shown)}: {bucket!r} is not a valid bucket or container name")
    if not key or key.endswith("/"):
        raise ValueError(f"{field}: {_shown(shown)}: names a bucket or folder, not a video file")
    return ObjectSource(store=store, bucket=bucket, key=key, account=account, conn_id=conn_id)


def _shown(text: str) -> str:
    return repr(text if len(text) <= 120 else text[:117] + "...")


def validate_expires_in(value: Any, field: str = "presign_expires_in") -> int:
    """``value`` (seconds, or a ``timedelta``) as whole seconds, longer than the pre-flight expiry margin and at
    most 7 days (the longest SigV4 and GCS V4 signatures)."""
    if isinstance(value, dt.timedelta):
        value = value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{field}: expected seconds (an int) or a timedelta, got {value!r}")
    seconds = int(value)
    if seconds <= PREFLIGHT_EXPIRY_MARGIN_SECONDS:
        raise ValueError(
            f"{field}: {seconds} s is too short: the API downloads the video some time after the POST, and the "
            f"checks before upload require at least {PREFLIGHT_EXPIRY_MARGIN_SECONDS} s left "
            f"(default {DEFAULT_PRESIGN_EXPIRES_IN} s)"
        )
    if seconds > MAX_PRESIGN_EXPIRES_IN:
        raise ValueError(
            f"{field}: {seconds} s is longer than S3 and GCS signatures can last ({MAX_PRESIGN_EXPIRES_IN} s, 7 days)"
        )
    return seconds


def resolve_conn_id(source: ObjectSource, conn_id: str | None, field: str = "source_conn_id") -> str:
    """The connection to sign with: the task's ``source_conn_id``, else the one the path names, else the store's
    conventional id. A path and a task naming two different connections is refused."""
    if conn_id and source.conn_id and conn_id != source.conn_id:
        raise ValueError(
            f"{field}: {conn_id!r}, but the path {source.uri} names connection {source.conn_id!r}; name one of them"
        )
    return conn_id or source.conn_id or DEFAULT_CONN_IDS[source.store]


# -- presigning ---------------------------------------------------------------------------------------


def presign(
    source: ObjectSource,
    conn_id: str,
    expires_in: int = DEFAULT_PRESIGN_EXPIRES_IN,
    *,
    log: Any = None,
    field: str = "video_file_url",
) -> str:
    """A URL that reads ``source`` without credentials for ``expires_in`` seconds, signed with the Airflow
    connection ``conn_id``; its secret parts are masked before it is returned.

    :param log: where to say which object was presigned, with which connection (never the URL). Default: nowhere.

    :raises AIOnTheBallMissingExtraError: the store's provider is not installed.
    :raises AIOnTheBallSourceAccessError: the connection's credentials cannot sign.
    """
    extra, module, provider = _EXTRAS[source.store]
    try:
        hooks = importlib.import_module(module)
    except ImportError as exc:
        from airflow_provider_aiontheball.exceptions import AIOnTheBallMissingExtraError

        raise AIOnTheBallMissingExtraError(
            f"{field}: {source.uri}: presigning {_STORE_NAMES[source.store]} path needs {provider} "
            f"({exc.name or module} is not installed): pip install 'airflow-provider-aiontheball[{extra}]'"
        ) from None
    if source.store == "s3":
        url = _presign_s3(hooks, source, conn_id, expires_in, field)
    elif source.store == "gcs":
        client = hooks.GCSHook(gcp_conn_id=conn_id).get_conn()
        url = gcs_signed_url(client, source.bucket, source.key, expires_in, conn_id=conn_id, field=field)
    else:
        service = hooks.WasbHook(wasb_conn_id=conn_id).blob_service_client
        url = blob_sas_url(service, source.bucket, source.key, expires_in, account=source.account, conn_id=conn_id)
    _airflow.mask_url_secrets(url)  # before anything can log it
    if log is not None:
        log.info(
            "Presigned %s with connection %r, valid for %s s (the API downloads it after the POST).",
            source.uri,
            conn_id,
            expires_in,
        )
    return url


def _presign_s3(hooks: Any, source: ObjectSource, conn_id: str, expires_in: int, field: str) -> str:
    from botocore.config import Config
    from botocore.exceptions import NoCredentialsError, PartialCredentialsError

    from airflow_provider_aiontheball.exceptions import AIOnTheBallSourceAccessError

    # SigV4 always: left to itself botocore still presigns SigV2 (``Signature=``, ``Expires=``) in us-east-1, which
    # newer regions refuse. The connection's other client settings (its extra ``config_kwargs``) are kept: a config
    # given to the hook replaces them, so they are read first and merged.
    configured = hooks.S3Hook(aws_conn_id=conn_id).config
    hook = hooks.S3Hook(aws_conn_id=conn_id, config=configured.merge(Config(signature_version="s3v4")))
    try:
        with _unlogged("botocore.auth"):
            url = hook.generate_presigned_url(
                "get_object", params={"Bucket": source.bucket, "Key": source.key}, expires_in=expires_in
            )
    except (NoCredentialsError, PartialCredentialsError) as exc:
        raise AIOnTheBallSourceAccessError(
            f"{field}: {source.uri}: connection {conn_id!r} has no AWS credentials to presign it with ({exc})"
        ) from None
    if not url:  # S3Hook logs the ClientError and returns None
        raise AIOnTheBallSourceAccessError(f"{field}: {source.uri}: connection {conn_id!r} could not presign it")
    return str(url)


class _DropAll(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return False


@contextlib.contextmanager
def _unlogged(name: str) -> Iterator[None]:
    """No record of logger ``name`` while signing: botocore logs the string it signs and the signature at DEBUG,
    before the URL exists to be masked, and a DEBUG task log would keep them."""
    logger = logging.getLogger(name)
    drop = _DropAll()
    logger.addFilter(drop)
    try:
        yield
    finally:
        logger.removeFilter(drop)


def gcs_signed_url(
    client: Any,
    bucket: str,
    key: str,
    expires_in: int,
    *,
    conn_id: str = DEFAULT_CONN_IDS["gcs"],
    field: str = "video_file_url",
) -> str:
    """A V4 signed ``GET`` URL of ``gs://bucket/key`` from a ``google.cloud.storage.Client``.

    Credentials with a private key (a service-account key) sign locally. Credentials without one but with a
    service account (Compute Engine, GKE workload identity, impersonation) sign through IAM ``signBlob``, which
    needs ``iam.serviceAccounts.signBlob`` on that account. Others (a user's token) cannot sign.

    :raises AIOnTheBallSourceAccessError: the credentials cannot sign.
    """
    from airflow_provider_aiontheball.exceptions import AIOnTheBallSourceAccessError

    blob = client.bucket(bucket).blob(key)
    credentials = getattr(client, "_credentials", None)
    options: dict[str, Any] = {}
    if credentials is None or not callable(getattr(credentials, "sign_bytes", None)):
        email = getattr(credentials, "service_account_email", None)
        if credentials is None or not email:
            raise AIOnTheBallSourceAccessError(
                f"{field}: gs://{bucket}/{key}: the credentials of connection {conn_id!r} "
                f"({type(credentials).__name__}) cannot sign a URL: use a service-account key (keyfile_dict or "
                "key_path), or a service account that may sign through IAM (iam.serviceAccounts.signBlob)"
            )
        from google.auth.transport.requests import Request

        credentials.refresh(Request())  # a token for IAM signBlob, and the account's real e-mail
        options = {"service_account_email": credentials.service_account_email, "access_token": credentials.token}
    try:
        url = blob.generate_signed_url(
            version="v4", expiration=dt.timedelta(seconds=expires_in), method="GET", **options
        )
    except AttributeError as exc:  # google-cloud-storage: "you need a private key to sign credentials"
        raise AIOnTheBallSourceAccessError(
            f"{field}: gs://{bucket}/{key}: the credentials of connection {conn_id!r} cannot sign a URL ({exc})"
        ) from None
    return str(url)


def blob_sas_url(
    service: Any,
    container: str,
    blob: str,
    expires_in: int,
    *,
    account: str | None = None,
    conn_id: str = DEFAULT_CONN_IDS["azure"],
    now: dt.datetime | None = None,
    field: str = "video_file_url",
) -> str:
    """The blob's URL with a read-only SAS for it alone, from an ``azure.storage.blob.BlobServiceClient``.

    An account key (a shared-key credential or connection string) signs the SAS locally; Entra ID credentials
    (a token credential) first ask the account for a user-delegation key, valid as long as the SAS (this needs
    ``Microsoft.Storage/.../generateUserDelegationKey``, e.g. the *Storage Blob Delegator* role).

    :param account: the storage account the path names; it must be the client's.
    :raises AIOnTheBallSourceAccessError: another account, or credentials that cannot make a SAS.
    """
    from azure.storage.blob import BlobSasPermissions, generate_blob_sas

    from airflow_provider_aiontheball.exceptions import AIOnTheBallSourceAccessError

    where = f"abfs://{container}/{blob}"
    if account and account != service.account_name:
        raise AIOnTheBallSourceAccessError(
            f"{field}: {where}: the path is in account {account!r}, connection {conn_id!r} reaches "
            f"{service.account_name!r}"
        )
    now = now or dt.datetime.now(dt.UTC)
    start, expiry = now - dt.timedelta(seconds=SAS_START_SKEW_SECONDS), now + dt.timedelta(seconds=expires_in)
    credential = service.credential
    signing: dict[str, Any]
    if getattr(credential, "account_key", None):
        signing = {"account_key": credential.account_key}
    elif callable(getattr(credential, "get_token", None)):
        signing = {"user_delegation_key": service.get_user_delegation_key(start, expiry)}
    else:
        raise AIOnTheBallSourceAccessError(
            f"{field}: {where}: connection {conn_id!r} authenticates with "
            f"{'a SAS token' if credential else 'no credentials'}, which cannot make a new SAS: give it the "
            "account key (or a connection string with one) or Entra ID credentials"
        )
    sas = generate_blob_sas(
        service.account_name,
        container,
        blob,
        permission=BlobSasPermissions(read=True),
        start=start,
        expiry=expiry,
        **signing,
    )
    return f"{service.get_blob_client(container, blob).url}?{sas}"


# -- output paths ---------------------------------------------------------------------------------------


def require_filesystem(path: Any, field: str = "output_path") -> None:
    """Fail unless what Airflow's ``ObjectStoragePath`` needs to write under ``path`` is installed: the store's
    fsspec package (``s3fs``, ``gcsfs``, ``adlfs``) and the provider that registers its scheme. Local paths and
    other schemes pass (Airflow names them itself).

    :raises AIOnTheBallMissingExtraError: naming the package and how to install it.
    """
    text = str(path)
    scheme = text.partition("://")[0].lower() if "://" in text else ""
    if scheme not in _FILESYSTEMS:
        return
    package, provider, install = _FILESYSTEMS[scheme]
    missing = [name for name in (package, provider) if not _installed(name)]
    if missing:
        from airflow_provider_aiontheball.exceptions import AIOnTheBallMissingExtraError

        shown = text.split("?", 1)[0]
        raise AIOnTheBallMissingExtraError(
            f"{field}: writing to {scheme}:// ({shown}) needs the {package} package, and {provider} to register the "
            f"scheme with Airflow ({' and '.join(missing)} not installed): pip install '{install}'"
        )


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ImportError:  # a parent package is missing
        return False
