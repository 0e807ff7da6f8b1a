"""A per-worker cache of whole public responses, in front of Flask.

A public read's answer is a function of the published set and of a few request headers, and it
says so: `Cache-Control: public` lets any shared cache on the way replay it for a minute. This
cache replays it too, but only while this worker's published set is unchanged (the read model's
`version`), so a publish is never hidden behind it. A hit skips routing, arguments, rendering and
every Flask hook; it still refreshes the read model, counts against the caller's rate limit and is
recorded in the metrics, as the Flask path does. Anything else (writes, editorial and preview
routes, requests with credentials, cookies or unusual preconditions) goes straight to Flask.

A hit costs about a tenth of a rendered read, which is what keeps delivery near bare Flask
(bench/delivery.py reports both, with the cache on and off).
"""
import threading
import time
from collections import OrderedDict

from api.web import metrics
from api.web.caching import PRIVATE_PREFIXES, PUBLIC_CACHE

DEFAULT_BYTES = 16 * 1024 * 1024
MAX_ENTRY_BYTES = 256 * 1024  # larger bodies (big list pages, the bundle) are rendered each time
# Set by a view whose answer lags the published set it was asked under (the previous bundle while
# the new one is built): replaying it for this version would hide the newer answer.
NOT_OF_VERSION = "medkb.not_of_version"

# A cached answer may differ only by these request headers: the key holds each one's raw value.
KEY_HEADERS = ("HTTP_ACCEPT", "HTTP_ACCEPT_ENCODING", "HTTP_ACCEPT_LANGUAGE", "HTTP_ORIGIN", "HTTP_IF_NONE_MATCH")
# Requests carrying any of these are answered by Flask every time: they are rare on public reads,
# and each could make the answer depend on more than the key says.
BYPASS_HEADERS = ("HTTP_AUTHORIZATION", "HTTP_COOKIE", "HTTP_IF_MATCH", "HTTP_IF_MODIFIED_SINCE",
                  "HTTP_IF_UNMODIFIED_SINCE", "HTTP_RANGE", "HTTP_IF_RANGE")


class _Entry:
    __slots__ = ("status", "headers", "body", "route")

    def __init__(self, status, headers, body, route):
        self.status, self.headers, self.body, self.route = status, headers, body, route


class PublicResponseCache:
    """WSGI middleware over the app's services (its read model decides what is current) and its
    rate limits (None when off). `max_bytes` 0 turns it off."""

    def __init__(self, wsgi_app, services, limits=None, max_bytes=DEFAULT_BYTES):
        self.wsgi_app, self.services, self.model = wsgi_app, services, services.model
        self.limits, self.max_bytes = limits, max_bytes
        self._entries = OrderedDict()
        self._bytes = 0
        self._version = None
        self._lock = threading.Lock()

    def __len__(self):
        return len(self._entries)

    def __call__(self, environ, start_response):
        key = self._key(environ) if self.max_bytes else None
        if key is None:
            return self.wsgi_app(environ, start_response)
        started = time.perf_counter()
        self.model.refresh()
        version = self.model.version
        with self._lock:
            if version != self._version:
                self._entries.clear()
                self._bytes, self._version = 0, version
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
        if entry is None:
            return self._render(key, version, environ, start_response)
        if self.limits is not None:
            refused = self.limits.hit_public(environ.get("REMOTE_ADDR"))
            if refused is not None:
                # Counted already: Flask answers the 429, with every header a refusal carries.
                environ["medkb.refused"] = refused
                return self.wsgi_app(environ, start_response)
        start_response(entry.status, list(entry.headers))
        metrics.measure_lag(self.services)
        metrics.record(entry.route, environ["REQUEST_METHOD"], int(entry.status[:3]), time.perf_counter() - started)
        return [entry.body]

    @staticmethod
    def _key(environ):
        method, path = environ["REQUEST_METHOD"], environ.get("PATH_INFO", "")
        if method not in ("GET", "HEAD") or not path.startswith("/v1/") or path.startswith(PRIVATE_PREFIXES):
            return None
        if any(name in environ for name in BYPASS_HEADERS):
            return None
        return (method, path, environ.get("QUERY_STRING", ""), *(environ.get(name) for name in KEY_HEADERS))

    def _render(self, key, version, environ, start_response):
        """Flask answers; a public 200 or 304 rendered from an unchanged published set is kept."""
        captured = {}

        def capture(status, headers, exc_info=None):
            captured["status"], captured["headers"] = status, headers
            return start_response(status, headers, exc_info)

        iterable = self.wsgi_app(environ, capture)
        declared = next((value for name, value in captured.get("headers", ()) if name.lower() == "content-length"), 0)
        if int(declared) > MAX_ENTRY_BYTES:
            return iterable  # too large to keep (a streamed file, the bundle): passed on as it comes
        try:
            body = b"".join(iterable)
        finally:
            if hasattr(iterable, "close"):
                iterable.close()
        status, headers = captured["status"], captured["headers"]
        if (status[:3] in ("200", "304") and len(body) <= MAX_ENTRY_BYTES and self.model.version == version
                and not environ.get(NOT_OF_VERSION)
                and ("Cache-Control", PUBLIC_CACHE) in headers
                and not any(name.lower() == "set-cookie" for name, _ in headers)):
            self._remember(key, version, _Entry(status, tuple(headers), body, environ.get("medkb.route", "unmatched")))
        return [body]

    def _remember(self, key, version, entry):
        size = len(entry.body) + 512  # the headers and the key, roughly
        with self._lock:
            if version != self._version or key in self._entries:
                return
            self._entries[key] = entry
            self._bytes += size
            while self._bytes > self.max_bytes and self._entries:
                _, evicted = self._entries.popitem(last=False)
                self._bytes -= len(evicted.body) + 512
