"""Webhooks: tell subscribers about publication changes, signed per Standard Webhooks. No Flask here.

The outbox is the store's change sequence. Each subscription keeps a cursor into it (see
api/store/subscriptions.py), moved past a change only once the receiver answered 2xx: delivery is
at least once, one change at a time per subscription, so in order per document. A failing
receiver is retried with exponential backoff and jitter for `give_up` seconds (a day by default),
then the subscription is marked failing and keeps its cursor, so nothing undelivered is dropped.

The scheduler calls `tick()` about once a second; it only looks at small state files and hands
subscriptions with work due to a thread pool, so one slow receiver delays no one else.

Targets are checked at subscribe time and again at every send (DNS can change in between): only
http(s) URLs whose every address is public, unless MEDKB_WEBHOOK_ALLOW names it. The connection
goes to the address that was checked, redirects are never followed, and both connect and read
time out.
"""
from __future__ import annotations

import datetime
import http.client
import ipaddress
import logging
import random
import secrets
import socket
import threading
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from urllib.parse import urlsplit

import orjson
from standardwebhooks import Webhook

from schemas import DOCUMENT_TYPES
from schemas.webhooks import EVENTS

from api.services.errors import Invalid
from api.store.storage import StoreCorrupt
from api.store.store import PUBLICATION_KINDS
from api.store.subscriptions import SubscriptionNotFound

__all__ = ["EVENTS", "InvalidSubscription", "Settings", "SubscriptionNotFound", "UnsafeTarget", "Webhooks"]

MAX_URL_LENGTH = 2000
BATCH = 200  # changes read per step of a delivery run
MESSAGE_CACHE = 1000
RUN_BUDGET = 10.0  # seconds one run may deliver before it yields its pool thread to others
SCHEDULER = "scheduler"  # the actor `Editorial.publish_due` writes as

log = logging.getLogger("medkb.webhooks")


class InvalidSubscription(Invalid):
    """A subscription request the service refuses; `errors` maps each field to its messages."""

    def __init__(self, errors):
        super().__init__("; ".join(f"{field}: {' '.join(messages)}" for field, messages in errors.items()), errors)


class UnsafeTarget(ValueError):
    pass


class _Rewound(Exception):
    """A replay moved the cursor while a run was delivering: the run stops and the next one re-reads."""


def _number_setting(environ, name, default, minimum, maximum=365 * 86400, unit="a number of seconds", whole=False):
    """A MEDKB_WEBHOOK_* number, within bounds: an infinite timeout overflows the clock, and NaN
    compares false with everything."""
    raw = environ.get(name)
    if raw in (None, ""):
        return default
    try:
        value = float(raw)
    except ValueError:
        value = None
    if value is None or not minimum <= value <= maximum or (whole and value != int(value)):
        raise ValueError(f"{name}={raw!r}: must be {unit} from {minimum:g} to {maximum:g}")
    return int(value) if whole else value


def parse_allow(raw):
    """MEDKB_WEBHOOK_ALLOW: comma-separated addresses or networks (127.0.0.1, 10.0.0.0/8, ::1)."""
    networks = []
    for item in (raw or "").split(","):
        if item.strip():
            try:
                networks.append(ipaddress.ip_network(item.strip(), strict=False))
            except ValueError:
                raise ValueError(f"MEDKB_WEBHOOK_ALLOW: {item.strip()!r} is not an IP address or network") from None
    return tuple(networks)


@dataclass(frozen=True)
class Settings:
    allow: tuple = ()  # networks that may be targets although they are not public
    backoff: float = 5.0  # the first retry comes after about this many seconds, then doubling
    backoff_max: float = 3600.0
    give_up: float = 86400.0  # after this long failing, the subscription is marked failing
    connect_timeout: float = 5.0
    read_timeout: float = 10.0
    concurrency: int = 8

    @classmethod
    def from_env(cls, environ):
        """From MEDKB_WEBHOOK_* variables; ValueError naming the variable when one is malformed."""
        return cls(allow=parse_allow(environ.get("MEDKB_WEBHOOK_ALLOW")),
                   backoff=_number_setting(environ, "MEDKB_WEBHOOK_BACKOFF", cls.backoff, 0.01),
                   backoff_max=_number_setting(environ, "MEDKB_WEBHOOK_BACKOFF_MAX", cls.backoff_max, 0.01),
                   give_up=_number_setting(environ, "MEDKB_WEBHOOK_GIVE_UP", cls.give_up, 0),
                   connect_timeout=_number_setting(environ, "MEDKB_WEBHOOK_CONNECT_TIMEOUT", cls.connect_timeout, 0.1),
                   read_timeout=_number_setting(environ, "MEDKB_WEBHOOK_READ_TIMEOUT", cls.read_timeout, 0.1),
                   concurrency=_number_setting(environ, "MEDKB_WEBHOOK_CONCURRENCY", cls.concurrency, 1, 256,
                                               unit="a whole number", whole=True))


# --- safe targets ----------------------------------------------------------------


def _allowed(address, allow):
    if any(address in network for network in allow):
        return True
    return address.is_global and not (address.is_multicast or address.is_reserved or address.is_unspecified)


def resolve_target(url, allow):
    """(host, port, tls, path, the addresses to connect to) for `url`, or UnsafeTarget saying why not.
    Every address the name resolves to must be allowed: one private answer refuses the whole URL."""
    if not isinstance(url, str) or len(url) > MAX_URL_LENGTH:
        raise UnsafeTarget(f"must be a URL of at most {MAX_URL_LENGTH} characters")
    if not url.isprintable() or " " in url:  # urlsplit drops tabs and newlines, so it would check another URL
        raise UnsafeTarget("must not contain spaces or control characters (percent-encode them)")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise UnsafeTarget(f"is not a valid URL ({error})") from None
    if parts.scheme not in ("http", "https"):
        raise UnsafeTarget("must be an http or https URL")
    if not parts.hostname:
        raise UnsafeTarget("has no host name")
    if parts.username is not None or parts.password is not None:
        raise UnsafeTarget("must not carry credentials; the signature authenticates the sender")
    if parts.fragment:
        raise UnsafeTarget("must not have a #fragment")
    tls = parts.scheme == "https"
    port = port or (443 if tls else 80)
    try:
        answers = socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as error:
        raise UnsafeTarget(f"host {parts.hostname} does not resolve ({error})") from None
    addresses = []
    for _, _, _, _, sockaddr in answers:
        address = ipaddress.ip_address(sockaddr[0].split("%", 1)[0])
        if address.version == 6 and address.ipv4_mapped:
            address = address.ipv4_mapped
        if not _allowed(address, allow):
            raise UnsafeTarget(f"host {parts.hostname} resolves to {address}, a loopback, private, link-local or "
                               "reserved address; only MEDKB_WEBHOOK_ALLOW can permit it")
        if str(address) not in addresses:
            addresses.append(str(address))
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return parts.hostname, port, tls, path, addresses


@dataclass(frozen=True)
class Attempt:
    status: int | None
    latency_ms: float
    error: str | None

    @property
    def ok(self):
        return self.status is not None and 200 <= self.status < 300


def post(url, body: bytes, headers, settings):
    """POST `body` to `url`, connecting only to an address checked now. Never follows redirects."""
    started = time.perf_counter()

    def done(status=None, error=None):
        return Attempt(status, round((time.perf_counter() - started) * 1000, 1), error)

    try:
        host, port, tls, path, addresses = resolve_target(url, settings.allow)
    except UnsafeTarget as error:
        return done(error=f"refused: {error}")

    def connect_to_checked_address(address, timeout=None, source_address=None):
        error = None
        for candidate in addresses:  # as socket.create_connection does: the first that answers
            try:
                sock = socket.create_connection((candidate, port), timeout=settings.connect_timeout)
            except OSError as refused:
                error = refused
                continue
            sock.settimeout(settings.read_timeout)
            return sock
        raise error

    connection = (http.client.HTTPSConnection if tls else http.client.HTTPConnection)(
        host, port, timeout=settings.connect_timeout)
    # http.client connects through this hook (HTTPS too, before wrapping TLS for `host`), so the
    # socket goes to the address we checked, not to whatever a second DNS answer says.
    connection._create_connection = connect_to_checked_address
    try:
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        response.read(65536)
        status = response.status
    except (OSError, http.client.HTTPException) as error:
        return done(error=f"{type(error).__name__}: {error}" if str(error) else type(error).__name__)
    finally:
        connection.close()
    if 300 <= status < 400:
        return done(status, f"redirect to {response.getheader('Location')!r} not followed")
    return done(status, None if 200 <= status < 300 else f"HTTP {status}")


# --- messages --------------------------------------------------------------------


def event_of(change):
    # Editorial.publish_due's actor and message together: an API key may be named "scheduler" too.
    if change.kind == "publish" and change.actor == SCHEDULER and change.message.startswith("scheduled publish"):
        return "scheduled_publish"
    return change.kind


def delivery_id(seq):
    return f"msg_{seq}"


def seq_of_delivery(delivery):
    prefix, _, number = (delivery or "").partition("_")
    if prefix != "msg" or not (number.isascii() and number.isdigit()) or len(number) > 12:  # not "msg_²"
        raise ValueError(f"{delivery!r} is not a delivery id (msg_ and a change number)")
    return int(number)


class Webhooks:
    def __init__(self, store, settings=None, on_attempt=None):
        """on_attempt(attempt) is told of every delivery attempt (the server counts them in its metrics)."""
        self.store = store
        self.settings = settings or Settings()
        self.on_attempt = on_attempt
        self.subscriptions = store.webhook_subscriptions()
        self._pool = None
        self._running = {}  # subscription id -> Future of its delivery run in this process
        self._listed = (None, [])  # (stamp of the subscriptions folder, subscriptions)
        self._states = {}  # subscription id -> (stamp of its state file, DeliveryState)
        self._messages = OrderedDict()  # change seq -> message body, the most recent MESSAGE_CACHE
        self._messages_lock = threading.Lock()

    # --- managing subscriptions ------------------------------------------------------

    def subscribe(self, url, events=None, types=None, description=""):
        """A new subscription, receiving changes committed from now on. Returns it with its secret,
        which is shown only this once."""
        errors = {}
        events = list(dict.fromkeys(events or EVENTS))
        types = list(dict.fromkeys(types or ()))
        try:
            resolve_target(url, self.settings.allow)
        except UnsafeTarget as error:
            errors["url"] = [f"The URL {error}."]
        unknown = [e for e in events if e not in EVENTS]
        if unknown:
            errors["events"] = [f"Unknown event(s) {', '.join(map(str, unknown))}; use {', '.join(EVENTS)}."]
        unknown = [t for t in types if t not in DOCUMENT_TYPES]
        if unknown:
            errors["types"] = [f"Unknown type(s) {', '.join(map(str, unknown))}; use {', '.join(DOCUMENT_TYPES)}."]
        if len(description or "") > 200:
            errors["description"] = ["At most 200 characters."]
        elif not (description or "").isprintable():
            errors["description"] = ["One line of text, without control characters."]
        if errors:
            raise InvalidSubscription(errors)
        return self.subscriptions.create(url, events, types, description or "", start_cursor=self.store.last_seq())

    def list(self):
        return [(sub, self.subscriptions.state(sub.id)) for sub in self.subscriptions.list()]

    def get(self, sub_id):
        return self.subscriptions.get(sub_id), self.subscriptions.state(sub_id)

    def remove(self, sub_id):
        return self.subscriptions.remove(sub_id)

    def log(self, sub_id, limit=100):
        return self.subscriptions.log(sub_id, limit)

    def replay_from(self, sub_id, since=None):
        """Deliver again every wanted change after cursor `since` (default: where it stopped), and
        make a failing subscription active again. Returns the new state."""
        self.subscriptions.get(sub_id)
        last = self.store.last_seq()
        if since is not None and not 0 <= since <= last:
            raise InvalidSubscription({"since": [f"Cursor {since} is not in this store (0 to {last})."]})

        def rewind(state):
            state.cursor = state.cursor if since is None else since
            state.status, state.failures, state.first_failure_at = "active", 0, None
            state.next_attempt_at, state.last_error = 0.0, None
            state.generation += 1

        return self.subscriptions.update_state(sub_id, rewind)

    def replay_delivery(self, sub_id, delivery):
        """Queue one more send of a delivery (by its webhook-id), whatever the cursor says."""
        subscription = self.subscriptions.get(sub_id)
        try:
            seq = seq_of_delivery(delivery)
        except ValueError as error:
            raise InvalidSubscription({"delivery_id": [str(error)]}) from None
        change = self._change(seq)
        if change is None or change.kind not in PUBLICATION_KINDS \
                or not subscription.wants(event_of(change), change.type):
            raise SubscriptionNotFound(f"{delivery} is not a delivery of subscription {sub_id}.")

        def queue(state):
            if seq not in state.replays:
                state.replays.append(seq)

        return self.subscriptions.update_state(sub_id, queue)

    def send_test(self, sub_id):
        """Send a signed `test` message now and wait for the answer."""
        subscription = self.subscriptions.get(sub_id)
        message_id = f"msg_test_{secrets.token_hex(6)}"
        at = datetime.datetime.now(datetime.UTC)
        body = orjson.dumps({"type": "test", "timestamp": at.isoformat().replace("+00:00", "Z"),
                             "data": {"subscription": sub_id}})
        attempt = self._send(subscription, message_id, body)
        self._log(subscription, attempt, message_id, event="test", attempt_number=1)
        return attempt

    # --- messages ----------------------------------------------------------------------

    def _change(self, seq):
        if not 0 < seq <= self.store.last_seq():
            return None
        changes = self.store.changes(seq - 1, limit=1)
        return changes[0] if changes else None

    def entry(self, change):
        """The /v1/feed entry for `change`, the document as this change published it."""
        if change.kind != "publish":
            return {"seq": change.seq, "op": "delete", "type": change.type, "id": change.id,
                    "reason": "deleted" if change.kind == "delete" else "unpublished"}
        published = self.store.published(change.type, change.id)
        if published is None or published.revision != change.revision:
            # Superseded since: send what this change published, so the receiver sees each step in order.
            published = self.store.revision(change.type, change.id, change.revision)
        return {"seq": change.seq, "op": "upsert", "type": change.type, "id": change.id,
                "revision": change.revision, "document": published.content}

    def message(self, change):
        """The body sent for `change`. It never changes (revisions are immutable), so the many
        subscriptions that get the same change share one copy instead of one document read each."""
        with self._messages_lock:
            body = self._messages.get(change.seq)
        if body is None:
            body = orjson.dumps({"type": event_of(change), "timestamp": change.at, "cursor": str(change.seq),
                                 "data": self.entry(change)})
            with self._messages_lock:
                self._messages[change.seq] = body
                while len(self._messages) > MESSAGE_CACHE:
                    self._messages.popitem(last=False)
        return body

    def _send(self, subscription, message_id, body):
        at = datetime.datetime.now(datetime.UTC)
        signature = Webhook(subscription.secret).sign(message_id, at, body.decode())
        headers = {"Content-Type": "application/json", "User-Agent": "medkb-webhooks/1",
                   "webhook-id": message_id, "webhook-timestamp": str(int(at.timestamp())),
                   "webhook-signature": signature}
        return post(subscription.url, body, headers, self.settings)

    def _log(self, subscription, attempt, message_id, *, event, attempt_number, change=None, replay=False):
        entry = {"at": datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                 "delivery_id": message_id, "event": event, "attempt": attempt_number, "status": attempt.status,
                 "latency_ms": attempt.latency_ms, "error": attempt.error, "replay": replay}
        if change is not None:
            entry.update(seq=change.seq, type=change.type, id=change.id)
        self.subscriptions.append_log(subscription.id, entry)
        if self.on_attempt is not None:
            self.on_attempt(attempt)
        if not attempt.ok:
            log.warning("webhook %s %s to %s: %s", subscription.id, message_id, subscription.url, attempt.error)

    # --- delivering ----------------------------------------------------------------------

    def _delivery_for(self, subscription, change, attempt_number, replay=False):
        message_id = delivery_id(change.seq)
        attempt = self._send(subscription, message_id, self.message(change))
        self._log(subscription, attempt, message_id, event=event_of(change), attempt_number=attempt_number,
                  change=change, replay=replay)
        return attempt

    def deliver(self, sub_id):
        """One delivery run for a subscription: queued replays, then the changes after its cursor,
        in order, until it is caught up, a send fails or the run's time is up. Does nothing if
        another thread or process is delivering to it (they hold its lease)."""
        with self.subscriptions.lease(sub_id) as mine:
            if not mine:
                return
            try:
                subscription = self.subscriptions.get(sub_id)
                self._replay_queued(subscription)
                self._deliver_changes(subscription)
            except (SubscriptionNotFound, _Rewound):
                return  # removed, or rewound by a replay: the next tick starts afresh

    def _replay_queued(self, subscription):
        for seq in list(self.subscriptions.state(subscription.id).replays):
            change = self._change(seq)
            if change is not None:
                self._delivery_for(subscription, change, attempt_number=1, replay=True)

            def done(state, seq=seq):
                state.replays = [queued for queued in state.replays if queued != seq]

            self.subscriptions.update_state(subscription.id, done)

    def _deliver_changes(self, subscription):
        state = self.subscriptions.state(subscription.id)
        if state.status != "active" or state.next_attempt_at > time.time():
            return
        generation, cursor, started = state.generation, state.cursor, time.monotonic()

        def advance(to, **changes):
            def apply(current):
                if current.generation != generation:
                    raise _Rewound()
                current.cursor = to
                for name, value in changes.items():
                    setattr(current, name, value)
            return self.subscriptions.update_state(subscription.id, apply)

        while time.monotonic() - started < RUN_BUDGET:
            batch = self.store.changes(cursor, limit=BATCH)
            if not batch:
                return
            for change in batch:
                event = event_of(change)
                if change.kind not in PUBLICATION_KINDS or not subscription.wants(event, change.type):
                    continue
                if not self.subscriptions.exists(subscription.id):
                    return
                attempt = self._delivery_for(subscription, change, state.failures + 1)
                if not attempt.ok:
                    self._failed(subscription, generation, attempt)
                    return
                state = advance(change.seq, failures=0, first_failure_at=None, next_attempt_at=0.0, last_error=None)
            cursor = batch[-1].seq
            if state.cursor < cursor:  # past changes that are not for this subscription
                state = advance(cursor)

    def _failed(self, subscription, generation, attempt):
        settings = self.settings

        def backoff(state):
            if state.generation != generation:
                raise _Rewound()
            now = time.time()
            state.failures += 1
            state.first_failure_at = state.first_failure_at or now
            state.last_error = attempt.error
            if now - state.first_failure_at >= settings.give_up:
                state.status, state.next_attempt_at = "failing", 0.0
                log.error("webhook %s: failing since %s, delivery stopped at cursor %s; replay to resume",
                          subscription.id, state.first_failure_at, state.cursor)
                return
            delay = min(settings.backoff_max, settings.backoff * 2 ** min(state.failures - 1, 30))
            # "Equal jitter": never sooner than half the delay, so receivers coming back are not stampeded.
            state.next_attempt_at = now + delay / 2 + random.uniform(0, delay / 2)

        self.subscriptions.update_state(subscription.id, backoff)

    # --- the scheduler's side --------------------------------------------------------------

    def _current_subscriptions(self):
        stamp = self.subscriptions.stamp()
        if self._listed[0] != stamp:
            self._listed = (stamp, self.subscriptions.list(on_corrupt=self._skip_corrupt))
        return self._listed[1]

    @staticmethod
    def _skip_corrupt(error):
        # One damaged file must not stop deliveries to every other subscription, nor the scheduler.
        log.error("webhooks: skipping a subscription: %s", error)

    def _state(self, sub_id):
        """A subscription's delivery state, re-read only when its file changed (one stat)."""
        stamp = self.subscriptions.state_stamp(sub_id)
        if stamp is None:
            return None
        cached = self._states.get(sub_id)
        if cached is None or cached[0] != stamp:
            try:
                cached = self._states[sub_id] = (stamp, self.subscriptions.state(sub_id))
            except SubscriptionNotFound:
                return None
            except StoreCorrupt as error:
                self._skip_corrupt(error)
                return None
        return cached[1]

    def due(self, now=None):
        """Subscriptions with work to do now: queued replays, or changes after their cursor."""
        now = time.time() if now is None else now
        last = None
        due = []
        for subscription in self._current_subscriptions():
            state = self._state(subscription.id)
            if state is None:
                continue
            if state.replays:
                due.append(subscription.id)
                continue
            if state.status != "active" or state.next_attempt_at > now:
                continue
            if last is None:
                last = self.store.last_seq()
            if state.cursor < last:
                due.append(subscription.id)
        return due

    def tick(self):
        """Start a delivery run for each subscription with work due. Never waits for a send, never
        raises: the same loop publishes scheduled documents, which must go on whatever happens here."""
        try:
            return self._start_due()
        except Exception:
            log.exception("webhooks: scheduler tick failed; trying again next tick")
            return 0

    def _start_due(self):
        due = self.due()
        if not due:
            return 0
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=self.settings.concurrency, thread_name_prefix="webhooks")
        started = 0
        for sub_id in due:
            running = self._running.get(sub_id)
            if running is not None and not running.done():
                continue
            self._running[sub_id] = self._pool.submit(self._run, sub_id)
            started += 1
        return started

    def _run(self, sub_id):
        try:
            self.deliver(sub_id)
        except Exception:  # a pool thread must not die silently: say so, the next tick retries
            log.exception("webhook %s: delivery run failed", sub_id)

    def close(self):
        if self._pool is not None:
            self._pool.shutdown(wait=True)
