"""Request bodies: the one JSON parser for the API, and the media types each write accepts.

webargs reads a body only if its Content-Type looks like JSON and otherwise hands the schema
nothing, so a PATCH sent as text/plain used to succeed as an empty patch; and its parser
(the standard library's) accepts what the store cannot keep. Here a body is JSON of an accepted
type or the request is refused, before any service sees it.
"""
import orjson
from apispec import BasePlugin
from flask_smorest import abort
from werkzeug.exceptions import RequestEntityTooLarge

from api.knowledge.documents import BAD_UNICODE, MAX_DEPTH, TOO_DEEP, parse_json_text, value_problems

JSON = "application/json"
MERGE_PATCH = "application/merge-patch+json"
# RFC 7396 names its own media type for merge patches; plain JSON is accepted as an alias
# because most HTTP clients send it by default.
ACCEPTED = {"PATCH": (MERGE_PATCH, JSON)}
DEFAULT_ACCEPTED = (JSON,)


def accepted_types(method):
    return ACCEPTED.get(method, DEFAULT_ACCEPTED)


def _refuse_media_type(request):
    accepted = accepted_types(request.method)
    sent = request.mimetype or "no Content-Type"
    headers = {"Accept-Patch": ", ".join(accepted)} if request.method == "PATCH" else None
    abort(415, message=f"This operation takes {' or '.join(accepted)} (UTF-8); the request sent {sent}.",
          headers=headers)


def _is_utf8(request):
    charset = request.mimetype_params.get("charset")
    return charset is None or charset.lower().replace("_", "-") in ("utf-8", "utf8")


def parse_json_body(raw):
    """The JSON value in `raw` (bytes), or abort: 400 for what is not JSON (bad syntax, invalid
    UTF-8 or lone surrogates, nesting beyond MAX_DEPTH), 422 for numbers out of range, by field."""
    if not raw.strip():
        abort(400, message="The request body is empty; send a JSON object.")
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        reason = str(error)
        if "depth" in reason or "recursion" in reason:
            abort(400, message=f"The JSON body is nested more than {MAX_DEPTH} levels deep.")
        if "surrogate" in reason or "UTF-8" in reason:
            abort(400, message=f"The request body is not valid UTF-8 text: {reason}.")
        if "number" in reason and "infinity" in reason:
            # orjson stops at a number no double can hold; find which field carries it.
            value = _parse_for_numbers(raw, reason)
        else:
            abort(400, message=f"The request body is not valid JSON: {reason}.")
    problems = value_problems(value)
    if any(message == TOO_DEEP for _, message in problems):
        abort(400, message=f"The JSON body is nested more than {MAX_DEPTH} levels deep.")
    if any(message == BAD_UNICODE for _, message in problems):
        abort(400, message="The request body is not valid Unicode text: it contains an unpaired surrogate.")
    if problems:
        errors = {}
        for field, message in problems:
            errors.setdefault(field, []).append(message)
        abort(422, message="The request has numbers outside the range JSON carries safely; see errors.",
              errors=errors)
    return value


def _parse_for_numbers(raw, reason):
    try:
        return parse_json_text(raw.decode("utf-8"))
    except (ValueError, RecursionError):
        abort(400, message=f"The request body is not valid JSON: {reason}.")


class JSONBodies:
    """A webargs parser mixin: JSON bodies only through parse_json_body, and only of the media
    types the method accepts; anything else is a 415, never an empty body."""

    def _raw_load_json(self, req):
        if req.mimetype not in accepted_types(req.method) or not _is_utf8(req):
            _refuse_media_type(req)
        limit = req.max_content_length
        try:
            raw = req.get_data(cache=True)  # 413 when a Content-Length announces too much
        except RequestEntityTooLarge:
            raw = None
        # A chunked body (no Content-Length) is cut off silently at the limit: one that reached
        # it is treated as too large rather than parsed truncated.
        if raw is None or (limit is not None and req.content_length is None and len(raw) >= limit):
            abort(413, message=f"The request body is larger than {limit:,} bytes; documents are far smaller.")
        return parse_json_body(raw)


class BodyErrors(BasePlugin):
    """Documents, once for every operation that takes a body, how a body can be refused."""

    RESPONSES = {"400": "BAD_REQUEST", "413": "REQUEST_ENTITY_TOO_LARGE", "415": "UNSUPPORTED_MEDIA_TYPE"}

    def operation_helper(self, path=None, operations=None, **kwargs):
        for operation in (operations or {}).values():
            if "requestBody" in operation:
                operation.setdefault("responses", {}).update(self.RESPONSES)
