"""Rate limits (flask-limiter): per client address on public delivery, per API key on editorial
and preview routes; a 429 is problem+json with Retry-After.

`medkb serve` runs several worker processes, and a limit is only honest if they count together.
flask-limiter's `memory://` storage counts per process, and its shared storages (Redis, Memcached,
MongoDB) are network services. So the workers share one SQLite file (`medkb-sqlite://PATH`), in
the folder `medkb serve` makes for this run: every hit is one atomic upsert, and SQLite's locking
serializes the processes. Several API nodes need a shared service: set MEDKB_RATE_LIMIT_STORAGE
to a limits storage URI such as `redis://host:6379`.
"""
import hashlib
import math
import os
import sqlite3
import threading
import time

from flask import request
from limits.storage import Storage

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


def is_public():
    return request.path.startswith("/v1/") and not is_editorial()


def client_address():
    return request.remote_addr or "unknown"


def api_key_identity():
    """The caller's key, hashed (the limiter's storage never holds a secret); its address if it has none."""
    credentials = request.headers.get("Authorization")
    if not credentials:
        return f"address:{client_address()}"
    return "key:" + hashlib.sha256(credentials.encode()).hexdigest()[:32]


def setting(app, name, default):
    """A limit from the app's config, else the environment, else `default`; "off" turns it off."""
    value = app.config.get(name) or os.environ.get(name) or default
    return None if value.strip().lower() == "off" else value


def init_app(app):
    from flask_limiter import ApplicationLimit, Limiter

    # Tests build many apps and send many requests: limits are off there unless a test sets them.
    default_public, default_editorial = ("off", "off") if app.testing else (PUBLIC_DEFAULT, EDITORIAL_DEFAULT)
    limits = []
    public = setting(app, "MEDKB_RATE_LIMIT_PUBLIC", default_public)
    if public:
        limits.append(ApplicationLimit(public, key_function=client_address, scope="public",
                                       exempt_when=lambda: not is_public()))
    editorial = setting(app, "MEDKB_RATE_LIMIT_EDITORIAL", default_editorial)
    if editorial:
        limits.append(ApplicationLimit(editorial, key_function=api_key_identity, scope="editorial",
                                       exempt_when=lambda: not is_editorial()))
    limiter = Limiter(client_address, app=app, application_limits=limits, enabled=bool(limits),
                      storage_uri=app.config.get("MEDKB_RATE_LIMIT_STORAGE")
                      or os.environ.get("MEDKB_RATE_LIMIT_STORAGE") or "memory://",
                      key_prefix="medkb", swallow_errors=True)

    @app.after_request
    def retry_after(response):
        if response.status_code == 429 and limiter.current_limit is not None:
            response.headers["Retry-After"] = str(max(1, math.ceil(limiter.current_limit.window.reset_time - time.time())))
        return response

    return limiter
