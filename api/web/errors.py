"""The one error mapping: every refusal becomes RFC 9457 problem+json here.

HTTP errors (404 routes, 405, webargs' 422) come through flask-smorest's handler
(`Api.handle_http_exception`); the domain's refusals through `handle_domain_error`, with the
status each class means in ERROR_STATUSES. Views never translate errors themselves.
"""
from flask import current_app
from werkzeug.http import HTTP_STATUS_CODES

from api.services.errors import (AlreadyExists, Blocked, CursorAhead, DomainError, Forbidden, IllegalTransition,
                                 Invalid, InvalidDocument, NotFound, NotPublished, NotReady, StaleWrite, StorageFull, StorageUnavailable,
                                 StoreError,
                                 SubscriptionNotFound, Unpublished)

PROBLEM = "application/problem+json"
# Members a problem may carry beyond RFC 9457's own (see ProblemSchema). webargs puts other
# objects in an error's data (the schema, the exception), which must not leak out.
PROBLEM_EXTRAS = ("allowed", "current", "current_etag", "findings", "approved_revision", "accepted", "unpublished",
                  "referrers")

ERROR_STATUSES = {
    Forbidden: 403,
    NotFound: 404,
    NotPublished: 404,
    SubscriptionNotFound: 404,
    AlreadyExists: 409,
    IllegalTransition: 409,
    CursorAhead: 409,
    Unpublished: 409,
    StaleWrite: 412,
    Blocked: 422,
    StorageFull: 507,  # nothing was committed: the disk is full (RFC 4918)
    StorageUnavailable: 503,  # the disk or database failed; the detail says whether the change was saved
    NotReady: 503,  # a derived answer is being prepared; Retry-After says when to ask again
    Invalid: 422,
    InvalidDocument: 422,
    StoreError: 409,  # any other refusal of the store: the request conflicts with its state
}


def problem(status, title=None, detail=None, headers=None, **extra):
    body = {"type": "about:blank", "title": title or HTTP_STATUS_CODES.get(status, "Error"), "status": status}
    if detail:
        body["detail"] = detail
    body.update({key: value for key, value in extra.items() if value is not None})
    response = current_app.json.response(body)
    response.status_code = status
    response.mimetype = PROBLEM
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def status_of(error):
    for kind in type(error).__mro__:
        if kind in ERROR_STATUSES:
            return ERROR_STATUSES[kind]
    return 409


def handle_domain_error(error):
    status = status_of(error)
    extra = dict(getattr(error, "extra", {}))
    headers = {}
    if isinstance(error, InvalidDocument):
        errors = {}
        for field, message in error.errors:
            errors.setdefault(field or "_document", []).append(message)
        return problem(422, detail=f"{error.key} is not a valid document; see errors.", errors=errors)
    if isinstance(error, StaleWrite):
        headers["ETag"] = f'"{extra["current_etag"]}"'
    if getattr(error, "retry_after", None):  # a refusal that knows when to come back says so
        headers["Retry-After"] = str(error.retry_after)
    return problem(status, detail=str(error), headers=headers, **extra)


def register_error_handlers(app):
    for kind in (DomainError, StoreError, InvalidDocument, SubscriptionNotFound):
        app.register_error_handler(kind, handle_domain_error)
