"""Rate limits: per client address on public delivery, per API key on editorial and preview
routes; over the limit, 429 problem+json with Retry-After.

The counting is the `limits` library's fixed window, the engine flask-limiter is built on. We
started with flask-limiter itself: it re-resolves and re-parses its limits on every request, which
cost about 0.4 ms a read and alone took delivery from above to well below 0.8x a bare Flask app
(bench/delivery.py). Here the limits are parsed once and a request costs one counter update.

`medkb serve` runs several worker processes, and a limit is only honest if they count together.
In-memory counters count per process, and the shared storages `limits` offers (Redis, Memcached,
MongoDB) are network services. So the workers share one SQLite file (`medkb-sqlite://PATH`), in
the folder `medkb serve` makes for this run: every hit is one atomic upsert, and SQLite's locking
serializes the processes. Several API nodes need a shared service: set MEDKB_RATE_LIMIT_STORAGE
to a limits storage URI such as `redis://host:6379`.
"""
import hashlib
import logging
import math
import os
import sqlite3
import threading
import time

from flask import request
from flask_smorest import abort
from limits import parse_many
from limits.storage import Storage, storage_from_string
from limits.strategies import FixedWindowRateLimiter

log = logging.getLogger(__name__)  # also used outside a request: the response cache counts hits

PUBLIC_DEFAULT = "1200 per minute"
EDITORIAL_DEFAULT = "600 per minute"


class SQLiteStorage(Storage):
    """Fixed-window counters in one SQLite file, shared by every process that opens it."""

    STORAGE_SCHEME = ["medkb-sqlite"]
    PURGE_EVERY = 1000  # hits between two removals of expired windows

    def __init__(self, uri, wrap_exceptions=False, **options):
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)
        self.path = uri.split("://", 1)[1]
        self.local = threading.local()
        self.hits = 0
        self._db().execute("CREATE TABLE IF NOT EXISTS windows (key TEXT PRIMARY KEY, count INTEGER NOT NULL, "
                           "expires REAL NOT NULL) WITHOUT ROWID")

    @property
    def base_exceptions(self):
        return sqlite3.Error

    def _db(self):
        db = getattr(self.local, "db", None)
        if db is None:
            db = self.local.db = sqlite3.connect(self.path, timeout=5, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            # Counters need not survive a power cut; a durable write per request would cost far more.
            db.execute("PRAGMA synchronous=OFF")
        return db

    def incr(self, key, expiry, amount=1):
        now = time.time()
        self.hits += 1
        if self.hits % self.PURGE_EVERY == 0:
            self._db().execute("DELETE FROM windows WHERE expires <= ?", (now,))
        (count,) = self._db().execute(
            "INSERT INTO windows (key, count, expires) VALUES (:key, :amount, :expires) ON CONFLICT (key) DO UPDATE "
            "SET count = CASE WHEN expires <= :now THEN :amount ELSE count + :amount END, "
            "expires = CASE WHEN expires <= :now THEN :expires ELSE expires END RETURNING count",
            {"key": key, "amount": amount, "expires": now + expiry, "now": now}).fetchone()
        return count

    def get(self, key):
        row = self._db().execute("SELECT count FROM windows WHERE key = ? AND expires > ?", (key, time.time())).fetchone()
        return row[0] if row else 0

    def get_expiry(self, key):
        row = self._db().execute("SELECT expires FROM windows WHERE key = ?", (key,)).fetchone()
        return row[0] if row else time.time()

    def check(self):
        return self._db().execute("SELECT 1").fetchone() == (1,)

    def reset(self):
        return self._db().execute("DELETE FROM windows").rowcount

    def clear(self, key):
        self._db().execute("DELETE FROM windows WHERE key = ?", (key,))


def is_editorial():
    return request.path.startswith(("/v1/editorial", "/v1/preview"))


def api_key_identity():
    """The caller's key, hashed (the limiter's storage never holds a secret); its address if it has none."""
    credentials = request.headers.get("Authorization")
    if not credentials:
        return f"address:{request.remote_addr or 'unknown'}"
    return "key:" + hashlib.sha256(credentials.encode()).hexdigest()[:32]


def parse_limits(name, value):
    """`value` as rate limits ("off" means none); ValueError naming the setting if it is not."""
    if value.strip().lower() == "off":
        return []
    try:
        return parse_many(value)
    except ValueError:
        raise ValueError(f"{name}: {value!r} is not a rate limit such as '100 per minute' "
                         f"or '100 per minute; 2000 per hour', nor 'off'") from None


def setting(app, name, default):
    """Limits from the app's config, else the environment, else `default`."""
    return parse_limits(name, app.config.get(name) or os.environ.get(name) or default)


class Limits:
    """The configured limits over one counter storage: `hit_*` counts one request and returns None,
    or, when the caller is over a limit, that limit and the seconds until its window resets."""

    def __init__(self, public, editorial, storage_uri):
        self.public, self.editorial = public, editorial
        self.storage = storage_from_string(storage_uri)
        self.limiter = FixedWindowRateLimiter(self.storage)

    def hit_public(self, address):
        return self._hit(self.public, "public", address or "unknown")

    def hit_editorial(self, identity):
        return self._hit(self.editorial, "editorial", identity)

    def _hit(self, items, scope, identity):
        for item in items:
            try:
                allowed = self.limiter.hit(item, scope, identity)
            except self.storage.base_exceptions as error:
                # A limit that cannot be counted must not take the API down with it.
                log.error("rate limit not checked: %s", error)
                return None
            if not allowed:
                reset_at, _ = self.limiter.get_window_stats(item, scope, identity)
                return item, max(1, math.ceil(reset_at - time.time()))
        return None


def init_app(app):
    """Returns the app's Limits, or None when every limit is off."""
    # Tests build many apps and send many requests: limits are off there unless a test sets them.
    public = setting(app, "MEDKB_RATE_LIMIT_PUBLIC", "off" if app.testing else PUBLIC_DEFAULT)
    editorial = setting(app, "MEDKB_RATE_LIMIT_EDITORIAL", "off" if app.testing else EDITORIAL_DEFAULT)
    if not (public or editorial):
        return None
    limits = Limits(public, editorial, app.config.get("MEDKB_RATE_LIMIT_STORAGE")
                    or os.environ.get("MEDKB_RATE_LIMIT_STORAGE") or "memory://")

    def limit():
        if not request.path.startswith("/v1/"):
            return
        # The response cache counted this request already and found it over the limit.
        refused = request.environ.get("medkb.refused")
        if refused is None:
            refused = limits.hit_editorial(api_key_identity()) if is_editorial() else limits.hit_public(
                request.remote_addr)
        if refused is not None:
            item, retry_after = refused
            abort(429, message=f"Rate limit exceeded: {item}. Try again later.",
                  headers={"Retry-After": str(retry_after)})

    # Before the other hooks: a refused request should cost as little as possible.
    app.before_request_funcs.setdefault(None, []).insert(0, limit)
    return limits
