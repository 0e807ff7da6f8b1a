"""Durable file operations: a reader sees the old bytes or the new, never a torn file.

Every write the store makes goes through one of these functions, so a failure can be
injected at any stage of a commit (tests) and every OSError surfaces in one place.
"""
import contextlib
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
    with removed_on_failure(temporary):
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
        os.replace(temporary, path)
    if durable:
        fsync_directory(path.parent)


def append(path, data: bytes, durable=True):
    """Append `data` to `path` (created if missing) and make it durable. A failure part-way can
    leave a partial tail: the caller records the size beforehand and truncates back to it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    created = not path.exists()
    descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        _write_all(descriptor, data)
        if durable:
            os.fsync(descriptor)
    finally:
        os.close(descriptor)
    if durable and created:
        fsync_directory(path.parent)


def replace_as_lock_holder(path, data: bytes):
    """atomic_write for the store's writer, which holds the lock every writer of `path` takes,
    inside a batch that sync_filesystem makes durable: no two writers can want the temporary at
    once, so it has a fixed name (no random names), and nothing is fsynced here. The folder
    must exist. The name matches the `.*.tmp` that a rollback clears from a document folder."""
    folder, name = os.path.split(path)
    temporary = f"{folder}/.{name}.tmp"
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    with removed_on_failure(temporary):
        try:
            _write_all(descriptor, data)
        finally:
            os.close(descriptor)
        os.replace(temporary, path)


@contextlib.contextmanager
def removed_on_failure(temporary):
    """A failed write leaves no temporary file behind."""
    try:
        yield
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def write_new(path, data: bytes):
    """Create `path` in place, without a temporary or a rename: only for a file no reader opens
    before a later commit point names it (a new revision). A failure part-way leaves a partial
    file, which the rollback of that commit removes. Never over an existing file: a revision
    is written once (FileExistsError fails the commit instead)."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        _write_all(descriptor, data)
    finally:
        os.close(descriptor)


def make_folder(path):
    """Create a new document's folder (and its type's folder the first time)."""
    try:
        os.mkdir(path)
    except FileNotFoundError:
        os.makedirs(path, exist_ok=True)
    except FileExistsError:
        pass  # emptied by a rollback that could not remove it


def _write_all(descriptor, data):
    view = memoryview(data)
    while view:
        view = view[os.write(descriptor, view):]


def link_replace(source, target):
    """Make `target` another name for `source`'s current bytes. A hard link takes no data
    blocks, so keeping the previous version this way still works on a full disk."""
    folder, name = os.path.split(target)
    temporary = f"{folder}/.{name}.{os.getpid()}.tmp"
    try:
        os.link(source, temporary)
    except FileExistsError:  # left by a writer that died here
        os.unlink(temporary)
        os.link(source, temporary)
    os.replace(temporary, target)
    # rename() between two links to one file does nothing and succeeds (POSIX), leaving the
    # temporary name behind when `target` already was a link to `source`.
    try:
        os.unlink(temporary)
    except FileNotFoundError:
        pass


def sync_filesystem(path):
    """Make every write to the file system holding `path` durable at once (syncfs(2)): one call
    instead of an fsync per file and folder, for a batch of many small files."""
    descriptor = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        if _libc_syncfs is None or _libc_syncfs(descriptor) != 0:
            os.sync()
    finally:
        os.close(descriptor)


def _find_syncfs():
    try:
        import ctypes
        import ctypes.util

        return ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True).syncfs
    except (OSError, AttributeError):
        return None


_libc_syncfs = _find_syncfs()
