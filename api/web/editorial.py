"""Editorial API: drafts, history, review and publication. Every call needs an API key."""
from flask import current_app, g, request
from flask.views import MethodView
from flask_smorest import abort
from flask_smorest.etag import _get_etag_ctx
from werkzeug.exceptions import HTTPException

from schemas.http import (AuditEntrySchema, AuditQuery, DiffQuery, DiffSchema, DocumentInputSchema,
                          EditorialDocumentSchema, LintSchema, MergePatchSchema, RevisionSchema,
                          RevisionSummarySchema, TransitionSchema, WorkingDocumentSchema, WorkingSetQuery)

from api.web.smorest import Blueprint
from api.knowledge.documents import InvalidDocument
from api.store.store import Conflict, NotFound, StorageFull, StorageUnavailable, StoreError
from api.services.workflow import WorkflowError, content_etag
from api.web.auth import require_key

blp = Blueprint("editorial", __name__, url_prefix="/v1/editorial",
                description="Drafting, review and publication (API key needed; roles author, reviewer, "
                            "publisher, admin).")
blp.before_request(require_key)


class InsufficientStorage(HTTPException):
    """507, which werkzeug has no exception for; rendered as problem+json like every other."""

    code = 507

    def __init__(self, message):
        super().__init__()
        self.data = {"message": message}


def editorial():
    return current_app.extensions["medkb"].editorial


def answer(call, *args, **kwargs):
    """Run a workflow call; turn its refusals into the HTTP statuses they mean."""
    try:
        return call(*args, **kwargs)
    except WorkflowError as error:
        abort(error.status, message=str(error), **error.extra)
    except InvalidDocument as error:
        errors = {}
        for field, message in error.errors:
            errors.setdefault(field or "_document", []).append(message)
        abort(422, message=f"{error.key} is not a valid document; see errors.", errors=errors)
    except Conflict as error:
        if error.expected == 0:
            abort(409, message=f"{error.key} already exists; edit it with PUT or PATCH.")
        current = content_etag(editorial().store.head(*error.key.split("/", 1)))
        abort(412, message=f"{error}. Fetch it again and reapply your change.", current_etag=current,
              headers={"ETag": f'"{current}"'})
    except NotFound as error:
        abort(404, message=str(error))
    except StorageFull as error:
        raise InsufficientStorage(str(error)) from None
    except StorageUnavailable as error:
        abort(503, message=str(error))
    except StoreError as error:
        abort(409, message=str(error))


def expected_revision(type_name, id_):
    """The head revision the caller's If-Match names: 428 without one, 412 if it is stale."""
    _get_etag_ctx()["etag_checked"] = True
    _, head = answer(editorial().head, type_name, id_)
    current = content_etag(head)
    if not request.if_match:
        abort(428, message="Send If-Match with the document's ETag.", current_etag=current)
    if not request.if_match.contains(current):
        abort(412, message=f"{type_name}/{id_} has changed (now revision {head.revision}). Fetch it again.",
              current_etag=current, headers={"ETag": f'"{current}"'})
    return head.revision


def document_answer(type_name, id_, status=200):
    service = editorial()
    state, head = answer(service.head, type_name, id_)
    blp.set_etag_value(content_etag(head))
    return {"document": head.content, "workflow": service.summary(state)}, status


@blp.route("/documents")
class WorkingSet(MethodView):
    @blp.arguments(WorkingSetQuery(), location="query", as_kwargs=True)
    @blp.response(200, WorkingDocumentSchema(many=True))
    @blp.paginate()
    def get(self, pagination_parameters, type=None, status=None):
        """The working set: every document with its workflow state"""
        documents = editorial().working_set(type, status)
        pagination_parameters.item_count = len(documents)
        first = pagination_parameters.first_item
        return documents[first:first + pagination_parameters.page_size]

    @blp.etag
    @blp.arguments(DocumentInputSchema(), location="json")
    @blp.response(201, EditorialDocumentSchema)
    @blp.problem(403, "role may not create")
    @blp.problem(409, "a document with this type and id exists")
    def post(self, content):
        """Create a draft (revision 1)"""
        answer(editorial().create, content, g.key, message=request.args.get("message", ""))
        body, _ = document_answer(content["type"], content["id"])
        return body, 201, {"Location": f"/v1/editorial/documents/{content['type']}/{content['id']}"}


@blp.route("/documents/<string:type_name>/<string:id_>")
class WorkingDocument(MethodView):
    @blp.etag
    @blp.response(200, EditorialDocumentSchema)
    @blp.problem(404, "no such document")
    def get(self, type_name, id_):
        """The head revision (draft or published) with its workflow state"""
        return document_answer(type_name, id_)

    @blp.etag
    @blp.arguments(DocumentInputSchema(), location="json")
    @blp.response(200, EditorialDocumentSchema)
    @blp.problem(403, "role may not edit")
    @blp.problem(404, "no such document")
    def put(self, content, type_name, id_):
        """Replace the document: a new draft revision (needs If-Match)"""
        revision = expected_revision(type_name, id_)
        answer(editorial().replace, type_name, id_, content, revision, g.key, message=request.args.get("message", ""))
        return document_answer(type_name, id_)

    @blp.etag
    @blp.arguments(MergePatchSchema(), location="json")
    @blp.response(200, EditorialDocumentSchema)
    @blp.problem(403, "role may not edit")
    @blp.problem(404, "no such document")
    def patch(self, patch, type_name, id_):
        """Change some fields (RFC 7386 JSON Merge Patch): a new draft revision (needs If-Match)"""
        revision = expected_revision(type_name, id_)
        answer(editorial().patch, type_name, id_, patch, revision, g.key, message=request.args.get("message", ""))
        return document_answer(type_name, id_)


@blp.route("/documents/<string:type_name>/<string:id_>/revisions")
class Revisions(MethodView):
    @blp.response(200, RevisionSummarySchema(many=True))
    @blp.problem(404, "no such document")
    def get(self, type_name, id_):
        """Every revision: number, author, time, message, state"""
        return answer(editorial().revisions, type_name, id_)


@blp.route("/documents/<string:type_name>/<string:id_>/revisions/<int:number>")
class OneRevision(MethodView):
    @blp.response(200, RevisionSchema)
    @blp.problem(404, "no such document or revision")
    def get(self, type_name, id_, number):
        """One revision, as it was written"""
        found = answer(editorial().revision, type_name, id_, number)
        return {"revision": found.revision, "author": found.actor, "at": found.at, "message": found.message,
                "hash": found.hash, "document": found.content}


@blp.route("/documents/<string:type_name>/<string:id_>/diff")
class Diff(MethodView):
    @blp.arguments(DiffQuery(), location="query")
    @blp.response(200, DiffSchema)
    @blp.problem(404, "no such document or revision")
    def get(self, query, type_name, id_):
        """Differences between two revisions: RFC 6902 JSON Patch and a field-by-field summary"""
        return answer(editorial().diff, type_name, id_, query["from_"], query["to"])


@blp.route("/documents/<string:type_name>/<string:id_>/lint")
class Lint(MethodView):
    @blp.response(200, LintSchema)
    @blp.problem(404, "no such document")
    def get(self, type_name, id_):
        """Editorial checks on the head revision (errors block submit and publish)"""
        service = editorial()
        _, head = answer(service.head, type_name, id_)
        if head.deleted:
            abort(404, message=f"{type_name}/{id_} was deleted.")
        findings = service.lint(head.content)
        return {"findings": findings, "errors": sum(f["severity"] == "error" for f in findings),
                "warnings": sum(f["severity"] == "warning" for f in findings)}


@blp.route("/documents/<string:type_name>/<string:id_>/transitions")
class Transitions(MethodView):
    @blp.etag
    @blp.arguments(TransitionSchema(), location="json")
    @blp.response(200, EditorialDocumentSchema)
    @blp.problem(403, "role may not take this step, or a reviewer approving their own revision")
    @blp.problem(404, "no such document")
    @blp.problem(409, "not allowed from the current state (the problem lists what is)")
    @blp.problem(412, "If-Match is stale")
    @blp.problem(428, "If-Match is missing")
    def post(self, body, type_name, id_):
        """Move the document through the workflow: submit, approve, request_changes, publish, unpublish,
        archive, restore (needs If-Match)"""
        revision = expected_revision(type_name, id_)
        publish_at = body.get("publish_at")
        answer(editorial().transition, type_name, id_, body["action"], revision, g.key, comment=body.get("comment"),
               publish_at=publish_at.isoformat() if publish_at else None, revision=body.get("revision"))
        if body["action"] in ("publish", "unpublish", "archive"):
            current_app.extensions["medkb"].delivery.refresh(force=True)
        return document_answer(type_name, id_)


@blp.route("/audit")
class Audit(MethodView):
    @blp.arguments(AuditQuery(), location="query", as_kwargs=True)
    @blp.response(200, AuditEntrySchema(many=True))
    @blp.paginate()
    def get(self, pagination_parameters, document=None, actor=None, since=None, until=None):
        """The audit log: every write and transition, oldest first"""
        service, first, size = editorial(), pagination_parameters.first_item, pagination_parameters.page_size
        if not (document or actor or since or until):  # change numbers are gapless: page by number
            pagination_parameters.item_count = service.store.last_seq()
            return service.audit(offset=first, limit=size)
        entries = service.audit(document, actor, since, until)
        pagination_parameters.item_count = len(entries)
        return entries[first:first + size]
