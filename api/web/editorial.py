"""Editorial API: drafts, history, review and publication. Every call needs an API key.

Views call the workflow service and shape its answers; its refusals become problem+json in
api/web/errors.py. Every write checks If-Match once it knows the current tag (Blueprint.check_if_match).
"""
from flask import g
from flask.views import MethodView
from flask_smorest import Page

from schemas.http import (AuditEntrySchema, AuditQuery, DiffQuery, DiffSchema, DocumentInputSchema,
                          EditorialDocumentSchema, LintSchema, MergePatchSchema, RevisionSchema,
                          RevisionSummarySchema, TransitionSchema, WorkingDocumentSchema, WorkingSetQuery, WriteQuery)

from api.services.workflow import content_etag
from api.web.auth import require_key
from api.web.bodies import MERGE_PATCH
from api.web.context import services
from api.web.smorest import Blueprint

blp = Blueprint("editorial", __name__, url_prefix="/v1/editorial",
                description="Drafting, review and publication (API key needed; roles author, reviewer, "
                            "publisher, admin).")
blp.before_request(require_key)
DOCUMENT = "/documents/<doctype:type>/<slug:id>"


def editorial():
    return services().editorial


def checked_revision(type_name, id_):
    """The head revision, once If-Match has named it."""
    _, head = editorial().head(type_name, id_)
    blp.check_if_match(content_etag(head))
    return head.revision


def document_body(state, revision):
    blp.set_etag_value(content_etag(revision))
    return {"document": revision.content, "workflow": editorial().summary(state)}


def written(change):
    """The answer to a write: exactly the revision it made, whatever anyone wrote since."""
    return document_body(*editorial().written(change))


@blp.route("/documents")
class WorkingSet(MethodView):
    @blp.arguments(WorkingSetQuery(), location="query", as_kwargs=True)
    @blp.response(200, WorkingDocumentSchema(many=True))
    @blp.paginate(Page)
    @blp.doc(operationId="listDocuments")
    def get(self, type=None, status=None):
        """The working set: every document with its workflow state

        Filter by `type` and `status`; paginated, metadata in X-Pagination and Link.
        """
        return editorial().working_set(type, status)

    @blp.etag
    @blp.arguments(WriteQuery(), location="query", as_kwargs=True)
    @blp.arguments(DocumentInputSchema(), location="json")
    @blp.response(201, EditorialDocumentSchema)
    @blp.problem(403, "role may not create")
    @blp.problem(409, "a document with this type and id exists")
    @blp.problem(422, "not a valid document")
    @blp.doc(operationId="createDocument")
    def post(self, content, message=""):
        """Create a draft (revision 1)

        The body is a whole document of one type; it is validated, references included, and stored
        as revision 1 in state draft. Authors and admins only.
        """
        change = editorial().create(content, g.key, message=message)
        return written(change), 201, {"Location": f"/v1/editorial/documents/{change.type}/{change.id}"}


@blp.route(DOCUMENT)
class WorkingDocument(MethodView):
    @blp.etag
    @blp.response(200, EditorialDocumentSchema)
    @blp.problem(404, "no such document")
    @blp.doc(operationId="getDocument")
    def get(self, type, id):
        """The head revision (draft or published) with its workflow state

        Its ETag is what If-Match must name on the next write.
        """
        return document_body(*editorial().head(type, id))

    @blp.etag
    @blp.arguments(WriteQuery(), location="query", as_kwargs=True)
    @blp.arguments(DocumentInputSchema(), location="json")
    @blp.response(200, EditorialDocumentSchema)
    @blp.problem(403, "role may not edit")
    @blp.problem(404, "no such document")
    @blp.problem(422, "not a valid document")
    @blp.doc(operationId="replaceDocument")
    def put(self, content, type, id, message=""):
        """Replace the document: a new draft revision (needs If-Match)

        Any edit is a new draft that must be reviewed again. The answer shows exactly the revision
        this request wrote.
        """
        revision = checked_revision(type, id)
        return written(editorial().replace(type, id, content, revision, g.key, message=message))

    @blp.etag
    @blp.arguments(WriteQuery(), location="query", as_kwargs=True)
    @blp.arguments(MergePatchSchema(), location="json", content_type=MERGE_PATCH)
    @blp.response(200, EditorialDocumentSchema)
    @blp.problem(403, "role may not edit")
    @blp.problem(404, "no such document")
    @blp.problem(422, "the patched document is not valid")
    @blp.doc(operationId="patchDocument")
    def patch(self, patch, type, id, message=""):
        """Change some fields (RFC 7386 JSON Merge Patch): a new draft revision (needs If-Match)

        Fields in the patch replace the document's; null removes a field. The answer shows exactly
        the revision this request wrote.
        """
        revision = checked_revision(type, id)
        return written(editorial().patch(type, id, patch, revision, g.key, message=message))


@blp.route(f"{DOCUMENT}/revisions")
class Revisions(MethodView):
    @blp.response(200, RevisionSummarySchema(many=True))
    @blp.paginate(Page)
    @blp.problem(404, "no such document")
    @blp.doc(operationId="listRevisions")
    def get(self, type, id):
        """Every revision: number, author, time, message, state

        Oldest first; revisions are immutable. Paginated, metadata in X-Pagination and Link.
        """
        return editorial().revisions(type, id)


@blp.route(f"{DOCUMENT}/revisions/<int:number>")
class OneRevision(MethodView):
    @blp.response(200, RevisionSchema)
    @blp.problem(404, "no such document or revision")
    @blp.doc(operationId="getRevision")
    def get(self, type, id, number):
        """One revision, as it was written

        The whole document of that revision, with its author, time, message and content hash.
        """
        found = editorial().revision(type, id, number)
        return {"revision": found.revision, "author": found.actor, "at": found.at, "message": found.message,
                "hash": found.hash, "document": found.content}


@blp.route(f"{DOCUMENT}/diff")
class Diff(MethodView):
    @blp.arguments(DiffQuery(), location="query")
    @blp.response(200, DiffSchema)
    @blp.problem(404, "no such document or revision")
    @blp.doc(operationId="diffRevisions")
    def get(self, query, type, id):
        """Differences between two revisions: RFC 6902 JSON Patch and a field-by-field summary

        `from` and `to` are revision numbers of this document.
        """
        return editorial().diff(type, id, query["from_"], query["to"])


@blp.route(f"{DOCUMENT}/lint")
class Lint(MethodView):
    @blp.response(200, LintSchema)
    @blp.problem(404, "no such document")
    @blp.doc(operationId="lintDocument")
    def get(self, type, id):
        """Editorial checks on the head revision (errors block submit and publish)

        Citations, comparative claims, review dates, readability and references, each at its field.
        """
        return editorial().lint_report(type, id)


@blp.route(f"{DOCUMENT}/transitions")
class Transitions(MethodView):
    @blp.etag
    @blp.arguments(TransitionSchema(), location="json")
    @blp.response(200, EditorialDocumentSchema)
    @blp.problem(403, "role may not take this step, or a reviewer approving their own revision")
    @blp.problem(404, "no such document")
    @blp.problem(409, "not allowed from the current state (the problem lists what is)")
    @blp.problem(422, "lint errors, a missing comment, or an approval that no longer matches")
    @blp.if_match
    @blp.doc(operationId="transitionDocument")
    def post(self, body, type, id):
        """Move the document through the workflow (needs If-Match)

        submit, approve, request_changes (with a comment), publish (now, or at `publish_at`),
        unpublish, archive, restore (a `revision` as a new draft). A reviewer cannot approve their
        own revision; a published document may refer only to published documents.
        """
        revision = checked_revision(type, id)
        publish_at = body.get("publish_at")
        change = editorial().transition(type, id, body["action"], revision, g.key, comment=body.get("comment"),
                                        publish_at=publish_at.isoformat() if publish_at else None,
                                        revision=body.get("revision"))
        return written(change)


@blp.route("/audit")
class Audit(MethodView):
    @blp.arguments(AuditQuery(), location="query", as_kwargs=True)
    @blp.response(200, AuditEntrySchema(many=True))
    @blp.paginate(Page)
    @blp.doc(operationId="listAudit")
    def get(self, document=None, actor=None, since=None, until=None):
        """The audit log: every write and transition, oldest first

        Each entry names the API key (name and stable id) and role, the document, the revisions
        and states before and after, and the comment. Filter by document, actor and time.
        """
        return editorial().audit_log(document, actor, since, until)
