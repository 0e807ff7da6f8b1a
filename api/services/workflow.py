"""Editorial workflow: drafting, history, review and publication, as an explicit state machine.

No Flask here. Every change goes through the store, which records it in the change sequence with
who did it, in what role, from and to which revision and state, and why: that is the audit log.
Each transition is checked again under the store's lock, so of two racing callers exactly one wins.
"""
import datetime
from dataclasses import dataclass

import jsonpatch

from schemas import DOCUMENT_TYPES as TYPES

from api.services.lint import lint
from api.knowledge.documents import InvalidDocument
from api.services.documents import Documents
from api.store.store import Conflict, NotFound, now_iso

DRAFT, IN_REVIEW, APPROVED, PUBLISHED, UNPUBLISHED, ARCHIVED, DELETED = (
    "draft", "in_review", "approved", "published", "unpublished", "archived", "deleted")
STATES = (DRAFT, IN_REVIEW, APPROVED, PUBLISHED, UNPUBLISHED, ARCHIVED)


@dataclass(frozen=True)
class Transition:
    sources: frozenset
    target: str | None  # None: restore makes a new draft revision
    roles: frozenset


TRANSITIONS = {
    "submit": Transition(frozenset({DRAFT}), IN_REVIEW, frozenset({"author", "admin"})),
    "approve": Transition(frozenset({IN_REVIEW}), APPROVED, frozenset({"reviewer", "admin"})),
    "request_changes": Transition(frozenset({IN_REVIEW}), DRAFT, frozenset({"reviewer", "admin"})),
    "publish": Transition(frozenset({APPROVED}), PUBLISHED, frozenset({"publisher", "admin"})),
    "unpublish": Transition(frozenset({PUBLISHED}), UNPUBLISHED, frozenset({"publisher", "admin"})),
    "archive": Transition(frozenset({DRAFT, PUBLISHED, UNPUBLISHED}), ARCHIVED, frozenset({"publisher", "admin"})),
    "restore": Transition(frozenset(STATES), None, frozenset({"author", "admin"})),
}
WRITE_ROLES = frozenset({"author", "admin"})


class WorkflowError(Exception):
    status = 409

    def __init__(self, message, **extra):
        super().__init__(message)
        self.extra = extra


class Forbidden(WorkflowError):
    status = 403


class IllegalTransition(WorkflowError):
    status = 409


class Blocked(WorkflowError):
    """Lint errors, a missing comment, or an approval that no longer matches."""

    status = 422


def state_of(state):
    """The workflow state of a store DocumentState (documents imported before any workflow ran
    have none recorded: published if their head is published, else a draft)."""
    if state.deleted:
        return DELETED
    recorded = (state.workflow or {}).get("state")
    if recorded:
        return recorded
    return PUBLISHED if state.published == state.head else DRAFT


def allowed_from(current):
    return sorted(action for action, rule in TRANSITIONS.items() if current in rule.sources)


def merge_patch(target, patch):
    """RFC 7386 JSON Merge Patch."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def summarize(patch):
    """A readable line per JSON Patch operation: 'changed answer', 'added translations.es'."""
    verbs = {"add": "added", "remove": "removed", "replace": "changed", "move": "moved", "copy": "copied"}
    return [f"{verbs.get(op['op'], op['op'])} {op['path'].lstrip('/').replace('/', '.') or '(whole document)'}"
            for op in patch]


class Editorial:
    def __init__(self, store, today=None):
        self.store = store
        self.documents = Documents(store)
        self.today = today or (lambda: datetime.datetime.now(datetime.UTC).date())

    # --- reading ---------------------------------------------------------------

    def document_state(self, type_name, id_):
        state = self.store.state(type_name, id_)
        if state is None:
            raise NotFound(f"{type_name}/{id_} does not exist.")
        return state

    def head(self, type_name, id_):
        state = self.document_state(type_name, id_)
        return state, self.store.head(type_name, id_)

    def summary(self, state):
        return {"type": state.type, "id": state.id, "state": state_of(state), "head": state.head,
                "published": state.published, "approved_revision": (state.workflow.get("approved") or {}).get("revision"),
                "publish_at": state.workflow.get("publish_at")}

    def working_set(self, type_name=None, status=None):
        summaries = [self.summary(state) for state in self.store.states(type_name)]
        return [s for s in summaries if status is None or s["state"] == status]

    def revisions(self, type_name, id_):
        state = self.document_state(type_name, id_)
        current = state_of(state)
        approved = (state.workflow.get("approved") or {}).get("revision")
        result = []
        for revision in self.store.revisions(type_name, id_):
            if revision.deleted:
                label = DELETED
            elif revision.revision == state.published:
                label = PUBLISHED
            elif revision.revision == state.head:
                label = current
            elif revision.revision == approved:
                label = APPROVED
            else:
                label = "superseded"
            result.append({"revision": revision.revision, "author": revision.actor, "at": revision.at,
                           "message": revision.message, "hash": revision.hash, "state": label})
        return result

    def revision(self, type_name, id_, number):
        found = self.store.revision(type_name, id_, number)
        if found is None:
            raise NotFound(f"{type_name}/{id_} has no revision {number}.")
        return found

    def diff(self, type_name, id_, older, newer):
        a, b = self.revision(type_name, id_, older), self.revision(type_name, id_, newer)
        patch = jsonpatch.make_patch(a.content or {}, b.content or {}).patch
        return {"from": older, "to": newer, "patch": patch, "summary": summarize(patch)}

    def audit(self, document=None, actor=None, since=None, until=None, offset=0, limit=None):
        """Every accepted change, oldest first, filtered by document ("type/id"), actor and time.
        `offset`/`limit` count changes before filtering: a page of the whole log reads only it."""
        entries = []
        for change in self.store.changes(offset, limit):
            key = f"{change.type}/{change.id}"
            at = datetime.datetime.fromisoformat(change.at.replace("Z", "+00:00"))
            if (document and key != document) or (actor and change.actor != actor) or \
                    (since and at < since) or (until and at > until):
                continue
            details = change.details or {}
            entries.append({"seq": change.seq, "at": change.at, "actor": change.actor, "role": details.get("role"),
                            "kind": change.kind, "action": details.get("action"), "document": key,
                            "from_revision": details.get("from_revision"),
                            "to_revision": details.get("to_revision", change.revision),
                            "from_state": details.get("from_state"), "to_state": details.get("to_state"),
                            "comment": details.get("comment") or change.message or None})
        return entries

    def lookup_head(self, type_name, id_):
        return self.documents.lookup_head(type_name, id_)

    def lint(self, document):
        return lint(document, self.lookup_head, self.today())

    # --- writing ---------------------------------------------------------------

    @staticmethod
    def require(key, roles, action):
        if key.role not in roles:
            raise Forbidden(f"Role '{key.role}' may not {action}; needs one of: {', '.join(sorted(roles))}.")

    def _details(self, key, **extra):
        return {"role": key.role, **{name: value for name, value in extra.items() if value is not None}}

    def _prepare(self, content, type_name, id_, revision):
        if not isinstance(content, dict):
            raise InvalidDocument(f"{type_name}/{id_}", [("", "Must be a JSON object.")])
        for name, expected in (("type", type_name), ("id", id_)):
            if content.get(name, expected) != expected:
                raise InvalidDocument(f"{type_name}/{id_}", [(name, f"Must be '{expected}', as in the URL.")])
        # The store numbers revisions and the server stamps the time; what a client sends for them is ignored.
        return {**content, "type": type_name, "id": id_, "revision": revision, "updated_at": now_iso()}

    def create(self, content, key, message=""):
        self.require(key, WRITE_ROLES, "create documents")
        type_name, id_ = (content.get("type"), content.get("id")) if isinstance(content, dict) else (None, None)
        document = self._prepare(content, type_name, id_, 1)
        if isinstance(type_name, str) and isinstance(id_, str) and type_name in TYPES and self.store.state(type_name, id_):
            raise WorkflowError(f"{type_name}/{id_} already exists; edit it with PUT or PATCH.")
        return self.documents.write(document, expected_revision=0, actor=key.name, message=message,
                                    workflow={"state": DRAFT}, details=self._details(key, to_revision=1, to_state=DRAFT))

    def replace(self, type_name, id_, content, expected_revision, key, message=""):
        self.require(key, WRITE_ROLES, "edit documents")
        state = self.document_state(type_name, id_)
        if state.deleted:
            raise NotFound(f"{type_name}/{id_} was deleted.")
        document = self._prepare(content, type_name, id_, expected_revision + 1)
        # An edit is a new draft: any approval was of other content, so review starts again.
        return self.documents.write(document, expected_revision=expected_revision, actor=key.name, message=message,
                                    workflow={"state": DRAFT},
                                    details=self._details(key, from_revision=expected_revision,
                                                          to_revision=expected_revision + 1, from_state=state_of(state),
                                                          to_state=DRAFT))

    def patch(self, type_name, id_, patch, expected_revision, key, message=""):
        self.require(key, WRITE_ROLES, "edit documents")
        if not isinstance(patch, dict):
            raise InvalidDocument(f"{type_name}/{id_}", [("", "A merge patch must be a JSON object.")])
        _, head = self.head(type_name, id_)
        if head.revision != expected_revision:
            raise Conflict(f"{type_name}/{id_}", expected_revision, head.revision)
        return self.replace(type_name, id_, merge_patch(head.content or {}, patch), expected_revision, key, message)

    def transition(self, type_name, id_, action, expected_revision, key, comment=None, publish_at=None,
                   revision=None):
        rule = TRANSITIONS[action]
        self.require(key, rule.roles, action.replace("_", " "))
        state, head = self.head(type_name, id_)
        current = state_of(state)

        def allowed(now):
            if now not in rule.sources:
                raise IllegalTransition(f"Cannot {action} a document that is {now}.", current=now,
                                        allowed=allowed_from(now))

        def still(pointers):
            # Re-checked under the store lock: another caller may have moved the state since we looked.
            allowed(state_of(self.store.state_from_pointers(type_name, id_, pointers)))

        allowed(current)
        details = self._details(key, from_revision=state.head, from_state=current, comment=comment)

        if action == "restore":
            if revision is None:
                raise Blocked("Name the revision to restore.", errors={"revision": ["Missing data for required field."]})
            old = self.revision(type_name, id_, revision)
            if old.deleted:
                raise Blocked(f"Revision {revision} is a deletion; there is nothing to restore.")
            return self.replace(type_name, id_, old.content, expected_revision, key,
                                message=comment or f"restore revision {revision}")

        if action == "request_changes" and not (comment or "").strip():
            raise Blocked("Say what needs to change: a comment is required.", errors={"comment": ["Required."]})
        if action in ("submit", "publish"):
            errors = [f for f in self.lint(head.content) if f["severity"] == "error"]
            if errors:
                raise Blocked(f"Lint errors block {action}.", findings=errors)

        changes = {}
        workflow = dict(state.workflow)
        if action == "approve":
            if head.actor == key.name:
                raise Forbidden("A reviewer cannot approve a revision they wrote.")
            workflow["approved"] = {"revision": head.revision, "hash": head.hash, "by": key.name}
        if action == "publish":
            approved = workflow.get("approved") or {}
            if approved.get("revision") != head.revision or approved.get("hash") != head.hash:
                raise Blocked("Only the approved revision can be published; review it again.",
                              approved_revision=approved.get("revision"))
            when = publish_at and datetime.datetime.fromisoformat(publish_at.replace("Z", "+00:00"))
            if when and when > datetime.datetime.now(datetime.UTC):
                workflow["publish_at"] = when.astimezone(datetime.UTC).isoformat().replace("+00:00", "Z")
                return self.documents.set_pointers(type_name, id_, expected_revision=expected_revision,
                                                   changes={"workflow": workflow}, kind="transition", actor=key.name,
                                                   message=comment or "", check=still,
                                                   details={**details, "action": "schedule", "to_state": APPROVED,
                                                            "publish_at": workflow["publish_at"]})
            changes["published"] = head.revision
            workflow["publish_at"] = None
        if action in ("unpublish", "archive"):
            changes["published"] = None
        if action == "request_changes":
            workflow["approved"] = None
        workflow["state"] = rule.target
        changes["workflow"] = workflow
        kind = {"publish": "publish", "unpublish": "unpublish"}.get(action, "transition")
        if action == "archive" and state.published:
            kind = "unpublish"  # archiving withdraws the published revision from delivery
        return self.documents.set_pointers(type_name, id_, expected_revision=expected_revision, changes=changes, kind=kind,
                                           actor=key.name, message=comment or "", check=still,
                                           details={**details, "action": action, "to_state": rule.target,
                                                    "to_revision": head.revision})

    def publish_due(self, now=None):
        """Publish every approved document whose publish_at has come. Returns the changes made."""
        from api.store.keys import ApiKey

        now = now or datetime.datetime.now(datetime.UTC)
        scheduler = ApiKey(id="scheduler", name="scheduler", role="publisher", created_at="", revoked_at=None)
        done = []
        for state in list(self.store.states()):
            due = (state.workflow or {}).get("publish_at")
            if due and state_of(state) == APPROVED and datetime.datetime.fromisoformat(due.replace("Z", "+00:00")) <= now:
                try:
                    done.append(self.transition(state.type, state.id, "publish", state.head, scheduler,
                                                comment=f"scheduled publish due {due}"))
                except WorkflowError:
                    continue  # changed since it was scheduled; the next editor action decides
        return done


def content_etag(revision):
    return f"rev-{revision.revision}-{(revision.hash or 'deleted')[:16]}"

