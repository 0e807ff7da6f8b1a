"""HTTP conventions shared by every resource: problem+json errors, ETags, caching, compression."""
import copy
import gzip
from collections import OrderedDict

import marshmallow

import flask_smorest
from apispec import BasePlugin
from flask import Response, current_app, request
from flask_smorest.etag import _get_etag_ctx
from webargs.flaskparser import FlaskParser
from werkzeug.exceptions import HTTPException

from api.web.bodies import JSONBodies
from api.web.safejson import script_safe

try:
    import brotli
except ImportError:  # brotli is optional: gzip alone is a complete answer
    brotli = None

PROBLEM = "application/problem+json"
# Members a problem may carry beyond RFC 9457's own (see ProblemSchema). webargs puts other
# objects in an error's data (the schema, the exception), which must not leak out.
PROBLEM_EXTRAS = ("allowed", "current", "current_etag", "findings", "approved_revision")


class NotModified(flask_smorest.exceptions.NotModified):
    """304 that remembers the ETag, which RFC 9110 wants repeated on a 304."""

    def __init__(self, etag):
        super().__init__()
        self.etag = etag


class QueryParser(JSONBodies, FlaskParser):
    """Bodies go through api/web/bodies.py. Queries: webargs runs even an empty query string
    through the schema, about 0.1 ms a request, and most reads carry no query at all. With no
    query the result depends only on the schema, so it is worked out once; any error still goes
    through webargs as usual."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._empty = {}

    def parse(self, argmap, req=None, *, location=None, **kwargs):
        if location == "query" and isinstance(argmap, marshmallow.Schema) and not request.query_string:
            if argmap not in self._empty:
                try:
                    self._empty[argmap] = argmap.load({})
                except marshmallow.ValidationError:
                    return super().parse(argmap, req, location=location, **kwargs)
            return copy.copy(self._empty[argmap])
        return super().parse(argmap, req, location=location, **kwargs)


class Blueprint(flask_smorest.Blueprint):
    ARGUMENTS_PARSER = QueryParser()
    PAGINATION_ARGUMENTS_PARSER = QueryParser()

    def _check_not_modified(self, etag):
        # RFC 9110 §13.1.2: If-None-Match uses the weak comparison. flask-smorest compares
        # strongly, which would never match the W/ tags we send on compressed bodies.
        if not request.environ.get("HTTP_IF_NONE_MATCH"):
            return  # parsing an absent header still costs more than the rest of a cached read
        if request.method in self.METHODS_CHECKING_NOT_MODIFIED and request.if_none_match.contains_weak(etag):
            raise NotModified(etag)

    def problem(self, status, description):
        """Document an error response of this endpoint (always RFC 9457 problem+json)."""
        from schemas.http import ProblemSchema

        return self.alt_response(status, schema=ProblemSchema, content_type=PROBLEM, description=description)

    def set_etag_value(self, etag):
        """Use an ETag computed elsewhere (a content hash) as is: no hashing of response data."""
        self._check_not_modified(etag)
        _get_etag_ctx()["etag"] = etag


def problem(status, title=None, detail=None, **extra):
    from werkzeug.http import HTTP_STATUS_CODES

    body = {"type": "about:blank", "title": title or HTTP_STATUS_CODES.get(status, "Error"), "status": status}
    if detail:
        body["detail"] = detail
    body.update({key: value for key, value in extra.items() if value is not None})
    return current_app.json.response(body), status


def flatten_messages(messages):
    """webargs nests errors by location ({'query': {'page': [...]}}); callers care about the field."""
    flat = {}
    for location, errors in (messages or {}).items():
        if isinstance(errors, dict):
            flat.update(errors)
        else:
            flat[location] = errors
    return flat


class KeyRequired(BasePlugin):
    """Documents, in one place, that every editorial and preview operation needs an API key
    and may answer 401."""

    PREFIXES = ("/v1/editorial", "/v1/preview")

    def operation_helper(self, path=None, operations=None, **kwargs):
        if path and path.startswith(self.PREFIXES):
            for operation in operations.values():
                operation["security"] = [{"bearerAuth": []}]
                operation.setdefault("responses", {})["401"] = "UNAUTHORIZED"


class Api(flask_smorest.Api):
    def _register_responses(self):
        """flask-smorest's shared error responses, documented as what we send: problem+json."""
        import http

        from flask_smorest.utils import prepare_response

        from schemas.http import ProblemSchema

        for status in http.HTTPStatus:
            response = {"description": status.phrase}
            content_type = self.DEFAULT_RESPONSE_CONTENT_TYPE
            if status >= 400:
                response["schema"], content_type = ProblemSchema, PROBLEM
            prepare_response(response, self.spec, content_type)
            self.spec.components.response(status.name, response, lazy=True)
        response = {"description": "Default error response", "schema": ProblemSchema}
        prepare_response(response, self.spec, PROBLEM)
        self.spec.components.response("DEFAULT_ERROR", response, lazy=True)

    def _register_pagination_header(self):
        # The header's value is JSON text, which OpenAPI 3 says with `content`; flask-smorest's
        # `schema: object` would claim the header itself is an object.
        from flask_smorest.pagination import PaginationMetadataSchema

        self.spec.components.schema("PaginationMetadata", schema=PaginationMetadataSchema)
        self.spec.components.header("PAGINATION", {
            "description": "Pagination metadata, as JSON: total, total_pages, first_page, last_page, page, "
                           "previous_page, next_page.",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/PaginationMetadata"}}},
        })

    def handle_http_exception(self, error):
        """Every error, 404 and 405 included, as RFC 9457 problem+json. The one error handler."""
        if isinstance(error, flask_smorest.exceptions.NotModified):
            response = Response(status=304)
            if getattr(error, "etag", None):
                response.set_etag(error.etag)
            return response
        data = getattr(error, "data", None) or {}
        extra = {key: data[key] for key in PROBLEM_EXTRAS if key in data}
        errors = data.get("errors") or flatten_messages(data.get("messages"))
        detail = data.get("message") or (None if errors else error.description)
        if errors and not detail:
            detail = "The request has invalid fields; see errors."
        response, status = problem(error.code, error.name, detail, errors=errors or None, **extra)
        response.mimetype = PROBLEM
        for name, value in (data.get("headers") or {}).items():
            response.headers[name] = value
        if isinstance(error, HTTPException) and error.code == 405 and error.valid_methods:
            response.headers["Allow"] = ", ".join(error.valid_methods)
        return response, status


def public_response(body: bytes, *, language=None, status=200, mimetype="application/json"):
    response = Response(script_safe(body), status=status, mimetype=mimetype)
    if language:
        response.headers["Content-Language"] = language
    return response


PUBLIC_CACHE = "public, max-age=60, stale-while-revalidate=600"


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
MIN_COMPRESS = 512  # below this, headers outweigh the saving


def _encoding_for(request_):
    if not request_.environ.get("HTTP_ACCEPT_ENCODING"):
        return None  # the common case for API clients that do not ask; skip parsing
    accepted = request_.accept_encodings
    if brotli is not None and accepted["br"]:
        return "br"
    if accepted["gzip"]:
        return "gzip"
    return None


def finish_response(response):
    """after_request: caching headers on public reads, then compression (cached by ETag)."""
    path = request.path
    public = request.method in ("GET", "HEAD") and path.startswith("/v1/") and not path.startswith(
        ("/v1/editorial", "/v1/preview"))
    if public and response.status_code in (200, 304):
        response.headers["Cache-Control"] = PUBLIC_CACHE
        add_vary(response, "Accept-Encoding", "Accept-Language")
    elif path.startswith(("/v1/editorial", "/v1/preview")):
        response.headers["Cache-Control"] = "private, no-store"
    if response.status_code != 200 or response.direct_passthrough or "Content-Encoding" in response.headers:
        return response
    if not (response.mimetype or "").endswith(("json", "javascript", "css", "html", "yaml")):
        return response
    if not public:
        add_vary(response, "Accept-Encoding")
    encoding = _encoding_for(request)
    if encoding is None or (response.content_length or 0) < MIN_COMPRESS:
        return response
    body = response.get_data()
    etag, weak = response.get_etag()

    def compress():
        return brotli.compress(body, quality=5) if encoding == "br" else gzip.compress(body, compresslevel=6, mtime=0)

    data = _compressed.remember((etag, encoding), compress) if etag else compress()
    response.set_data(data)
    response.headers["Content-Encoding"] = encoding
    if etag:
        # The bytes differ per encoding, so the tag is only weakly the same (as nginx does).
        response.set_etag(etag, weak=True)
    return response
