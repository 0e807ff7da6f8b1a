"""Console pages: queues, a document as patients read it, editing, actions, history."""
import datetime

from flask import current_app, g, redirect, render_template, request, url_for
from marshmallow import ValidationError
from werkzeug.exceptions import NotFound

from schemas import DOCUMENT_TYPES
from schemas.http import in_utc_range

from api.services.errors import DomainError, InvalidDocument, StaleWrite, StoreError
from api.services.errors import NotFound as DocumentNotFound
from api.services.workflow import (APPROVED, DRAFT, IN_REVIEW, PUBLISHED, STATES, TRANSITIONS, WRITE_ROLES,
                                   allowed_from, content_etag, state_of)
from api.web.errors import status_of

from . import bp
from .forms import CITED_FIELD, FormErrors, apply_op, by_field, document_from_form, specs_for, title_of
from .text import field_diff, markdown

PAGE_SIZE = 50
RECENT = 6
QUEUE_SIZE = 20  # each queue shows its first documents and how many there are
REFERENCE_CHOICES = 200  # beyond this many documents a reference is typed, with suggestions
# The queue each role works from, shown first.
OWN_QUEUE = {"author": "drafts", "reviewer": "review", "publisher": "approved", "admin": "review"}
ACTION_LABELS = {"submit": "Submit for review", "approve": "Approve", "request_changes": "Request changes",
                 "publish": "Publish", "unpublish": "Unpublish", "archive": "Archive", "restore": "Restore"}


def services():
    return current_app.extensions["medkb"]


def editorial():
    return services().editorial


@bp.app_template_filter("markdown")
def _markdown_filter(text):
    return markdown(text)


@bp.app_template_global()
def document_title(type_name, id_):
    """How a referenced document is named on a page: its title, or its id if it has none (or is gone)."""
    row = editorial().listed(type_name, id_) if isinstance(id_, str) and type_name in DOCUMENT_TYPES else None
    return row["title"] if row and not row["deleted"] else f"{type_name}/{id_}"


@bp.app_template_filter("field_label")
def _field_label(path):
    """'citations.1.locator' as people say it: 'Citations 2 › locator'."""
    words = []
    for part in str(path).split("."):
        if part.isdigit() and words:
            words[-1] += f" {int(part) + 1}"
        else:
            words.append(part.replace("_", " "))
    return " › ".join(words).capitalize()


@bp.app_template_global()
def state_label(state):
    return (state or "").replace("_", " ")


def _checked_type(type_name):
    if type_name not in DOCUMENT_TYPES:
        raise NotFound(f"There is no document type '{type_name}'.")
    return type_name


def _load(type_name, id_):
    try:
        return editorial().head(_checked_type(type_name), id_)
    except DocumentNotFound:
        raise NotFound(f"{type_name}/{id_} does not exist.") from None


def plain(message):
    return {"message": message, "fields": {}, "findings": []}


def refusal(error):
    """What a service's refusal means to the person at the form: a message, and messages by field."""
    if isinstance(error, DomainError):
        fields = by_field((name, message) for name, messages in (error.extra.get("errors") or {}).items()
                          for message in messages)
        return {"message": str(error), "fields": fields, "findings": error.extra.get("findings") or []}
    if isinstance(error, InvalidDocument):
        return {"message": "The document is not valid yet; see the messages at each field.",
                "fields": by_field(error.errors), "findings": []}
    if isinstance(error, FormErrors):
        return {"message": "Some inputs could not be read; see the messages at each field.",
                "fields": by_field(error.errors), "findings": []}
    return plain(str(error))


# --- queues -------------------------------------------------------------------


@bp.route("/")
def queues():
    type_name = request.args.get("type") or None
    status = request.args.get("status") or None
    query = (request.args.get("q") or "").strip()
    problems = []
    if type_name and type_name not in DOCUMENT_TYPES:
        problems.append(f"There is no document type '{type_name}'.")
        type_name = None
    if status and status not in STATES:
        problems.append(f"There is no status '{status}'.")
        status = None
    me = g.key.name
    # Each list is a query on the store's index: a page costs the same whatever the store holds.
    queue_specs = [
        ("review", "Waiting for my review", "In review, written by someone else.",
         {"state": IN_REVIEW, "not_author": me}, "type, id"),
        ("drafts", "My drafts", "Drafts whose latest revision you wrote.", {"state": DRAFT, "author": me}, "type, id"),
        ("approved", "Approved, waiting to be published", "Approved and not scheduled.",
         {"state": APPROVED, "scheduled": False}, "type, id"),
        ("scheduled", "Scheduled", "Approved, to be published at a set time.", {"state": APPROVED, "scheduled": True},
         "due_at"),
        ("published", "Recently published", "The last documents published.", {"state": PUBLISHED},
         "publication_seq DESC"),
    ]
    lists = []
    for key, heading, hint, conditions, order in queue_specs:
        limit = RECENT if key == "published" else QUEUE_SIZE
        rows = editorial().list_documents(0, limit, order, type_name=type_name, live=True, **conditions)
        count = len(rows) if key == "published" else editorial().count_documents(type_name=type_name, live=True,
                                                                                  **conditions)
        lists.append((key, heading, hint, rows, count))
    lists.sort(key=lambda entry: entry[0] != OWN_QUEUE[g.key.role])
    conditions = {"type_name": type_name, "state": status, "title_contains": query or None, "live": True}
    total = editorial().count_documents(**conditions)
    try:
        page = max(1, int(request.args.get("page", 1)))
    except ValueError:
        page = 1
    pages = max(1, -(-total // PAGE_SIZE))
    page = min(page, pages)
    found = editorial().list_documents((page - 1) * PAGE_SIZE, PAGE_SIZE, **conditions)
    return render_template("console/queues.html", lists=lists, found=found, total=total, page=page, pages=pages,
                           types=DOCUMENT_TYPES, states=STATES,
                           filters={"type": type_name or "", "status": status or "", "q": query}, problems=problems)


# --- one document -------------------------------------------------------------


def _sources_cited(document):
    """{source id: source document or None} for every citation in the document."""
    found = {}

    def walk(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "citations" and isinstance(value, list):
                    for citation in value:
                        if isinstance(citation, dict) and isinstance(citation.get("source"), str):
                            found.setdefault(citation["source"], None)
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(document)
    return {id_: editorial().lookup_head("source", id_) for id_ in found}


def _references(type_name):
    """(id, title) choices for each type a form's reference fields name."""
    targets = set()

    def walk(spec):
        if spec.kind == "reference":
            targets.add(spec.target)
        for child in spec.children:
            walk(child)
        if spec.item:
            walk(spec.item)

    for spec in specs_for(type_name):
        walk(spec)
    choices = {}
    for target in targets:
        # A bounded list: past REFERENCE_CHOICES documents the form asks for the id, suggesting these.
        rows = editorial().list_documents(0, REFERENCE_CHOICES + 1, "title COLLATE NOCASE, id", type_name=target, live=True)
        choices[target] = {"options": [(row["id"], row["title"]) for row in rows[:REFERENCE_CHOICES]],
                           "complete": len(rows) <= REFERENCE_CHOICES}
    return choices


def _actions(state, head):
    """The steps this person's role may take from the current state, with why one is unavailable."""
    current = state_of(state)
    actions = []
    # In the order of the workflow, so the usual next step comes first and archive comes last.
    for action in sorted(allowed_from(current), key=list(ACTION_LABELS).index):
        permitted = g.key.role in TRANSITIONS[action].roles
        reason = None
        if action == "approve" and head.actor == g.key.name:
            reason = "You wrote this revision: a reviewer other than you must approve it."
        elif action == "approve" and not permitted:
            reason = f"A reviewer approves this revision; you are signed in as {g.key.role}."
        elif action == "restore" or not permitted:
            continue  # restore is offered per revision, on the history page
        actions.append({"name": action, "label": ACTION_LABELS[action], "disabled_reason": reason})
    return actions


def _document_page(type_name, id_, status=200, notice=None, problem=None, stale=None):
    state, head = _load(type_name, id_)
    summary = editorial().summary(state)
    if head.deleted:
        return render_template("console/deleted.html", summary=summary, type_name=type_name, id_=id_), 410
    document = head.content
    findings = editorial().lint(document)
    published = None
    if state.published and state.published != head.revision:
        published = editorial().revision(type_name, id_, state.published)
    return render_template(
        "console/document.html", document=document, summary=summary, head=head, etag=content_etag(head),
        title=title_of(document), specs=specs_for(type_name), cited_field=CITED_FIELD.get(type_name),
        findings=findings, findings_at=by_field((f["field"], f) for f in findings), sources=_sources_cited(document),
        errors={}, published=published, comparison=field_diff(published.content, document) if published else None,
        actions=_actions(state, head), can_edit=g.key.role in WRITE_ROLES, notice=notice, problem=problem,
        stale=stale), status


@bp.route("/documents/<type_name>/<id_>")
def document(type_name, id_):
    notice = None
    if request.args.get("saved", "").isdigit():
        notice = f"Saved as revision {request.args['saved']}: a new draft."
    elif request.args.get("done") in ACTION_LABELS:
        notice = f"Done: {ACTION_LABELS[request.args['done']].lower()}."
    return _document_page(type_name, id_, notice=notice)


def _stale(type_name, id_, seen_revision, seen_state, head, state):
    """What moved since the page was rendered, for the person whose form no longer applies."""
    changes = []
    if seen_revision != head.revision:
        try:
            changes = field_diff(editorial().revision(type_name, id_, seen_revision).content, head.content)
        except DocumentNotFound:
            changes = []
    return {"seen_revision": seen_revision, "seen_state": seen_state, "revision": head.revision,
            "state": state_of(state), "author": head.actor, "changes": changes}


def _form_revision():
    try:
        return int(request.form.get("revision", ""))
    except ValueError:
        return None


@bp.route("/documents/<type_name>/<id_>/actions", methods=["POST"])
def act(type_name, id_):
    state, head = _load(type_name, id_)
    action = request.form.get("action", "")
    if action not in TRANSITIONS:
        return _document_page(type_name, id_, 400, problem=plain(f"There is no action '{action}'."))
    seen_revision, seen_state = _form_revision(), request.form.get("state")
    if request.form.get("etag") != content_etag(head) or seen_state != state_of(state) or seen_revision is None:
        return _document_page(type_name, id_, 409, stale=_stale(type_name, id_, seen_revision or head.revision,
                                                                seen_state, head, state))
    comment = request.form.get("comment", "").replace("\r\n", "\n").strip() or None
    publish_at, restore = None, None
    try:
        if action == "publish" and request.form.get("publish_at"):
            moment = datetime.datetime.fromisoformat(request.form["publish_at"])
            moment = moment if moment.tzinfo else moment.replace(tzinfo=datetime.UTC)
            in_utc_range(moment)  # the API's rule: 9999-12-31T23:59-01:00 has no time in UTC
            publish_at = moment.isoformat()
        if action == "restore":
            restore = int(request.form.get("restore_revision", ""))
    except ValidationError as error:
        return _document_page(type_name, id_, 400, problem=plain(f"The time to publish: {error.messages[0]}"))
    except ValueError:
        return _document_page(type_name, id_, 400,
                              problem=plain("The time to publish or the revision to restore is not readable."))
    try:
        editorial().transition(type_name, id_, action, head.revision, g.key, comment=comment, publish_at=publish_at,
                               revision=restore)
    except StaleWrite:
        state, head = _load(type_name, id_)
        return _document_page(type_name, id_, 409, stale=_stale(type_name, id_, seen_revision, seen_state, head, state))
    except (DomainError, InvalidDocument, StoreError) as error:
        if isinstance(error, DocumentNotFound):
            raise NotFound(str(error)) from None
        return _document_page(type_name, id_, status_of(error), problem=refusal(error))
    if action == "restore":
        return redirect(url_for(".document", type_name=type_name, id_=id_, saved=head.revision + 1), 303)
    return redirect(url_for(".document", type_name=type_name, id_=id_, done=action), 303)


# --- editing ------------------------------------------------------------------


def _edit_page(type_name, id_, document, revision, status=200, problem=None, stale=None, preview=False):
    findings = editorial().lint(document)
    state, head = _load(type_name, id_)
    return render_template(
        "console/edit.html", document=document, summary=editorial().summary(state), revision=revision,
        title=title_of(head.content) or id_,
        type_name=type_name, id_=id_, specs=specs_for(type_name), choices=_references(type_name),
        errors=(problem or {}).get("fields", {}), problem=problem, stale=stale, preview=preview, findings=findings,
        findings_at=by_field((f["field"], f) for f in findings), sources=_sources_cited(document),
        cited_field=CITED_FIELD.get(type_name),
        message=request.form.get("message", "")), status


@bp.route("/documents/<type_name>/<id_>/edit", methods=["GET", "POST"])
def edit(type_name, id_):
    _, head = _load(type_name, id_)
    if head.deleted:
        raise NotFound(f"{type_name}/{id_} was deleted.")
    if request.method == "GET":
        return _edit_page(type_name, id_, head.content, head.revision)
    base = _form_revision()
    if base is None:
        return _edit_page(type_name, id_, head.content, head.revision, 400,
                          problem=plain("The form did not say which revision it edits; your page is out of date."))
    try:
        original = editorial().revision(type_name, id_, base).content
    except DocumentNotFound:
        raise NotFound(f"{type_name}/{id_} has no revision {base}.") from None
    if original is None:
        return _edit_page(type_name, id_, head.content, head.revision, 400,
                          problem=plain(f"Revision {base} is a deletion; there is nothing to edit in it."))
    try:
        draft = document_from_form(original, request.form)
    except FormErrors as error:
        return _edit_page(type_name, id_, original, base, 422, problem=refusal(error))
    op = request.form.get("op", "preview")
    if op != "save":
        if op != "preview" and not apply_op(draft, op):
            return _edit_page(type_name, id_, draft, base, 400, problem=plain("That button does nothing here."))
        return _edit_page(type_name, id_, draft, base, preview=op == "preview")
    message = request.form.get("message", "").strip()
    try:
        written = editorial().replace(type_name, id_, draft, base, g.key, message=message)
    except StaleWrite:
        # Someone saved since this form was rendered: show what they changed and keep this person's
        # edits in the form, based on the new revision, so saving again is a deliberate choice.
        state, head = _load(type_name, id_)
        return _edit_page(type_name, id_, draft, head.revision, 409, stale=_stale(type_name, id_, base, None, head, state))
    except (DomainError, InvalidDocument, StoreError) as error:
        return _edit_page(type_name, id_, draft, base, status_of(error), problem=refusal(error))
    return redirect(url_for(".document", type_name=type_name, id_=id_, saved=written.revision), 303)


# --- history --------------------------------------------------------------------


HISTORY_PAGE = 50


@bp.route("/documents/<type_name>/<id_>/history")
def history(type_name, id_):
    state, head = _load(type_name, id_)
    try:
        page = max(1, int(request.args.get("page", 1)))
    except ValueError:
        page = 1
    # Newest first, a page at a time: revisions are read from their own files, the trail from
    # the store's index of changes by document.
    document = f"{type_name}/{id_}"
    pages = max(1, -(-max(state.head, len(editorial().audit_log(document=document))) // HISTORY_PAGE))
    page = min(page, pages)
    newest = state.head - (page - 1) * HISTORY_PAGE
    revisions = editorial().revisions(type_name, id_)[max(0, newest - HISTORY_PAGE):max(0, newest)]
    audit = editorial().audit(document=document, offset=(page - 1) * HISTORY_PAGE, limit=HISTORY_PAGE,
                              newest_first=True)
    return render_template("console/history.html", type_name=type_name, id_=id_, summary=editorial().summary(state),
                           title=title_of(head.content) or id_, revisions=list(reversed(revisions)),
                           numbers=range(state.head, 0, -1), audit=audit, head=head, etag=content_etag(head),
                           can_restore=g.key.role in TRANSITIONS["restore"].roles, page=page, pages=pages)


@bp.route("/documents/<type_name>/<id_>/compare")
def compare(type_name, id_):
    state, head = _load(type_name, id_)
    numbers = list(range(1, state.head + 1))
    try:
        older = int(request.args.get("from", state.published or numbers[0]))
        newer = int(request.args.get("to", head.revision))
    except ValueError:
        raise NotFound("Name two revisions by number.") from None
    if older not in numbers or newer not in numbers:
        raise NotFound(f"{type_name}/{id_} has revisions {numbers[0]} to {numbers[-1]}.")
    a, b = editorial().revision(type_name, id_, older), editorial().revision(type_name, id_, newer)
    return render_template("console/compare.html", type_name=type_name, id_=id_, title=title_of(head.content) or id_,
                           older=a, newer=b, numbers=numbers, summary=editorial().summary(state),
                           comparison=field_diff(a.content, b.content))
