"""A TinyDB storage that never leaves a torn file and never overwrites a corrupt one."""
from pathlib import Path

import orjson
from tinydb.storages import Storage

from api.store.files import atomic_write


class StoreCorrupt(RuntimeError):
    """A store file cannot be parsed. The file is left exactly as found."""

    def __init__(self, path, reason):
        super().__init__(f"{path}: store file is corrupt ({reason}); refusing to open the store. "
                         f"The file was not modified: restore it from a backup, or move it aside.")
        self.path = Path(path)


def read_json_file(path):
    """The parsed contents of a store file, None when it does not exist, StoreCorrupt when unreadable."""
    try:
        with open(path, "rb") as handle:  # not Path(path).read_bytes(): this is every store read
            raw = handle.read()
    except FileNotFoundError:
        return None
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise StoreCorrupt(path, f"invalid JSON: {error}") from None
    if not isinstance(data, dict):
        raise StoreCorrupt(path, "not a JSON object")
    return data


class AtomicJSONStorage(Storage):
    """TinyDB's JSONStorage, made crash-safe: each write replaces the whole file atomically and
    durably (temp file, fsync, rename, fsync of the folder). Callers hold the store lock for
    every read-modify-write, because TinyDB itself has no locking."""

    def __init__(self, path, durable=True):
        self.path = Path(path)
        self.durable = durable

    def read(self):
        data = read_json_file(self.path)
        if data is not None:
            for name, table in data.items():
                if not isinstance(table, dict):
                    raise StoreCorrupt(self.path, f"table {name!r} is not an object")
        return data

    def write(self, data):
        atomic_write(self.path, orjson.dumps(data), durable=self.durable)

    def close(self):
        pass
