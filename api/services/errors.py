"""The domain's refusals. They say what is wrong and carry the facts a caller needs (the
allowed actions, the current ETag); none knows about HTTP. The web layer maps each class to a
status in one table (api/web/errors.py)."""


class DomainError(Exception):
    def __init__(self, message, **extra):
        super().__init__(message)
        self.extra = {name: value for name, value in extra.items() if value is not None}


class Forbidden(DomainError):
    """The caller's role may not do this, or a reviewer would approve their own revision."""


class IllegalTransition(DomainError):
    """The workflow does not allow this step from the document's state."""


class Blocked(DomainError):
    """Lint errors, a missing comment, or an approval that no longer matches the head."""


class Invalid(DomainError):
    """A request the domain refuses as invalid; `errors` maps each field to its messages."""

    def __init__(self, message, errors):
        super().__init__(message, errors=errors)
        self.errors = errors


class AlreadyExists(DomainError):
    """A create named a type and id that are taken."""


class Unpublished(DomainError):
    """Published documents would show unpublished ones: publishing a document whose references are
    not all published, or withdrawing one that published documents refer to."""


class StaleWrite(DomainError):
    """The document moved since the caller read it; `current_etag` is what to read again."""


class NotPublished(DomainError, LookupError):
    """No published document answers this address."""


class CursorAhead(DomainError, ValueError):
    """A feed cursor beyond the store's end: the store was reset or restored."""


class NotReady(DomainError):
    """A derived answer (the bundle) is still being prepared: ask again after `retry_after` seconds."""

    def __init__(self, message, retry_after):
        super().__init__(message)
        self.retry_after = retry_after


# The store's and the knowledge layer's refusals, named here so that callers above the services
# (the web layer, the CLI) find every domain error in one place.
from api.knowledge.documents import InvalidDocument  # noqa: E402
from api.store.records import NotFound, StorageFull, StorageUnavailable, StoreError  # noqa: E402
from api.store.storage import StoreCorrupt  # noqa: E402
from api.store.subscriptions import SubscriptionNotFound  # noqa: E402

__all__ = ["DomainError", "Forbidden", "IllegalTransition", "Blocked", "AlreadyExists", "Unpublished", "StaleWrite", "NotPublished",
           "CursorAhead", "NotReady", "Invalid", "InvalidDocument", "SubscriptionNotFound", "NotFound", "StoreError", "StoreCorrupt",
           "StorageFull", "StorageUnavailable"]
