"""Durable file replacement: a reader sees the old bytes or the new, never a torn file."""
import os
import tempfile
from pathlib import Path


def fsync_directory(path):
    # The rename is only durable once the folder entry itself is on disk.
    descriptor = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def atomic_write(path, data: bytes, durable=True):
    """Write to a temporary file beside `path`, fsync it, rename it over `path`, fsync the folder.

    durable=False keeps the atomic rename but skips the fsyncs: only for building throwaway
    stores (benchmark set-up), never for data anyone relies on."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except FileNotFoundError:
            pass
        raise
    if durable:
        fsync_directory(path.parent)
