"""flask-smorest, fitted to the HTTP contract: problem+json errors, precomputed entity tags with
RFC 9110's comparisons, and one precondition check for every write.

The few private flask-smorest methods overridden here are pinned with the dependency
(`flask-smorest>=0.47,<0.48`); tests/test_smorest_pin.py fails if upstream changes them.
"""
import copy
import http

import flask_smorest
import marshmallow
from flask import Response, request
from flask_smorest.etag import _get_etag_ctx
from flask_smorest.pagination import PaginationMetadataSchema
from flask_smorest.utils import prepare_response
from webargs.flaskparser import FlaskParser
from werkzeug.exceptions import HTTPException

from schemas.http import ProblemSchema

from api.web.bodies import JSONBodies

from api.web.caching import matching_tag
from api.web.errors import PROBLEM, PROBLEM_EXTRAS, problem


class NotModified(flask_smorest.exceptions.NotModified):
    """304 that remembers the tag it answers, which RFC 9110 wants repeated on a 304."""

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


def flatten_messages(messages):
    """webargs nests errors by location ({'query': {'page': [...]}}); callers care about the field."""
    flat = {}
    for location, errors in (messages or {}).items():
        if isinstance(errors, dict):
            flat.update(errors)
        else:
            flat[location] = errors
    return flat


class Blueprint(flask_smorest.Blueprint):
    ARGUMENTS_PARSER = QueryParser()
    PAGINATION_ARGUMENTS_PARSER = QueryParser()

    def _check_precondition(self):
        # Every write checks If-Match itself, through check_if_match, once it knows the current
        # tag: so a missing If-Match gets the same 428 body (with the tag to send) on every write.
        pass

    def _check_not_modified(self, etag):
        # RFC 9110 §13.1.2: If-None-Match uses the weak comparison, and a tag of any encoding of
        # this content matches. The 304 repeats the tag the client sent: the one its 200 carried.
        if not request.environ.get("HTTP_IF_NONE_MATCH"):
            return  # parsing an absent header still costs more than the rest of a cached read
        if request.method in self.METHODS_CHECKING_NOT_MODIFIED:
            matched = matching_tag(request.if_none_match, etag, weak=True)
            if matched is not None:
                raise NotModified(matched)

    def set_etag_value(self, etag):
        """Use an ETag computed elsewhere (a content hash) as is: no hashing of response data."""
        self._check_not_modified(etag)
        _get_etag_ctx()["etag"] = etag

    def check_if_match(self, current):
        """The precondition of every write: If-Match must name the current tag (in any encoding).
        428 without one, or with `*` (which would skip lost-update protection); 412 when stale."""
        _get_etag_ctx()["etag_checked"] = True
        if not request.if_match or request.if_match.star_tag:
            flask_smorest.abort(428, message="Send If-Match with the ETag of the document as you read it.",
                                current_etag=current)
        if matching_tag(request.if_match, current) is None:
            flask_smorest.abort(412, message="The document has changed since you read it. Fetch it again and "
                                             "reapply your change.",
                                current_etag=current, headers={"ETag": f'"{current}"'})

    def problem(self, status, description):
        """Document an error response of this endpoint (always RFC 9457 problem+json)."""
        return self.alt_response(status, schema=ProblemSchema, content_type=PROBLEM, description=description)

    def if_match(self, function):
        """Document that a write needs If-Match (PUT and PATCH get this from @etag; POST does not)."""
        function = self.problem(428, "If-Match is missing")(function)
        function = self.problem(412, "If-Match is stale")(function)
        return self.doc(parameters=["IF_MATCH"])(function)


class Api(flask_smorest.Api):
    def _register_responses(self):
        """flask-smorest's shared error responses, documented as what we send: problem+json."""
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
        self.spec.components.schema("PaginationMetadata", schema=PaginationMetadataSchema)
        self.spec.components.header("PAGINATION", {
            "description": "Pagination metadata, as JSON: total, total_pages, first_page, last_page, page, "
                           "previous_page, next_page.",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/PaginationMetadata"}}},
        })

    def handle_http_exception(self, error):
        """Every HTTP error, 404 and 405 included, as RFC 9457 problem+json."""
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
        headers = dict(data.get("headers") or {})
        if isinstance(error, HTTPException) and error.code == 405 and error.valid_methods:
            headers["Allow"] = ", ".join(error.valid_methods)
        return problem(error.code, error.name, detail, headers=headers, errors=errors or None, **extra)
