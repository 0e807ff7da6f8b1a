"""Caching and compression for every response: Cache-Control, Vary, content encoding, and the
entity tags of compressed variants.

Each content encoding is a different representation, so it gets its own strong tag: the base tag
with `-gzip` or `-br` appended (as Apache httpd does). A client may send any of them back:
`representation_tag` maps a variant's tag to its base, so If-Match and If-None-Match compare the
content, whatever encoding the client happened to read it in.
"""
import gzip
from collections import OrderedDict

import orjson
from flask import Response, request

from api.services.delivery import body_tag
from api.web.safejson import script_safe

try:
    import brotli
except ImportError:  # brotli is optional: gzip alone is a complete answer
    brotli = None

PUBLIC_CACHE = "public, max-age=60, stale-while-revalidate=600"
ENCODINGS = ("br", "gzip")
MIN_COMPRESS = 512  # below this, headers outweigh the saving
PRIVATE_PREFIXES = ("/v1/editorial", "/v1/preview")


def representation_tag(tag):
    """The base tag of a (possibly compressed) variant's tag."""
    for encoding in ENCODINGS:
        if tag.endswith(f"-{encoding}"):
            return tag[:-len(encoding) - 1]
    return tag


def matching_tag(etags, current, weak=False):
    """The first tag in an If-Match/If-None-Match header that names `current` (in any encoding),
    or None. If-None-Match compares weakly (RFC 9110 §13.1.2): W/ tags count too."""
    for tag in sorted(tag for tag in etags.as_set(include_weak=weak) if tag):  # werkzeug parses `""` as None
        if representation_tag(tag) == current:
            return tag
    return None


def send_json(value=None, *, body=None, language=None, status=200, mimetype="application/json"):
    """A JSON response from a value or from bytes already serialized (the read model's bodies),
    safe inside a <script> tag (api/web/safejson.py)."""
    response = Response(script_safe(orjson.dumps(value) if body is None else body), status=status, mimetype=mimetype)
    if language:
        response.headers["Content-Language"] = language
    return response


def add_vary(response, *names):
    current = response.headers.get("Vary")
    if not current:
        response.headers["Vary"] = ", ".join(names)
        return
    present = {value.strip().lower() for value in current.split(",")}
    missing = [name for name in names if name.lower() not in present]
    if missing:
        response.headers["Vary"] = ", ".join([current, *missing])


class _LRU(OrderedDict):
    def __init__(self, size):
        super().__init__()
        self.size = size

    def remember(self, key, make):
        if key in self:
            self.move_to_end(key)
            return self[key]
        value = self[key] = make()
        if len(self) > self.size:
            self.popitem(last=False)
        return value


_compressed = _LRU(2048)


def encoding_for(request_):
    if not request_.environ.get("HTTP_ACCEPT_ENCODING"):
        return None  # the common case for API clients that do not ask; skip parsing
    accepted = request_.accept_encodings
    if brotli is not None and accepted["br"]:
        return "br"
    if accepted["gzip"]:
        return "gzip"
    return None


def finish_response(response):
    """after_request: caching headers on public reads, then compression (cached by ETag), then
    If-None-Match: * answered."""
    response = _cache_and_compress(response)
    if response.status_code == 200 and "ETag" in response.headers and request.method in ("GET", "HEAD") \
            and request.environ.get("HTTP_IF_NONE_MATCH", "").strip() == "*":
        # RFC 9110 §13.1.2: "*" matches any current representation. Answered here, once the tag
        # the 200 would carry is known (compression gives each encoding its own).
        not_modified = Response(status=304)
        for name in ("ETag", "Cache-Control", "Vary", "Content-Location"):
            if name in response.headers:
                not_modified.headers[name] = response.headers[name]
        response.close()  # a streamed body (the bundle's file) is never sent
        return not_modified
    return response


def _cache_and_compress(response):
    path = request.path
    public = request.method in ("GET", "HEAD") and path.startswith("/v1/") and not path.startswith(PRIVATE_PREFIXES)
    if public and response.status_code in (200, 304):
        response.headers["Cache-Control"] = PUBLIC_CACHE
        add_vary(response, "Accept-Encoding", "Accept-Language")
    elif path.startswith(PRIVATE_PREFIXES):
        response.headers["Cache-Control"] = "private, no-store"
    if response.status_code not in (200, 201) or response.direct_passthrough or "Content-Encoding" in response.headers:
        return response
    if not (response.mimetype or "").endswith(("json", "javascript", "css", "html", "yaml")):
        return response
    if not public:
        add_vary(response, "Accept-Encoding")
    encoding = encoding_for(request)
    if encoding is None or (response.content_length or 0) < MIN_COMPRESS:
        return response
    body = response.get_data()
    etag, _ = response.get_etag()

    def compress():
        return brotli.compress(body, quality=5) if encoding == "br" else gzip.compress(body, compresslevel=6, mtime=0)

    # Only public bodies are cached by tag: their tag is the hash of their bytes. An editorial
    # document's tag names its revision, while its body also carries the workflow state.
    data = _compressed.remember((etag, encoding), compress) if etag and public else compress()
    response.set_data(data)
    response.headers["Content-Encoding"] = encoding
    if etag:
        response.set_etag(f"{etag}-{encoding}")
    return response


def tagged(view):
    """`view`'s answer with a tag of its bytes, and 304 to a client that holds them: the API
    description is 300 KB that generators and tools fetch again and again."""
    response = view()
    tag = body_tag(response.get_data())
    held = matching_tag(request.if_none_match, tag, weak=True)
    if held:  # as every 304 here, repeating the tag the client sent: the one its 200 carried
        response = Response(status=304)
    response.set_etag(held or tag)
    response.headers["Cache-Control"] = "no-cache"  # changes with a deployment: always ask, cheaply
    return response
