"""Local result files: written under a temporary name, then moved into place durably."""

from __future__ import annotations

import os
from pathlib import Path


def replace_durably(partial: Path, target: Path) -> None:
    """Move ``partial`` onto ``target`` so that after a crash or power loss ``target`` is either the old
    file or the whole new one: the data reaches the disk before the rename (``fsync``), and the rename
    before this returns (``fsync`` of the directory). A bare rename may be persisted before the data, and
    a crash then leaves a complete-looking name over an empty or partial file."""
    with partial.open("rb") as handle:
        os.fsync(handle.fileno())
    partial.replace(target)
    try:
        directory = os.open(target.parent, os.O_RDONLY)
    except OSError:  # a filesystem that cannot open directories (rare): the rename is done, only not forced
        return
    try:
        os.fsync(directory)
    except OSError:
        pass
    finally:
        os.close(directory)
