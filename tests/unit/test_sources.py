"""Videos in object storage (``airflow_provider_aiontheball/sources.py``): ``s3://``, ``gs://`` and ``abfs://`` paths
presigned at execute time with the store's connection, against real servers on loopback.

- S3: moto's server (``ThreadedMotoServer``) with a real MP4 uploaded, presigned through ``S3Hook`` and downloaded
  (moto does not verify signatures: what is checked is that the URL reads the object, its expiry and that nothing
  leaks). Needs the amazon provider and moto (in the 2.11.2 and 3.3.2 locks).
- Azure: Azurite (``make azurite``) started per module, with a SAS the emulator checks (a tampered one is refused).
- GCS: a V4 URL signed with a generated service-account key; no emulator verifies GCS signatures, so the test
  rebuilds the string that was signed and verifies the signature with the key's public half.

Each part skips, naming what is missing, where its package is not installed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib.util
import json
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlsplit

import pytest
import requests
from airflow.providers.common.compat.sdk import AirflowFailException

from airflow_provider_aiontheball import sources
from airflow_provider_aiontheball.defaults import DEFAULT_PRESIGN_EXPIRES_IN, XCOM_PREFLIGHT
from airflow_provider_aiontheball.exceptions import (
    AIOnTheBallInputError,
    AIOnTheBallMissingExtraError,
    AIOnTheBallSourceAccessError,
)
from airflow_provider_aiontheball.operators.analysis import AIOnTheBallAnalysisResultsOperator
from airflow_provider_aiontheball.operators.video import AIOnTheBallCreateVideoOperator
from tests.helpers import (
    CONN_ENV,
    EXAMPLE_DAGS,
    FAST_RETRY_EXTRA,
    REPO,
    RecordingStateStore,
    api_requests,
    connection_json,
    durable_context,
    load_dag_file,
    states,
    stored_text,
    task_context,
    write_dag,
    xcom_value,
)

MATCH = {"title": "Ajax vs PSV", "home_team_name": "Ajax", "away_team_name": "PSV"}
BUCKET = "matches"
KEY = "season-2025/ajax-psv.mp4"
AZURITE = REPO / ".azurite" / "node_modules" / ".bin" / "azurite-blob"
# Azurite's documented development account and key (public, in every Azure Storage emulator's docs).
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ImportError:
        return False


def needs(*modules: str) -> pytest.MarkDecorator:
    missing = [module for module in modules if not installed(module)]
    return pytest.mark.skipif(bool(missing), reason=f"not installed here: {', '.join(missing)}")


NEEDS_S3 = needs("airflow.providers.amazon", "moto.server", "av")
NEEDS_WASB = needs("airflow.providers.microsoft.azure", "azure.storage.blob", "av")


def create(url: Any, **kwargs: Any) -> AIOnTheBallCreateVideoOperator:
    return AIOnTheBallCreateVideoOperator(task_id="create_video", video_file_url=url, **MATCH, **kwargs)


def posted_urls(simulator: Any) -> list[str]:
    return [r["body"]["video_file_url"] for r in api_requests(simulator, "POST", "/videos")]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def match_file() -> Path:
    from tests.media import make_video_dir

    return make_video_dir() / "match-11min.mp4"


# -- the path and the task's arguments, validated before anything is signed or sent -------------------------------


@pytest.mark.parametrize(
    ("value", "store", "uri", "conn_id"),
    [
        pytest.param("s3://matches/season-2025/ajax-psv.mp4", "s3", "s3://matches/season-2025/ajax-psv.mp4", None,
                     id="s3"),
        pytest.param("s3a://matches/a.mp4", "s3", "s3://matches/a.mp4", None, id="s3a"),
        pytest.param("s3://aws_prod@matches/a.mp4", "s3", "s3://matches/a.mp4", "aws_prod", id="s3-with-conn-id"),
        pytest.param("gs://matches/a.mp4", "gcs", "gs://matches/a.mp4", None, id="gs"),
        pytest.param("gcs://matches/a.mp4", "gcs", "gs://matches/a.mp4", None, id="gcs"),
        pytest.param("abfs://matches/a.mp4", "azure", "abfs://matches/a.mp4", None, id="abfs"),
        pytest.param("az://matches/a.mp4", "azure", "abfs://matches/a.mp4", None, id="az"),
        pytest.param("abfss://matches@aibvideos.dfs.core.windows.net/a.mp4", "azure",
                     "abfs://matches@aibvideos/a.mp4", None, id="abfss-account"),
        pytest.param("wasbs://matches@aibvideos.blob.core.windows.net/a.mp4", "azure",
                     "abfs://matches@aibvideos/a.mp4", None, id="wasbs-account"),
    ],
)  # fmt: skip
def test_object_paths_are_read_as_airflow_reads_them(value: str, store: str, uri: str, conn_id: str | None) -> None:
    source = sources.parse_source(value)

    assert source is not None
    assert (source.store, source.uri, source.conn_id) == (store, uri, conn_id)


def test_an_http_url_is_left_to_the_url_checks() -> None:
    assert sources.parse_source("https://bucket.example.com/matches/a.mp4?X-Amz-Signature=abc") is None


def test_an_object_storage_path_object_gives_its_protocol_and_connection() -> None:
    try:
        from airflow.sdk import ObjectStoragePath
    except ImportError:  # Airflow 2
        from airflow.io.path import ObjectStoragePath
    try:
        path = ObjectStoragePath("s3://aws_prod@matches/season-2025/ajax-psv.mp4")
    except (ImportError, ValueError) as exc:  # a filesystem Airflow cannot build here
        pytest.skip(f"ObjectStoragePath('s3://...') cannot be built here: {exc}")

    source = sources.parse_source(path)

    assert source is not None
    assert (source.store, source.uri, source.conn_id) == ("s3", "s3://matches/season-2025/ajax-psv.mp4", "aws_prod")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param({"video_file_url": "s3://matches"}, "names a bucket or folder, not a video file", id="no-key"),
        pytest.param({"video_file_url": "s3://matches/season-2025/"}, "not a video file", id="folder"),
        pytest.param({"video_file_url": "s3:///a.mp4"}, "names no bucket", id="no-bucket"),
        pytest.param({"video_file_url": "s3://Matches/a.mp4"}, "is not a valid bucket", id="bad-bucket"),
        pytest.param({"video_file_url": "s3://matches/a.mp4?versionId=3"}, "no spaces, query or fragment", id="query"),
        pytest.param({"video_file_url": "ftp://example.com/a.mp4"}, "expected an http(s) URL or an object-storage path",
                     id="ftp"),
        pytest.param({"video_file_url": "wasb://matches/a.mp4"}, "container@account.blob.core.windows.net",
                     id="wasb-without-account"),
        pytest.param({"video_file_url": "s3://matches/a.mp4", "presign_expires_in": 600}, "presign_expires_in: 600 s is too short",
                     id="expiry-within-the-margin"),
        pytest.param({"video_file_url": "s3://matches/a.mp4", "presign_expires_in": dt.timedelta(days=8)},
                     "presign_expires_in: 691200 s is longer", id="expiry-past-7-days"),
        pytest.param({"video_file_url": "s3://aws_prod@matches/a.mp4", "source_conn_id": "aws_dev"},
                     "source_conn_id: 'aws_dev', but the path", id="two-connections"),
    ],
)  # fmt: skip
def test_a_bad_path_or_argument_fails_naming_it_before_any_request(
    aiontheball_conn: Any, kwargs: dict[str, Any], message: str
) -> None:
    url = kwargs.pop("video_file_url")

    with pytest.raises(AIOnTheBallInputError) as raised:
        create(url, **kwargs).execute(task_context())

    assert isinstance(raised.value, AirflowFailException), "no retry changes the argument"
    assert message in str(raised.value)
    assert str(raised.value).split(":")[0] in ("video_file_url", "presign_expires_in", "source_conn_id")
    assert api_requests(aiontheball_conn) == []


@pytest.mark.parametrize(
    ("path", "extra", "provider"),
    [
        pytest.param("s3://matches/a.mp4", "amazon", "airflow.providers.amazon", id="amazon"),
        pytest.param("gs://matches/a.mp4", "google", "airflow.providers.google", id="google"),
        pytest.param("abfs://matches/a.mp4", "azure", "airflow.providers.microsoft.azure", id="azure"),
    ],
)
def test_a_missing_extra_fails_at_once_naming_it(aiontheball_conn: Any, path: str, extra: str, provider: str) -> None:
    if installed(provider):
        pytest.skip(f"{provider} is installed here")

    with pytest.raises(AIOnTheBallMissingExtraError) as raised:
        create(path, preflight=True).execute(task_context())

    assert isinstance(raised.value, AirflowFailException), "no retry installs it"
    assert f"pip install 'airflow-provider-aiontheball[{extra}]'" in str(raised.value)
    assert str(raised.value).startswith(f"video_file_url: {sources.parse_source(path).uri}: ")  # type: ignore[union-attr]
    assert api_requests(aiontheball_conn) == []


@pytest.mark.parametrize(
    ("path", "package", "provider"),
    [
        pytest.param("s3://results/aib", "s3fs", "airflow.providers.amazon", id="s3fs"),
        pytest.param("gs://results/aib", "gcsfs", "airflow.providers.google", id="gcsfs"),
        pytest.param("abfs://results/aib", "adlfs", "airflow.providers.microsoft.azure", id="adlfs"),
    ],
)
def test_an_output_path_without_its_filesystem_fails_before_any_request(
    aiontheball_conn: Any, path: str, package: str, provider: str
) -> None:
    if installed(package) and installed(provider):
        pytest.skip(f"{package} and {provider} are installed here")
    task = AIOnTheBallAnalysisResultsOperator(task_id="results", analysis_id=1246, output_path=path)

    with pytest.raises(AIOnTheBallMissingExtraError) as raised:
        task.execute(task_context())

    assert isinstance(raised.value, AirflowFailException)
    assert str(raised.value).startswith(f"output_path: writing to {path.split(':')[0]}://")
    assert f"needs the {package} package" in str(raised.value)
    assert "pip install '" in str(raised.value)
    assert api_requests(aiontheball_conn) == []


@pytest.mark.parametrize(
    ("path", "namespace", "name"),
    [
        pytest.param("s3://matches/season-2025/ajax-psv.mp4", "s3://matches", "season-2025/ajax-psv.mp4", id="s3"),
        pytest.param("gcs://matches/a.mp4", "gs://matches", "a.mp4", id="gcs"),
        pytest.param("abfss://matches@aibvideos.dfs.core.windows.net/a.mp4",
                     "wasbs://matches@aibvideos.blob.core.windows.net", "a.mp4", id="azure"),
    ],
)  # fmt: skip
def test_lineage_names_the_object_never_a_signed_url(path: str, namespace: str, name: str) -> None:
    pytest.importorskip("airflow.providers.openlineage")
    from airflow_provider_aiontheball.openlineage import video_source_dataset

    dataset = video_source_dataset(path)

    assert dataset is not None
    assert (dataset.namespace, dataset.name) == (namespace, name)


# -- S3: moto's server on loopback -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    """moto's S3 server on a free loopback port with the 11-minute match at s3://matches/season-2025/ajax-psv.mp4."""
    if not (installed("moto.server") and installed("boto3")):
        pytest.skip("moto[server] is not installed here")
    from aib_harness.media import s3_server

    with s3_server() as server:
        client = server.client()
        client.create_bucket(Bucket=BUCKET)
        client.upload_file(str(match_file()), BUCKET, KEY)
        yield server.endpoint


@pytest.fixture
def aws_conn(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """``aws_default`` pointing at moto (its connection as users give it in an env var)."""
    extra = {"endpoint_url": s3_endpoint, "region_name": "us-east-1"}
    conn = {"conn_type": "aws", "login": "testing", "password": "testing-secret-key", "extra": extra}
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", json.dumps(conn))
    return s3_endpoint


@pytest.fixture
def checked_conn(simulator: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """``aiontheball_default`` with the pre-flight checks on (they run on the presigned URL)."""
    monkeypatch.setenv(CONN_ENV, connection_json(simulator.base_url, preflight=True, **FAST_RETRY_EXTRA))
    return simulator


@NEEDS_S3
def test_an_s3_path_is_presigned_with_its_connection_and_the_url_reads_the_object(aws_conn: str) -> None:
    from airflow_provider_aiontheball.preflight import check_video_url

    source = sources.parse_source(f"s3://{BUCKET}/{KEY}")
    assert source is not None
    url = sources.presign(source, "aws_default", DEFAULT_PRESIGN_EXPIRES_IN)

    assert url.startswith(f"{aws_conn}/{BUCKET}/{KEY}?")
    query = dict(parse_qsl(urlsplit(url).query))
    assert query["X-Amz-Algorithm"] == "AWS4-HMAC-SHA256"
    assert query["X-Amz-Expires"] == str(DEFAULT_PRESIGN_EXPIRES_IN)
    assert query["X-Amz-Credential"].startswith("testing/")
    body = requests.get(url, timeout=30).content
    assert hashlib.sha256(body).digest() == hashlib.sha256(match_file().read_bytes()).digest()
    measured = check_video_url(url)  # what the operator runs before its POST
    assert (measured.container, measured.fps, measured.status) == ("MP4", 25, 206)
    assert measured.duration_seconds == pytest.approx(660, abs=1)
    assert measured.expires_at is not None
    assert measured.expires_at - dt.datetime.now(dt.UTC) > dt.timedelta(hours=23)


@NEEDS_S3
def test_the_create_operator_posts_the_presigned_url_after_checking_it(aws_conn: str, checked_conn: Any) -> None:
    context = task_context()
    task = create(f"s3://{BUCKET}/{KEY}")

    task.execute(context)

    (url,) = posted_urls(checked_conn)
    assert url.startswith(f"{aws_conn}/{BUCKET}/{KEY}?X-Amz-")
    measured = context["ti"].xcoms[XCOM_PREFLIGHT]
    assert (measured["container"], measured["fps"]) == ("MP4", 25)
    assert measured["url"] == f"{aws_conn}/{BUCKET}/{KEY}?***"
    assert task.video_file_url == f"s3://{BUCKET}/{KEY}", "the rendered field stays the object path"
    if installed("airflow.providers.openlineage"):
        (source,) = task.get_openlineage_facets_on_complete(None).inputs
        assert (source.namespace, source.name) == (f"s3://{BUCKET}", KEY)


@NEEDS_S3
def test_a_retry_that_signs_again_reattaches_to_the_same_video(aws_conn: str, aiontheball_conn: Any) -> None:
    store = RecordingStateStore()
    first = create(f"s3://{BUCKET}/{KEY}", presign_expires_in=86_400).execute(durable_context(store, try_number=1))
    # Another expiry: a signature that differs for sure, without waiting for the clock to move on.
    second = create(f"s3://{BUCKET}/{KEY}", presign_expires_in=86_401).execute(durable_context(store, try_number=2))

    # The record's fingerprint is of the object path: had it been of the signed URL, the second try would have
    # taken its inputs for changed ones and created a second video.
    assert second["id"] == first["id"]
    assert len(posted_urls(aiontheball_conn)) == 1
    assert "X-Amz" not in json.dumps(store.values)
    source = sources.parse_source(f"s3://{BUCKET}/{KEY}")
    assert source is not None
    assert sources.presign(source, "aws_default", 86_400) != sources.presign(source, "aws_default", 86_401)


LEAK_DAG = """
import datetime as dt

try:
    from airflow.sdk import DAG
except ImportError:  # Airflow 2
    from airflow import DAG

from airflow_provider_aiontheball.operators.video import AIOnTheBallCreateVideoOperator

with DAG("{dag_id}", schedule=None, start_date=dt.datetime(2025, 1, 1), catchup=False,
         params={{"path": "{path}"}}) as dag:
    AIOnTheBallCreateVideoOperator(
        task_id="create_video", video_file_url="{{{{ params.path }}}}", title="Ajax vs PSV",
        wait_for_available=True, deferrable=True, poll_interval=0.2, min_poll_interval=0.05,
    )
"""


@NEEDS_S3
@pytest.mark.simulator(echo_submitted_fields=True)  # the worst case: a server that echoes the URL back
def test_the_signed_query_never_reaches_logs_xcom_or_rendered_fields(
    airflow_db: None, aws_conn: str, checked_conn: Any, all_logs: Any
) -> None:
    dag_id = "presigned_object_leak_probe"
    dag = write_dag(LEAK_DAG.format(dag_id=dag_id, path=f"s3://{BUCKET}/{KEY}"), dag_id)

    dag_run = dag.test()

    assert set(states(dag_run).values()) == {"success"}
    (url,) = posted_urls(checked_conn)
    query = parse_qs(urlsplit(url).query)
    secrets = [urlsplit(url).query, query["X-Amz-Signature"][0], query["X-Amz-Credential"][0]]
    stored = stored_text(dag_id)
    logged = "\n".join(all_logs.messages) + all_logs.caplog.text
    for secret in secrets:
        assert secret not in logged, "the signed query in the task or trigger logs"
        assert secret not in stored, "the signed query in rendered fields, XCom or trigger rows"
    assert "X-Amz-Signature" not in logged + stored
    assert f"s3://{BUCKET}/{KEY}" in stored, "the rendered field is the object path"
    assert "Pre-flight checks passed" in logged, "the checks ran on the presigned URL"


@NEEDS_S3
def test_the_object_storage_example_ingests_from_s3(airflow_db: None, aws_conn: str, checked_conn: Any) -> None:
    dag = load_dag_file(EXAMPLE_DAGS / "example_aiontheball_object_storage.py")

    dag_run = dag.test(run_conf={"video_path": f"s3://{BUCKET}/{KEY}"})

    assert states(dag_run) == {("create_video", -1): "success"}
    (url,) = posted_urls(checked_conn)
    assert url.startswith(f"{aws_conn}/{BUCKET}/{KEY}?X-Amz-")
    measured = xcom_value(dag_run, "create_video", "preflight")
    assert (measured["container"], measured["fps"]) == ("MP4", 25)


# -- Azure: Azurite on loopback -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Azurite's blob service on a free loopback port, in memory, with the match uploaded; its connection string."""
    if not AZURITE.exists():
        pytest.skip("Azurite is not installed: make azurite")
    if not installed("azure.storage.blob"):
        pytest.skip("azure-storage-blob is not installed here")
    from azure.storage.blob import BlobServiceClient

    port = free_port()
    # No telemetry: Azurite would otherwise send usage data to Azure (nothing here leaves the machine).
    process = subprocess.Popen(
        [str(AZURITE), "--blobHost", "127.0.0.1", "--blobPort", str(port), "--inMemoryPersistence",
         "--skipApiVersionCheck", "--loose", "--silent", "--disableTelemetry", "--extentMemoryLimit", "256"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path_factory.mktemp("azurite"),
    )  # fmt: skip
    watchdog = threading.Timer(60, process.kill)  # a server that never says it listens fails the fixture
    watchdog.start()
    try:
        seen = []
        for line in process.stdout:  # type: ignore[union-attr]
            seen.append(line)
            if "successfully listen" in line:  # "successfully listens on http://127.0.0.1:N"
                break
        else:
            pytest.fail("Azurite did not start:\n" + "".join(seen[-20:]))
        watchdog.cancel()
        threading.Thread(target=process.stdout.read, daemon=True).start()  # type: ignore[union-attr]
        conn_str = (
            f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_KEY};"
            f"BlobEndpoint=http://127.0.0.1:{port}/{AZURITE_ACCOUNT};"
        )
        service = BlobServiceClient.from_connection_string(conn_str)
        service.create_container(BUCKET)
        with match_file().open("rb") as data:
            service.get_blob_client(BUCKET, KEY).upload_blob(data)
        yield conn_str
    finally:
        watchdog.cancel()
        process.terminate()
        process.wait(timeout=30)


@needs("azure.storage.blob", "av")
def test_a_sas_from_the_account_key_is_accepted_and_a_tampered_one_refused(azurite: str) -> None:
    from azure.storage.blob import BlobServiceClient

    from airflow_provider_aiontheball.preflight import check_video_url

    service = BlobServiceClient.from_connection_string(azurite)
    url = sources.blob_sas_url(service, BUCKET, KEY, DEFAULT_PRESIGN_EXPIRES_IN)

    query = parse_qs(urlsplit(url).query)
    assert query["sp"] == ["r"], "read only"
    assert query["sr"] == ["b"], "this blob only"
    first = requests.get(url, headers={"Range": "bytes=0-1023"}, timeout=30)
    assert first.status_code == 206
    assert first.content == match_file().read_bytes()[:1024]
    tampered = url.replace("sig=", "sig=A", 1)
    assert requests.get(tampered, timeout=30).status_code == 403
    assert requests.get(url.split("?")[0], timeout=30).status_code in (401, 403, 404), "private without the SAS"
    measured = check_video_url(url)
    assert (measured.container, measured.fps, measured.status) == ("MP4", 25, 206)
    assert measured.expires_at is not None
    assert measured.expires_at - dt.datetime.now(dt.UTC) > dt.timedelta(hours=23)


@needs("azure.storage.blob")
def test_an_azure_connection_that_cannot_make_a_sas_is_named(azurite: str) -> None:
    from azure.storage.blob import BlobServiceClient

    service = BlobServiceClient.from_connection_string(azurite)
    with pytest.raises(AIOnTheBallSourceAccessError, match="in account 'aibvideos', connection 'wasb_default' reaches"):
        sources.blob_sas_url(service, BUCKET, KEY, 3600 * 24, account="aibvideos")
    anonymous = BlobServiceClient(service.url)
    with pytest.raises(AIOnTheBallSourceAccessError, match="no credentials, which cannot make a new SAS"):
        sources.blob_sas_url(anonymous, BUCKET, KEY, 3600 * 24)


@NEEDS_WASB
def test_the_create_operator_presigns_an_abfs_path_through_the_wasb_connection(
    azurite: str, checked_conn: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_WASB_DEFAULT", json.dumps({"conn_type": "wasb", "extra": {"connection_string": azurite}})
    )
    context = task_context()

    create(f"abfs://{BUCKET}/{KEY}").execute(context)

    (url,) = posted_urls(checked_conn)
    blob_url = azurite.split("BlobEndpoint=")[1].rstrip(";") + f"/{BUCKET}/{KEY}"
    assert url.startswith(f"{blob_url}?")
    assert "sig=" in url
    assert requests.get(url, headers={"Range": "bytes=0-15"}, timeout=30).status_code == 206
    measured = context["ti"].xcoms[XCOM_PREFLIGHT]
    assert (measured["container"], measured["fps"]) == ("MP4", 25)


# -- GCS: a V4 signature made with a generated service-account key ---------------------------------------------------


@pytest.fixture(scope="module")
def service_account() -> tuple[Any, dict[str, str]]:
    """A fresh RSA key and the service-account JSON that holds it (never sent anywhere: signing is local)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    info = {
        "type": "service_account",
        "project_id": "aib-tests",
        "private_key_id": "0123456789abcdef0123456789abcdef01234567",
        "private_key": pem,
        "client_email": "video-signer@aib-tests.iam.gserviceaccount.com",
        "client_id": "100000000000000000001",
        "token_uri": "https://oauth2.googleapis.com/token",
    }
    return key.public_key(), info


def assert_valid_v4_signature(url: str, public_key: Any, expires_in: int) -> None:
    """The URL's form, and its signature checked against the string Google's V4 scheme signs."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path) == ("https", "storage.googleapis.com", f"/{BUCKET}/{KEY}")
    query = dict(parse_qsl(parts.query))
    assert query["X-Goog-Algorithm"] == "GOOG4-RSA-SHA256"
    email, _, scope = query["X-Goog-Credential"].partition("/")
    assert email == "video-signer@aib-tests.iam.gserviceaccount.com"
    assert scope.endswith("/auto/storage/goog4_request")
    assert query["X-Goog-Expires"] == str(expires_in)
    assert query["X-Goog-SignedHeaders"] == "host"
    signed_at = dt.datetime.strptime(query["X-Goog-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)
    assert abs(dt.datetime.now(dt.UTC) - signed_at) < dt.timedelta(minutes=5)
    canonical_query, _, signature = parts.query.rpartition("&X-Goog-Signature=")
    assert len(signature) == 512, "an RSA-2048 signature, hex"
    canonical_request = "\n".join(
        ["GET", parts.path, canonical_query, "host:storage.googleapis.com\n", "host", "UNSIGNED-PAYLOAD"]
    )
    string_to_sign = "\n".join(
        ["GOOG4-RSA-SHA256", query["X-Goog-Date"], scope, hashlib.sha256(canonical_request.encode()).hexdigest()]
    )
    public_key.verify(bytes.fromhex(signature), string_to_sign.encode(), padding.PKCS1v15(), hashes.SHA256())


@needs("google.cloud.storage", "google.oauth2")
def test_a_gcs_path_gets_a_v4_url_signed_by_the_service_account(service_account: tuple[Any, dict[str, str]]) -> None:
    from google.cloud import storage
    from google.oauth2 import service_account as sa

    public_key, info = service_account
    client = storage.Client(project="aib-tests", credentials=sa.Credentials.from_service_account_info(info))

    url = sources.gcs_signed_url(client, BUCKET, KEY, DEFAULT_PRESIGN_EXPIRES_IN)

    assert_valid_v4_signature(url, public_key, DEFAULT_PRESIGN_EXPIRES_IN)
    from airflow_provider_aiontheball.preflight import presigned_expiry

    expires_at = presigned_expiry(url)  # what the checks before upload read from it
    assert expires_at is not None
    assert expires_at - dt.datetime.now(dt.UTC) > dt.timedelta(hours=23)


@needs("google.cloud.storage", "google.oauth2")
def test_gcs_credentials_that_cannot_sign_say_so() -> None:
    from google.cloud import storage
    from google.oauth2.credentials import Credentials

    client = storage.Client(project="aib-tests", credentials=Credentials(token="a-user-token"))

    with pytest.raises(AIOnTheBallSourceAccessError, match="cannot sign a URL: use a service-account key"):
        sources.gcs_signed_url(client, BUCKET, KEY, DEFAULT_PRESIGN_EXPIRES_IN)


@needs("airflow.providers.google")
def test_a_gcs_path_is_signed_through_the_google_connection(
    service_account: tuple[Any, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    public_key, info = service_account
    extra = {"keyfile_dict": json.dumps(info), "project": "aib-tests"}
    monkeypatch.setenv(
        "AIRFLOW_CONN_GOOGLE_CLOUD_DEFAULT", json.dumps({"conn_type": "google_cloud_platform", "extra": extra})
    )
    source = sources.parse_source(f"gs://{BUCKET}/{KEY}")
    assert source is not None

    url = sources.presign(source, "google_cloud_default", DEFAULT_PRESIGN_EXPIRES_IN)

    assert_valid_v4_signature(url, public_key, DEFAULT_PRESIGN_EXPIRES_IN)
