"""API keys: who may call the write API, and in which role. No Flask in here.

Keys live in `<store folder>/keys.json`, a TinyDB file (table "keys") written through
AtomicJSONStorage, so a reader sees the old file or the new one, never a torn one. Every
read-modify-write holds `<store folder>/keys.lock`, because several gunicorn workers and the
CLI share the file; plain reads (authenticate, list) need no lock.

Only sha256(secret) is stored. Secrets are "mkb_" + 256 random bits, so a plain SHA-256 is
the right hash: a slow KDF (bcrypt, scrypt, argon2) only helps when the secret itself is
guessable, like a password, and 2**256 candidates cannot be searched whatever the hash costs.

Keys are never deleted, only revoked: the audit log names them.
"""
from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
from dataclasses import dataclass, replace
from pathlib import Path

from filelock import FileLock
from tinydb import TinyDB

from api.store.clock import now_iso
from api.store.storage import AtomicJSONStorage, StoreCorrupt

__all__ = ["ROLES", "ApiKey", "KeyStore", "KeyStoreError", "StoreCorrupt", "SECRET_PREFIX"]

ROLES = ("author", "reviewer", "publisher", "admin")
SECRET_PREFIX = "mkb_"
MAX_SECRET_LENGTH = 200
MAX_NAME_LENGTH = 64
TABLE = "keys"

_NAME = re.compile(r"[A-Za-z0-9._@-]+")
_KEY_ID = re.compile(r"k_[0-9a-f]{8}")
_HASH = re.compile(r"[0-9a-f]{64}")
_PREFIX = 8  # characters of the stored hash used to index it


class KeyStoreError(ValueError):
    """A request the key store refuses: bad role, bad or duplicate name, unknown key to revoke."""


@dataclass(frozen=True)
class ApiKey:
    id: str  # short public id, e.g. "k_3f9a1c2b": random, not derived from the secret
    name: str  # who it belongs to; unique among keys that are not revoked
    role: str
    created_at: str  # ISO 8601 UTC, e.g. "2026-04-02T10:00:00.123456Z"
    revoked_at: str | None  # ISO 8601 UTC, None while the key is active


def _secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("ascii")).hexdigest()


def check_role(role):
    if not isinstance(role, str) or role not in ROLES:
        raise KeyStoreError(f"unknown role {role!r}: the role must be one of {', '.join(ROLES)}")
    return role


def check_name(name):
    if not isinstance(name, str):
        raise KeyStoreError(f"the key name must be a string, not {type(name).__name__}")
    if not name:
        raise KeyStoreError("the key name is empty: give the name of the person or system the key is for")
    if len(name) > MAX_NAME_LENGTH:
        raise KeyStoreError(f"the key name is {len(name)} characters long: at most {MAX_NAME_LENGTH} are allowed")
    if not _NAME.fullmatch(name):
        raise KeyStoreError(f"the key name {name!r} has characters that are not allowed: "
                            "use only letters A-Z and a-z, digits, '.', '_', '-' and '@'")
    if _KEY_ID.fullmatch(name):
        # revoke() accepts a name or an id: a name shaped like an id would make that ambiguous.
        raise KeyStoreError(f"the key name {name!r} looks like a key id (k_ and 8 hex digits): choose another name")
    return name


class _Snapshot:
    """The keys as parsed from one version of keys.json, with the active ones indexed by hash."""

    def __init__(self, stamp, keys, index):
        self.stamp = stamp
        self.keys = keys  # [(doc_id, ApiKey)] ordered by created_at
        self.index = index  # hash[:_PREFIX] -> [(hash bytes, ApiKey)], active keys only

    @classmethod
    def parse(cls, path, data, stamp=None):
        table = (data or {}).get(TABLE, {})
        rows, index = [], {}
        for doc_id, row in table.items():
            key, digest = _parse_row(path, doc_id, row)
            rows.append((int(doc_id), key))
            if key.revoked_at is None:
                index.setdefault(digest[:_PREFIX], []).append((digest.encode("ascii"), key))
        rows.sort(key=lambda item: (item[1].created_at, item[0]))
        return cls(stamp, rows, index)


def _parse_row(path, doc_id, row):
    """(ApiKey, stored hash) from one stored row; StoreCorrupt if it is not one this module wrote."""
    def corrupt(reason):
        return StoreCorrupt(path, f"key record {doc_id}: {reason}")

    if not str(doc_id).isdigit():
        raise corrupt("record ids must be integers")
    if not isinstance(row, dict):
        raise corrupt("not an object")
    for field in ("id", "name", "role", "created_at", "secret_sha256"):
        if not isinstance(row.get(field), str):
            raise corrupt(f"{field!r} is missing or not a string")
    if "revoked_at" not in row or not isinstance(row["revoked_at"], (str, type(None))):
        raise corrupt("'revoked_at' is missing or neither a string nor null")
    if not _HASH.fullmatch(row["secret_sha256"]):
        raise corrupt("'secret_sha256' is not 64 lowercase hex digits")
    if row["role"] not in ROLES:
        raise corrupt(f"unknown role {row['role']!r}")
    key = ApiKey(id=row["id"], name=row["name"], role=row["role"], created_at=row["created_at"],
                 revoked_at=row["revoked_at"])
    return key, row["secret_sha256"]


_EMPTY = _Snapshot(None, [], {})


class KeyStore:
    def __init__(self, folder):
        """The key store in `folder` (created if needed). Nothing is read yet: a corrupt
        keys.json raises StoreCorrupt from the first operation, and is never overwritten."""
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.path = self.folder / "keys.json"
        self._lock = FileLock(str(self.folder / "keys.lock"))
        self._cache = _EMPTY

    # --- reading ---------------------------------------------------------------

    def _read(self):
        """The current keys, parsed fresh. Raises StoreCorrupt for a bad file."""
        return _Snapshot.parse(self.path, AtomicJSONStorage(self.path).read())

    def _current(self):
        """The current keys, re-parsed only when keys.json changed since the last call.

        Writers replace the file by rename, so every write gives it a new inode; and every
        write makes it longer (a new record, or null becoming a timestamp), so the
        (inode, mtime_ns, size) stamp cannot repeat. The stat is taken before the read: a
        write landing in between is cached under the older stamp and re-read next call."""
        try:
            stat = os.stat(self.path)
        except FileNotFoundError:
            return _EMPTY
        stamp = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        cached = self._cache
        if cached.stamp == stamp:
            return cached
        data = AtomicJSONStorage(self.path).read()
        if data is None:  # removed between the stat and the read
            return _EMPTY
        snapshot = _Snapshot.parse(self.path, data, stamp)
        self._cache = snapshot
        return snapshot

    def list(self) -> list[ApiKey]:
        """Every key, revoked ones included, oldest first."""
        return [key for _, key in self._current().keys]

    def authenticate(self, secret: str) -> ApiKey | None:
        """The active key whose secret this is; None for unknown, revoked, malformed or empty."""
        if (not isinstance(secret, str) or len(secret) > MAX_SECRET_LENGTH
                or not secret.startswith(SECRET_PREFIX) or not secret.isascii()):
            return None
        candidate = _secret_hash(secret)
        # The prefix lookup only reveals whether sha256(candidate) shares 8 hex digits with a
        # stored hash, which tells a guesser nothing about any secret; the match itself is
        # decided by compare_digest.
        found = None
        for digest, key in self._current().index.get(candidate[:_PREFIX], ()):
            if hmac.compare_digest(digest, candidate.encode("ascii")):
                found = key
        return found

    # --- writing ---------------------------------------------------------------

    def _open(self):
        return TinyDB(self.path, storage=AtomicJSONStorage)

    def create(self, role: str, name: str) -> tuple[ApiKey, str]:
        """A new key for `name` in `role`, and its secret. The secret is not stored and
        cannot be shown again."""
        check_role(role)
        check_name(name)
        with self._lock:
            current = self._read()
            keys = [key for _, key in current.keys]
            if any(key.name == name and key.revoked_at is None for key in keys):
                raise KeyStoreError(f"an active key named {name!r} already exists: revoke it first, or choose another name")
            ids = {key.id for key in keys}
            key_id = f"k_{secrets.token_hex(4)}"
            while key_id in ids:
                key_id = f"k_{secrets.token_hex(4)}"
            secret = SECRET_PREFIX + secrets.token_urlsafe(32)
            key = ApiKey(id=key_id, name=name, role=role, created_at=now_iso(), revoked_at=None)
            with self._open() as db:
                db.table(TABLE).insert({"id": key.id, "name": key.name, "role": key.role,
                                        "created_at": key.created_at, "revoked_at": None,
                                        "secret_sha256": _secret_hash(secret)})
        return key, secret

    def revoke(self, name_or_id: str) -> ApiKey:
        """Revoke a key, given its id or the name of an active key. The key stays listed."""
        if not isinstance(name_or_id, str) or not name_or_id:
            raise KeyStoreError(f"no key {name_or_id!r} to revoke")
        with self._lock:
            current = self._read()
            by_id = [(doc_id, key) for doc_id, key in current.keys if key.id == name_or_id]
            by_name = [(doc_id, key) for doc_id, key in current.keys
                       if key.name == name_or_id and key.revoked_at is None]
            found = by_id or by_name
            if not found:
                raise KeyStoreError(f"no active key with the name or id {name_or_id!r} to revoke")
            doc_id, key = found[0]
            if key.revoked_at is not None:
                raise KeyStoreError(f"key {key.id} ({key.name}) was already revoked at {key.revoked_at}")
            revoked = replace(key, revoked_at=now_iso())
            with self._open() as db:
                db.table(TABLE).update({"revoked_at": revoked.revoked_at}, doc_ids=[doc_id])
        return revoked
