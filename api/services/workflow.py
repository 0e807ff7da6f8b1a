"""Editorial workflow: drafting, history, review and publication, as an explicit state machine.

No Flask here. Every change goes through the store, which records it in the change sequence with
who did it, in what role, from and to which revision and state, and why: that is the audit log.
Each transition is checked again under the store's lock, so of two racing callers exactly one wins.

TRANSITIONS is the whole state machine: for each action, the states it starts from, the state it
ends in, the roles that may take it, the guards that must pass and the effect on the document's
pointers. Actions, states and roles everywhere else (HTTP schemas, the CLI) derive from it.
"""
import datetime
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Callable

import jsonpatch

from schemas import DOCUMENT_TYPES as TYPES

from api.knowledge.documents import references
from api.services.errors import (AlreadyExists, Blocked, DomainError, Forbidden, IllegalTransition, StaleWrite,
                                 Unpublished)
from api.services.lint import faq_position_finding, lint, ordered
from api.knowledge.documents import InvalidDocument
from api.services.documents import Documents
from api.store.clock import iso, now_iso
from api.store.keys import ROLES, ApiKey
from api.store.indexes import TITLE_FIELDS, title_of, workflow_state  # noqa: F401 (for the console)
from api.store.readmodel import ReadModel
from api.store.store import Conflict, NotFound

DRAFT, IN_REVIEW, APPROVED, PUBLISHED, UNPUBLISHED, ARCHIVED, DELETED = (
    "draft", "in_review", "approved", "published", "unpublished", "archived", "deleted")
STATES = (DRAFT, IN_REVIEW, APPROVED, PUBLISHED, UNPUBLISHED, ARCHIVED)
AUTHORS, REVIEWERS, PUBLISHERS = frozenset({"author", "admin"}), frozenset({"reviewer", "admin"}), \
    frozenset({"publisher", "admin"})
assert AUTHORS | REVIEWERS | PUBLISHERS == set(ROLES)


@dataclass
class Step:
    """What a transition works on: the document as it is, who asks, and what they sent."""

    action: str
    state: object  # the store's DocumentState
    head: object  # the head Revision
    key: ApiKey
    comment: str | None
    publish_at: str | None
    workflow: dict = field(default_factory=dict)  # the new workflow record, built by the effect
    pointers: dict = field(default_factory=dict)  # pointer changes, built by the effect
    kind: str = "transition"  # how the change sequence records it (publish/unpublish feed the public feed)


# --- guards: raise to refuse ----------------------------------------------------

def needs_comment(editorial, step):
    if not (step.comment or "").strip():
        raise Blocked("Say what needs to change: a comment is required.", errors={"comment": ["Required."]})


def lint_clean(editorial, step):
    errors = [finding for finding in editorial.lint(step.head.content) if finding["severity"] == "error"]
    if errors:
        raise Blocked(f"Lint errors block {step.action}.", findings=errors)


def not_own_revision(editorial, step):
    if step.head.actor == step.key.name:
        raise Forbidden("A reviewer cannot approve a revision they wrote.")


def references_published(editorial, step):
    """A published document shows only published documents: everything it refers to must be."""
    own = (step.state.type, step.state.id)
    missing = sorted({f"{t}/{i}" for _, t, i in references(step.head.content)
                      if (t, i) != own and editorial.published.get(t, i) is None})
    if missing:
        raise Unpublished(f"Publish what this document refers to first: {', '.join(missing)}.", unpublished=missing)


def not_referred_to(editorial, step):
    """Withdrawing a document that published documents still show would leave them pointing at nothing."""
    if step.state.published:
        referrers = editorial.published.referrers(step.state.type, step.state.id)
        if referrers:
            raise Unpublished(f"Published documents refer to this one: {', '.join(referrers)}. "
                              "Edit or unpublish them first.", referrers=referrers)


def approved_is_head(editorial, step):
    approved = step.state.workflow.get("approved") or {}
    if approved.get("revision") != step.head.revision or approved.get("hash") != step.head.hash:
        raise Blocked("Only the approved revision can be published; review it again.",
                      approved_revision=approved.get("revision"))


# --- effects: pointer and workflow changes ------------------------------------------

def record_approval(step):
    step.workflow["approved"] = {"revision": step.head.revision, "hash": step.head.hash, "by": step.key.name,
                                 "key_id": step.key.id}


def drop_approval(step):
    step.workflow["approved"] = None


def publish_now_or_schedule(step):
    when = step.publish_at and datetime.datetime.fromisoformat(step.publish_at.replace("Z", "+00:00"))
    if when and when > datetime.datetime.now(datetime.UTC):
        step.workflow["publish_at"] = when.astimezone(datetime.UTC).isoformat().replace("+00:00", "Z")
        return APPROVED  # scheduled: the document waits, approved, for the scheduler
    step.pointers["published"] = step.head.revision
    step.workflow["publish_at"] = None
    step.kind = "publish"
    return None


def withdraw(step):
    if step.state.published:
        step.pointers["published"] = None
        step.kind = "unpublish"  # archiving a published document withdraws it from delivery too


@dataclass(frozen=True)
class Transition:
    sources: frozenset
    target: str | None  # None: restore writes a new draft revision instead of moving pointers
    roles: frozenset
    guards: tuple[Callable, ...] = ()
    effect: Callable | None = None  # may return a different target (a scheduled publish stays approved)
    # Guards on what other documents are published: run again under the store's lock, where
    # no other publish can slip in between the check and the commit.
    locked_guards: tuple[Callable, ...] = ()


TRANSITIONS = {
    "submit": Transition(frozenset({DRAFT}), IN_REVIEW, AUTHORS, (lint_clean,)),
    "approve": Transition(frozenset({IN_REVIEW}), APPROVED, REVIEWERS, (not_own_revision,), record_approval),
    "request_changes": Transition(frozenset({IN_REVIEW}), DRAFT, REVIEWERS, (needs_comment,), drop_approval),
    "publish": Transition(frozenset({APPROVED}), PUBLISHED, PUBLISHERS, (lint_clean, approved_is_head),
                          publish_now_or_schedule, (references_published,)),
    "unpublish": Transition(frozenset({PUBLISHED}), UNPUBLISHED, PUBLISHERS, (), withdraw, (not_referred_to,)),
    "archive": Transition(frozenset({DRAFT, PUBLISHED, UNPUBLISHED}), ARCHIVED, PUBLISHERS, (), withdraw,
                          (not_referred_to,)),
    "restore": Transition(frozenset(STATES), None, AUTHORS),
}
ACTIONS = tuple(TRANSITIONS)
WRITE_ROLES = AUTHORS


def state_of(state):
    """The workflow state of a store DocumentState: the rule the store's index also keeps."""
    return workflow_state(state.deleted, state.workflow, state.published, state.head)


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
    def __init__(self, store, published=None, today=None):
        """published: the read model of published documents (with its reference index), shared
        with delivery in the app; one of its own otherwise."""
        self.store = store
        self._published = published
        self.documents = Documents(store)
        self.today = today or (lambda: datetime.datetime.now(datetime.UTC).date())

    @property
    def published(self):
        # Built when first needed: the scheduler's process needs it only when something falls due.
        if self._published is None:
            self._published = ReadModel(self.store, references=references)
        return self._published

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
        """Every document with its workflow state, by type and id, as a sequence whose pages
        are read from the store's index: a page costs the same at 100 or 100,000 documents."""
        return Listing(lambda: self.store.index().count_documents(type_name=type_name, state=status),
                       lambda offset, limit: [working_summary(row) for row in self.store.index().documents(
                           offset, limit, type_name=type_name, state=status)])

    def list_documents(self, offset=0, limit=None, order="type, id", **conditions):
        """Index rows of documents (summary, title, author of the head, time), filtered: see
        Indexes.documents. What the console's queues and choices list."""
        return self.store.index().documents(offset, limit, order, **conditions)

    def count_documents(self, **conditions):
        return self.store.index().count_documents(**conditions)

    def listed(self, type_name, id_):
        """One document's index row, or None."""
        return self.store.index().document(type_name, id_)

    def revisions(self, type_name, id_):
        """Every revision, oldest first, with its workflow label, as a sequence whose pages read
        only their own revision files."""
        state = self.document_state(type_name, id_)
        return Listing(lambda: state.head,
                       lambda offset, limit: [self._revision_summary(state, number) for number in
                                              range(offset + 1, min(state.head, offset + limit) + 1)])

    def _revision_summary(self, state, number):
        revision = self.store.revision(state.type, state.id, number)
        approved = (state.workflow.get("approved") or {}).get("revision")
        if revision.deleted:
            label = DELETED
        elif number == state.published:
            label = PUBLISHED
        elif number == state.head:
            label = state_of(state)
        elif number == approved:
            label = APPROVED
        else:
            label = "superseded"
        return {"revision": number, "author": revision.actor, "at": revision.at, "message": revision.message,
                "hash": revision.hash, "state": label}

    def revision(self, type_name, id_, number):
        found = self.store.revision(type_name, id_, number)
        if found is None:
            raise NotFound(f"{type_name}/{id_} has no revision {number}.")
        return found

    def diff(self, type_name, id_, older, newer):
        a, b = self.revision(type_name, id_, older), self.revision(type_name, id_, newer)
        patch = jsonpatch.make_patch(a.content or {}, b.content or {}).patch
        return {"from": older, "to": newer, "patch": patch, "summary": summarize(patch)}

    def audit(self, document=None, actor=None, since=None, until=None, offset=0, limit=None, newest_first=False):
        """Accepted changes, oldest first (or newest), filtered by document ("type/id"), actor and
        time, from the store's index of changes: a page reads only its own entries."""
        return [audit_entry(change) for change in self.store.index().changes(
            offset, limit, newest_first, **_audit_conditions(document, actor, since, until))]

    def audit_log(self, document=None, actor=None, since=None, until=None):
        """The audit log as a sequence to page through."""
        conditions = _audit_conditions(document, actor, since, until)
        return Listing(lambda: self.store.index().count_changes(**conditions),
                       lambda offset, limit: self.audit(document, actor, since, until, offset, limit))

    def lookup_head(self, type_name, id_):
        return self.documents.lookup_head(type_name, id_)

    def lint(self, document):
        findings = lint(document, self.lookup_head, self.today())
        position = self._faq_position(document)
        if position:
            findings = ordered([*findings, position])
        return findings

    def _faq_position(self, document):
        """faq.position for an FAQ among its product's published FAQs, as readers would see them
        once it is published; from the read model's reference index, so a product's FAQs only."""
        product, position = document.get("product"), document.get("position")
        if document.get("type") != "faq" or not isinstance(product, str) or not isinstance(position, int):
            return None
        others = [faq.document for faq in self.published.referring("product", product, "faq", "product")
                  if faq.document["id"] != document.get("id")]
        return faq_position_finding(product, [*others, document])

    def lint_report(self, type_name, id_):
        """The lint findings on the head revision, with counts by severity."""
        _, head = self.head(type_name, id_)
        if head.deleted:
            raise NotFound(f"{type_name}/{id_} was deleted.")
        findings = self.lint(head.content)
        return {"findings": findings, "errors": sum(f["severity"] == "error" for f in findings),
                "warnings": sum(f["severity"] == "warning" for f in findings)}

    # --- writing ---------------------------------------------------------------

    @staticmethod
    def require(key, roles, action):
        if key.role not in roles:
            raise Forbidden(f"Role '{key.role}' may not {action}; needs one of: {', '.join(sorted(roles))}.")

    def _details(self, key, **extra):
        return {"role": key.role, "key_id": key.id,
                **{name: value for name, value in extra.items() if value is not None}}

    def _stale_with_etag(self, write, *args, **kwargs):
        """Run a store write; a stale expected revision becomes StaleWrite carrying the ETag to read again."""
        try:
            return write(*args, **kwargs)
        except Conflict as error:
            if error.expected == 0:
                raise AlreadyExists(f"{error.key} already exists; edit it with PUT or PATCH.") from None
            head = self.store.head(*error.key.split("/", 1))
            raise StaleWrite(f"{error}. Fetch it again and reapply your change.",
                             current_etag=content_etag(head)) from None

    def written(self, change):
        """The workflow state and the revision a write made: the revision by its number, which no
        later writer can change, so a caller is shown exactly what it wrote."""
        state = self.document_state(change.type, change.id)
        return state, self.revision(change.type, change.id, change.revision)

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
            raise AlreadyExists(f"{type_name}/{id_} already exists; edit it with PUT or PATCH.")
        return self._stale_with_etag(self.documents.write, document, expected_revision=0, actor=key.name, message=message,
                                workflow={"state": DRAFT}, details=self._details(key, to_revision=1, to_state=DRAFT))

    def replace(self, type_name, id_, content, expected_revision, key, message=""):
        self.require(key, WRITE_ROLES, "edit documents")
        state = self.document_state(type_name, id_)
        if state.deleted:
            raise NotFound(f"{type_name}/{id_} was deleted.")
        document = self._prepare(content, type_name, id_, expected_revision + 1)
        # An edit is a new draft: any approval was of other content, so review starts again.
        return self._stale_with_etag(self.documents.write, document, expected_revision=expected_revision, actor=key.name, message=message,
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
            raise StaleWrite(f"{type_name}/{id_} is at revision {head.revision}, not {expected_revision}. "
                             "Fetch it again and reapply your change.", current_etag=content_etag(head))
        return self.replace(type_name, id_, merge_patch(head.content or {}, patch), expected_revision, key, message)

    def transition(self, type_name, id_, action, expected_revision, key, comment=None, publish_at=None,
                   revision=None):
        rule = TRANSITIONS[action]
        self.require(key, rule.roles, action.replace("_", " "))
        state, head = self.head(type_name, id_)
        current = state_of(state)
        self._allowed(action, current)
        if action == "restore":
            return self._restore(type_name, id_, expected_revision, key, comment, revision)
        step = Step(action, state, head, key, comment, publish_at, workflow=dict(state.workflow))
        for guard in rule.guards:
            guard(self, step)
        target = (rule.effect(step) if rule.effect else None) or rule.target
        step.workflow["state"] = target
        step.pointers["workflow"] = step.workflow
        locked_guards = rule.locked_guards if target != APPROVED else ()  # a scheduled publish checks when due
        for guard in locked_guards:
            guard(self, step)

        def still_allowed(pointers):
            # Re-checked under the store lock: another caller may have moved the state since we looked.
            self._allowed(action, state_of(self.store.state_from_pointers(type_name, id_, pointers)))
            if locked_guards:
                self.published.refresh(force=True)
                for guard in locked_guards:
                    guard(self, step)

        recorded = "schedule" if action == "publish" and target == APPROVED else action
        details = self._details(key, action=recorded, from_revision=state.head, from_state=current, to_state=target,
                                to_revision=head.revision, comment=comment,
                                publish_at=step.workflow.get("publish_at") if recorded == "schedule" else None)
        return self._stale_with_etag(self.documents.set_pointers, type_name, id_, expected_revision=expected_revision,
                                     changes=step.pointers, kind=step.kind, actor=key.name, message=comment or "",
                                     check=still_allowed, details=details)

    @staticmethod
    def _allowed(action, current):
        if current not in TRANSITIONS[action].sources:
            raise IllegalTransition(f"Cannot {action} a document that is {current}.", current=current,
                                    allowed=allowed_from(current))

    def _restore(self, type_name, id_, expected_revision, key, comment, revision):
        if revision is None:
            raise Blocked("Name the revision to restore.", errors={"revision": ["Missing data for required field."]})
        old = self.revision(type_name, id_, revision)
        if old.deleted:
            raise Blocked(f"Revision {revision} is a deletion; there is nothing to restore.")
        return self.replace(type_name, id_, old.content, expected_revision, key,
                            message=comment or f"restore revision {revision}")

    def publish_due(self, now=None):
        """Publish every approved document whose publish_at has come, found in the store's index
        of due times (no document is read unless it is due). Returns the changes made."""
        now = now or datetime.datetime.now(datetime.UTC)
        scheduler = ApiKey(id="scheduler", name="scheduler", role="publisher", created_at="", revoked_at=None)
        done = []
        for row in self.store.index().due(iso(now)):
            try:
                done.append(self.transition(row["type"], row["id"], "publish", row["head"], scheduler,
                                            comment=f"scheduled publish due {row['publish_at']}"))
            except (DomainError, NotFound):
                continue  # changed since it was scheduled; the next editor action decides
        return done

    def next_due(self):
        """When the next scheduled publish falls due (an ISO time), or None."""
        due = self.store.index().next_due()
        return datetime.datetime.fromisoformat(due.replace("Z", "+00:00")) if due else None


class Scheduler:
    """Scheduled publishing, one `tick()` a second beside the server. An idle tick costs one
    stat() of head.json: the due times are asked of the store's index again only when a commit
    has landed (anything may have been scheduled or unscheduled) or the earliest one comes."""

    def __init__(self, editorial):
        self.editorial = editorial
        self._stamp = object()  # nothing seen yet: the first tick asks
        self._next_due = None

    def tick(self, now=None):
        """Publish what is due now. Returns the changes made."""
        now = now or datetime.datetime.now(datetime.UTC)
        stamp = self.editorial.store.head_stamp()
        if stamp == self._stamp and (self._next_due is None or self._next_due > now):
            return []
        done = self.editorial.publish_due(now)
        # The stamp read before asking: a commit landing meanwhile makes the next tick ask again.
        self._stamp, self._next_due = stamp, self.editorial.next_due()
        return done


class Listing(Sequence):
    """A list read a page at a time: its length is one count, a slice reads only what it holds.
    What @blp.paginate pages through."""

    def __init__(self, count, page):
        self._count, self._page, self._length = count, page, None

    def __len__(self):
        if self._length is None:
            self._length = self._count()
        return self._length

    def __getitem__(self, index):
        if not isinstance(index, slice):
            position = range(len(self))[index]  # IndexError past either end, as a list
            return self._page(position, 1)[0]
        start, stop, step = index.indices(len(self))
        items = self._page(start, stop - start) if stop > start else []
        return items[::step] if step != 1 else items

    def __iter__(self):
        return iter(self[:])  # one read for all, not one per item


def _audit_conditions(document, actor, since, until):
    type_name, id_ = document.split("/", 1) if document else (None, None)
    return {"type_name": type_name, "id_": id_, "actor": actor, "since": _bound(since), "until": _bound(until)}


def _bound(moment):
    """A time filter as text the index compares with; a time at the edge of the calendar whose
    UTC is out of datetime's range (0001-01-01T00:00+01:00) stands for that edge."""
    if moment is None:
        return None
    try:
        return iso(moment)
    except OverflowError:
        return "0000-01-01T00:00:00.000000Z" if moment.year == 1 else "9999-12-31T23:59:59.999999Z"


def working_summary(row):
    return {name: row[name] for name in ("type", "id", "state", "head", "published", "approved_revision",
                                         "publish_at")}


def audit_entry(change):
    details = change.details or {}
    return {"seq": change.seq, "at": change.at, "actor": change.actor, "key_id": details.get("key_id"),
            "role": details.get("role"), "kind": change.kind, "action": details.get("action"),
            "document": f"{change.type}/{change.id}", "from_revision": details.get("from_revision"),
            "to_revision": details.get("to_revision", change.revision), "from_state": details.get("from_state"),
            "to_state": details.get("to_state"), "comment": details.get("comment") or change.message or None}


def content_etag(revision):
    return f"rev-{revision.revision}-{(revision.hash or 'deleted')[:16]}"

