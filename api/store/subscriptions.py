"""Webhook subscriptions, their delivery cursors and their delivery logs, on files. No Flask here.

Layout under `<store folder>/webhooks/`:

    subscriptions/<id>.json   what an admin asked for: URL, events, types, secret (never changes)
    state/<id>.json           where delivery stands: cursor, failures, queued replays
    log/<id>.jsonl            one line per delivery attempt, newest last (rotated to .1.jsonl)
    locks/<id>.lease          held by whichever process is delivering to <id>
    locks/<id>.state          held for each read-modify-write of state/<id>.json

The outbox itself is the store's change sequence: a subscription only keeps a cursor into it,
so a commit writes nothing here and a crash between commit and send loses nothing.

The lease is an flock, which the kernel drops when its process dies: a worker killed mid-delivery
never leaves a subscription stuck, and two processes never deliver to one subscription at once.
"""
from __future__ import annotations

import os
import secrets
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import orjson
from filelock import FileLock, Timeout

from api.store.clock import now_iso
from api.store.files import atomic_write
from api.store.storage import StoreCorrupt, read_json_file

LOG_ROTATE_BYTES = 1024 * 1024


class SubscriptionNotFound(LookupError):
    pass


@dataclass(frozen=True)
class Subscription:
    id: str  # "wh_" + 8 hex digits
    url: str
    events: tuple
    types: tuple  # empty: every document type
    secret: str  # "whsec_" + base64, as Standard Webhooks has it; needed in clear to sign
    created_at: str
    description: str = ""

    def wants(self, event, type_name):
        return event in self.events and (not self.types or type_name in self.types)


@dataclass
class DeliveryState:
    cursor: int  # every change up to here was delivered (or is not for this subscription)
    status: str = "active"  # active | failing (gave up retrying; undelivered changes are kept)
    failures: int = 0  # consecutive failed attempts of the change at the cursor
    first_failure_at: float | None = None  # epoch seconds
    next_attempt_at: float = 0.0  # epoch seconds
    last_error: str | None = None
    replays: list = field(default_factory=list)  # change seqs queued for one more send each
    generation: int = 0  # bumped by a replay from a cursor: a running delivery must stop and re-read


def new_secret():
    import base64

    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


class Subscriptions:
    def __init__(self, store_root):
        self.root = Path(store_root) / "webhooks"
        self.definitions = self.root / "subscriptions"
        self.states = self.root / "state"
        self.logs = self.root / "log"
        self.locks = self.root / "locks"
        for folder in (self.definitions, self.states, self.logs, self.locks):
            folder.mkdir(parents=True, exist_ok=True)
        self._lock = FileLock(str(self.root / "subscriptions.lock"))

    # --- definitions -------------------------------------------------------------

    def _definition_path(self, sub_id):
        if not (isinstance(sub_id, str) and sub_id.startswith("wh_") and sub_id[3:].isalnum() and len(sub_id) <= 64):
            raise SubscriptionNotFound(f"No webhook subscription {sub_id!r}.")
        return self.definitions / f"{sub_id}.json"

    def stamp(self):
        """Changes whenever a subscription is added or removed: a cheap check for cached lists."""
        stat = self.definitions.stat()
        return stat.st_mtime_ns, stat.st_ino

    def create(self, url, events, types, description="", start_cursor=0):
        """A new subscription that starts after change `start_cursor`. Returns it with its secret."""
        with self._lock:
            sub_id = f"wh_{secrets.token_hex(4)}"
            while self._definition_path(sub_id).exists():
                sub_id = f"wh_{secrets.token_hex(4)}"
            subscription = Subscription(sub_id, url, tuple(events), tuple(types), new_secret(), now_iso(), description)
            # State first: a subscription is never visible without its cursor.
            self._write_state(sub_id, DeliveryState(cursor=start_cursor))
            atomic_write(self._definition_path(sub_id), orjson.dumps(asdict(subscription)))
        return subscription

    def get(self, sub_id):
        path = self._definition_path(sub_id)
        data = read_json_file(path)
        if data is None:
            raise SubscriptionNotFound(f"No webhook subscription {sub_id!r}.")
        try:
            return Subscription(**{**data, "events": tuple(data["events"]), "types": tuple(data["types"])})
        except (KeyError, TypeError) as error:
            raise StoreCorrupt(path, f"not a subscription: {error}") from None

    def list(self, on_corrupt=None):
        """Every subscription, oldest first. `on_corrupt(error)`: skip a corrupt file instead of raising."""
        found = []
        for path in self.definitions.glob("wh_*.json"):
            try:
                found.append(self.get(path.stem))
            except SubscriptionNotFound:
                continue  # removed while we listed
            except StoreCorrupt as error:
                if on_corrupt is None:
                    raise
                on_corrupt(error)
        return sorted(found, key=lambda s: (s.created_at, s.id))

    def remove(self, sub_id):
        subscription = self.get(sub_id)
        with self._lock:
            self._definition_path(sub_id).unlink(missing_ok=True)
            with self._state_lock(sub_id):
                (self.states / f"{sub_id}.json").unlink(missing_ok=True)
            for path in (self.logs / f"{sub_id}.jsonl", self.logs / f"{sub_id}.1.jsonl"):
                path.unlink(missing_ok=True)
        return subscription

    def exists(self, sub_id):
        return self._definition_path(sub_id).exists()

    # --- delivery state ------------------------------------------------------------

    def _state_lock(self, sub_id):
        return FileLock(str(self.locks / f"{sub_id}.state"))

    def _write_state(self, sub_id, state):
        atomic_write(self.states / f"{sub_id}.json", orjson.dumps(asdict(state)))

    def state_stamp(self, sub_id):
        """Changes whenever the subscription's state is written (one stat); None once it is gone."""
        try:
            stat = (self.states / f"{sub_id}.json").stat()
        except FileNotFoundError:
            return None
        return stat.st_ino, stat.st_mtime_ns, stat.st_size

    def state(self, sub_id):
        path = self.states / f"{sub_id}.json"
        data = read_json_file(path)
        if data is None:
            raise SubscriptionNotFound(f"No webhook subscription {sub_id!r}.")
        try:
            return DeliveryState(**data)
        except TypeError as error:
            raise StoreCorrupt(path, f"not a delivery state: {error}") from None

    def update_state(self, sub_id, change):
        """Read, `change(state)` (which may raise to refuse), write: atomically, under the state lock.
        Returns the new state."""
        with self._state_lock(sub_id):
            state = self.state(sub_id)
            change(state)
            self._write_state(sub_id, state)
            return state

    @contextmanager
    def lease(self, sub_id):
        """Yields True if this process now delivers to `sub_id`, False if another one already does."""
        lock = FileLock(str(self.locks / f"{sub_id}.lease"), thread_local=False)
        try:
            lock.acquire(timeout=0)
        except Timeout:
            yield False
            return
        try:
            yield True
        finally:
            lock.release()

    # --- delivery log --------------------------------------------------------------

    def append_log(self, sub_id, entry):
        """One attempt, as one line appended with a single write. The lease holder is the only writer."""
        path = self.logs / f"{sub_id}.jsonl"
        try:
            if path.stat().st_size > LOG_ROTATE_BYTES:
                os.replace(path, self.logs / f"{sub_id}.1.jsonl")
        except FileNotFoundError:
            pass
        descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(descriptor, orjson.dumps(entry) + b"\n")
        finally:
            os.close(descriptor)

    def log(self, sub_id, limit=100):
        """The latest `limit` attempts, newest first."""
        self.get(sub_id)
        entries = []
        for path in (self.logs / f"{sub_id}.jsonl", self.logs / f"{sub_id}.1.jsonl"):
            try:
                lines = path.read_bytes().splitlines()
            except FileNotFoundError:
                continue
            for line in reversed(lines):
                try:
                    entries.append(orjson.loads(line))
                except orjson.JSONDecodeError:
                    continue  # a line cut short by a crash: the attempt is retried anyway
                if len(entries) >= limit:
                    return entries
        return entries
