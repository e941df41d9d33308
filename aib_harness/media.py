"""Real match videos and a real S3 server on loopback, for ``make demo-object-storage`` and the tests.

The videos are encoded with PyAV (the provider's ``media`` extra), the S3 server is moto's (``moto[server]``,
from PyPI): both are imported when used, so importing this module costs nothing. Nothing here imports Airflow.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: Bump when a recipe below changes: the cached files are then made again.
RECIPES_VERSION = 1


@dataclass(frozen=True)
class Recipe:
    fmt: str
    width: int
    height: int
    fps: int
    seconds: int
    noise: bool = False
    options: dict[str, str] = field(default_factory=dict)


#: A match as the API wants it (MP4, 25 fps, at least 10 minutes) in tiny frames of noise (a realistic share of
#: index to media data), the index (``moov``) at the end: PyAV's default, and the harder case for a probe.
MATCH_RECIPE = Recipe("mp4", 64, 36, 25, 660, noise=True)


def make_video(path: Path, recipe: Recipe) -> None:
    """Encode ``recipe`` into ``path`` (MPEG-4 Part 2: built into every FFmpeg, fast), atomically."""
    import av

    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    with av.open(str(partial), "w", format=recipe.fmt, options=recipe.options) as container:
        stream = container.add_stream("mpeg4", rate=recipe.fps)
        stream.width, stream.height, stream.pix_fmt = recipe.width, recipe.height, "yuv420p"
        frames = []
        for _ in range(8):  # a few distinct frames, cycled: encoding cost without generating every frame
            frame = av.VideoFrame(recipe.width, recipe.height, "yuv420p")
            for plane in frame.planes:
                plane.update(os.urandom(plane.buffer_size) if recipe.noise else bytes(plane.buffer_size))
            frames.append(frame)
        for index in range(recipe.fps * recipe.seconds):
            frame = frames[index % len(frames)]
            frame.pts = index
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    partial.replace(path)  # two processes may make the same file: the last rename wins, both whole


def video_cache_dir() -> Path:
    """Where generated videos are kept between runs (named after PyAV's version and the recipes')."""
    import av

    directory = Path(tempfile.gettempdir()) / f"aib-preflight-videos-av{av.__version__}-r{RECIPES_VERSION}"
    directory.mkdir(exist_ok=True)
    return directory


def match_video() -> Path:
    """The 11-minute match file (:data:`MATCH_RECIPE`), made once per machine."""
    path = video_cache_dir() / "match-11min.mp4"
    if not path.exists():
        make_video(path, MATCH_RECIPE)
    return path


@dataclass
class S3Server:
    """moto's S3 server on loopback: its endpoint and the credentials it accepts (any: it checks none)."""

    endpoint: str
    region: str = "us-east-1"
    access_key: str = "demo-access-key"
    secret_key: str = "demo-secret-key"

    def client(self) -> Any:
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=self.region,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
        )

    def connection(self) -> dict[str, Any]:
        """An Airflow ``aws`` connection to this server, as JSON for ``AIRFLOW_CONN_<ID>``."""
        return {
            "conn_type": "aws",
            "login": self.access_key,
            "password": self.secret_key,
            "extra": {"endpoint_url": self.endpoint, "region_name": self.region},
        }


@contextmanager
def s3_server() -> Iterator[S3Server]:
    """Start moto's S3 server (``ThreadedMotoServer``) on a free loopback port; stop it on exit."""
    from moto.server import ThreadedMotoServer

    # moto's access log (werkzeug's) quotes every URL, signature and all: a storage server's own log, not ours.
    access_log = logging.getLogger("werkzeug")
    level = access_log.level
    access_log.setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        yield S3Server(f"http://127.0.0.1:{server.get_host_and_port()[1]}")
    finally:
        server.stop()
        access_log.setLevel(level)
