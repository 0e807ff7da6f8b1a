"""Server-side sessions for the editorial console. No Flask in here.

One small file per session, `<store folder>/console-sessions/<sha256 of the session id>.json`,
written atomically: every gunicorn worker sees a session the moment sign-in answers, a lookup
reads one file whatever the number of sessions, and nothing ever rewrites another session's file
(so no lock is needed). Only the hash of the id is on disk: a copy of the folder lets no one in.
The id is 256 random bits, so a plain SHA-256 is the right hash (as for API keys).
"""
from __future__ import annotations

import datetime
import hashlib
import os
import re
import secrets
from dataclasses import asdict, dataclass
from pathlib import Path

import orjson

from api.store.files import atomic_write
from api.store.storage import StoreCorrupt, read_json_file

LIFETIME = datetime.timedelta(hours=8)
PRUNE_BATCH = 50
_SESSION_ID = re.compile(r"[A-Za-z0-9_-]{43}")  # token_urlsafe(32)


@dataclass(frozen=True)
class Session:
    key_id: str  # the API key signed in with: revoking it ends the session
    name: str
    role: str
    csrf: str
    expires_at: str  # ISO 8601 UTC

    def expired(self, now=None):
        now = now or datetime.datetime.now(datetime.UTC)
        return datetime.datetime.fromisoformat(self.expires_at.replace("Z", "+00:00")) <= now


def _utc(moment):
    return moment.astimezone(datetime.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class SessionStore:
    def __init__(self, folder, lifetime=LIFETIME):
        self.folder = Path(folder)
        self.lifetime = lifetime

    def _path(self, session_id):
        return self.folder / f"{hashlib.sha256(session_id.encode('ascii')).hexdigest()}.json"

    def create(self, key) -> tuple[str, Session]:
        """A new session for an authenticated ApiKey: (the id for the cookie, the session)."""
        session_id = secrets.token_urlsafe(32)
        expires = datetime.datetime.now(datetime.UTC) + self.lifetime
        session = Session(key.id, key.name, key.role, secrets.token_urlsafe(32), _utc(expires))
        atomic_write(self._path(session_id), orjson.dumps(asdict(session)))
        self.prune()
        return session_id, session

    def prune(self, limit=PRUNE_BATCH):
        """Remove up to `limit` sessions past their lifetime (a session file is written once, so its
        mtime is its start). Bounded work per sign-in: abandoned sessions go away a few at a time."""
        cutoff = datetime.datetime.now(datetime.UTC).timestamp() - self.lifetime.total_seconds()
        try:
            entries = os.scandir(self.folder)
        except FileNotFoundError:
            return
        with entries:
            for _, entry in zip(range(limit), entries):
                try:
                    if entry.name.endswith(".json") and entry.stat().st_mtime < cutoff:
                        self._remove(Path(entry.path))
                except FileNotFoundError:
                    continue

    def get(self, session_id) -> Session | None:
        """The live session with this id; None for unknown, malformed or expired ids."""
        if not isinstance(session_id, str) or not _SESSION_ID.fullmatch(session_id):
            return None
        path = self._path(session_id)
        try:
            data = read_json_file(path)
        except StoreCorrupt:
            return None  # a torn or foreign file is no session; signing in again makes a new one
        if data is None:
            return None
        try:
            session = Session(**{name: data[name] for name in Session.__dataclass_fields__})
            if not session.expired():
                return session
        except (KeyError, TypeError, ValueError, AttributeError):
            pass
        self._remove(path)
        return None

    def delete(self, session_id):
        if isinstance(session_id, str) and _SESSION_ID.fullmatch(session_id):
            self._remove(self._path(session_id))

    @staticmethod
    def _remove(path):
        try:
            path.unlink()
        except FileNotFoundError:
            pass
