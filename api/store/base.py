"""What every store backend answers: the file store (store.py) and PostgreSQL (postgres.py).

Callers above the store (services, read models, the CLI) use only these methods and the
attributes `root` (a local folder: with PostgreSQL, what a node keeps or derives for itself) and
`commits` (how many commits this object made: a process reads its own writes at once).
"""
from abc import ABC, abstractmethod
from contextlib import AbstractContextManager

from api.store.records import Commit, Conflict, DocumentState, NotFound, Unpublishable


class StoreBackend(ABC):
    state_from_pointers = staticmethod(DocumentState.from_pointers)
    read_only = False  # True for a file store on a read-only file system: it reads, verifies and exports

    @abstractmethod
    def last_seq(self):
        """The number of the last committed change (0 for an empty store)."""

    @abstractmethod
    def head_stamp(self):
        """A value that changes whenever a commit lands: the cheap 'did anything move?' check."""

    @abstractmethod
    def state(self, type_name, id_):
        """The document's DocumentState, or None."""

    @abstractmethod
    def revision(self, type_name, id_, number):
        """One Revision, or None."""

    @abstractmethod
    def revisions(self, type_name, id_):
        """Every Revision, oldest first ([] for an unknown document)."""

    @abstractmethod
    def head(self, type_name, id_):
        """The latest Revision (a draft, the published one, or a deletion tombstone), or None."""

    @abstractmethod
    def published(self, type_name, id_):
        """The published Revision, or None."""

    @abstractmethod
    def keys(self, type_name=None):
        """(type, id) of every document, by type (in DOCUMENT_TYPES order), then id."""

    @abstractmethod
    def entries(self, type_name=None):
        """(state, head revision, published revision or None) of every document, in keys() order."""

    def entries_of(self, keys):
        """entries() of the documents named in `keys`, (type, id) pairs, in that order; those that
        do not exist are left out."""
        for type_name, id_ in keys:
            state = self.state(type_name, id_)
            if state:
                yield state, self.head(type_name, id_), self.published(type_name, id_) if state.published else None

    @abstractmethod
    def states(self, type_name=None):
        """The DocumentState of every document, in keys() order."""

    @abstractmethod
    def changes(self, since=0, limit=None):
        """Committed Changes with seq > since, in order, at most `limit`."""

    @abstractmethod
    def publications(self, since=0, until=None):
        """Committed publish/unpublish/delete Changes with since < seq <= until (default: the last)."""

    @abstractmethod
    def writing(self) -> AbstractContextManager:
        """Hold the writers' lock (re-entrant, shared by every process and node). Whatever is read
        inside is what a commit made inside will be checked against."""

    @abstractmethod
    def commit(self, commit: Commit):
        """Persist one already-validated change; returns its Change once it is durable."""

    @abstractmethod
    def verify(self):
        """Every revision's hash and number, every pointer, and the change sequence: a list of problems."""

    def close(self):
        """Let go of what the store holds open (connections); the file store holds nothing."""

    def identity(self):
        """What tells one store from another (the search index checks it was built for this one)."""
        from api.store.searchindex import store_identity

        return store_identity(self.layout)

    @property
    def location(self):
        """Where the store is, for messages: its folder, or its database (without a password)."""
        return str(self.root)

    def api_keys(self):
        """The API keys that go with this store: keys.json in its folder, for the file store."""
        from api.store.keys import KeyStore

        return KeyStore(self.root)

    def webhook_subscriptions(self):
        """Webhook subscriptions and their delivery state: files under its folder, for the file store."""
        from api.store.subscriptions import Subscriptions

        return Subscriptions(self.root)

    def console_sessions(self):
        """The editorial console's sign-in sessions: files under its folder, for the file store."""
        from api.store.sessions import SessionStore

        return SessionStore(self.root / "console-sessions")

    def check_commit(self, commit: Commit, pointers):
        """Refuse a commit the document's committed `pointers` ({} if new) do not allow: called
        under the writers' lock, before anything is written."""
        key = f"{commit.type}/{commit.id}"
        head = pointers.get("head", 0)
        if not pointers and not commit.adds_revision:
            raise NotFound(f"{key} does not exist.")
        if commit.expected_revision is not None and commit.expected_revision != head:
            raise Conflict(key, commit.expected_revision, head)
        target = commit.pointers.get("published")
        if isinstance(target, int):
            found = self.revision(commit.type, commit.id, target)
            if found is None or found.deleted:
                raise Unpublishable(f"{key} has no revision {target} to publish.")
        if commit.check is not None:
            commit.check(dict(pointers))
