"""HTTP bodies of webhook subscriptions and of the offline bundle."""
from marshmallow import EXCLUDE, Schema, fields, validate

from .documents import DOCUMENT_TYPES

# scheduled_publish: a publish the scheduler made when its publish_at came (not also sent as publish).
EVENTS = ("publish", "unpublish", "delete", "scheduled_publish")
CURSOR = validate.Regexp(r"^[0-9]{1,12}$", error="Not a feed cursor.")


class SubscriptionInputSchema(Schema):
    """A webhook subscription to create: the URL, the events wanted, an optional type filter."""

    url = fields.String(required=True, validate=validate.Length(min=1, max=2000), metadata={
        "description": "http(s) URL receiving POSTs. Loopback, private and link-local addresses are refused "
                       "unless MEDKB_WEBHOOK_ALLOW names them."})
    events = fields.List(fields.String(validate=validate.OneOf(EVENTS)), validate=validate.Length(min=1), metadata={
        "description": "Events wanted; default all of them."})
    types = fields.List(fields.String(validate=validate.OneOf(DOCUMENT_TYPES)), metadata={
        "description": "Only changes to documents of these types; default every type."})
    description = fields.String(validate=validate.Length(max=200))


class SubscriptionSchema(Schema):
    """A webhook subscription and where its delivery stands."""

    id = fields.String(required=True)
    url = fields.String(required=True)
    events = fields.List(fields.String(), required=True)
    types = fields.List(fields.String(), required=True, metadata={"description": "empty: every type"})
    description = fields.String(required=True)
    created_at = fields.String(required=True)
    status = fields.String(required=True, validate=validate.OneOf(("active", "failing")), metadata={
        "description": "failing: retries gave up; nothing is sent until a replay, and nothing undelivered is lost"})
    cursor = fields.String(required=True, metadata={"description": "every change up to this feed cursor is delivered"})
    failures = fields.Integer(required=True, metadata={"description": "consecutive failed attempts"})
    next_attempt_at = fields.String(allow_none=True)
    last_error = fields.String(allow_none=True)
    queued_replays = fields.List(fields.String(), required=True)


class SubscriptionCreatedSchema(SubscriptionSchema):
    """A new subscription, with its signing secret: shown this once."""

    secret = fields.String(required=True, metadata={
        "description": "Standard Webhooks signing secret (whsec_...). Shown only in this response."})


class DeliveryAttemptSchema(Schema):
    """One delivery attempt: when, the receiver's status, latency and error."""

    at = fields.String(required=True)
    delivery_id = fields.String(required=True, metadata={"description": "the webhook-id header; replay by it"})
    event = fields.String(required=True)
    attempt = fields.Integer(required=True)
    status = fields.Integer(allow_none=True, metadata={"description": "HTTP status; null when none came"})
    latency_ms = fields.Float(required=True)
    error = fields.String(allow_none=True)
    replay = fields.Boolean(required=True)
    seq = fields.Integer()
    type = fields.String()
    id = fields.String()


class DeliveryLogQuery(Schema):
    class Meta:
        unknown = EXCLUDE

    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=1000), metadata={
        "description": "How many attempts to return, newest first."})


class ReplaySchema(Schema):
    """Deliver again from a cursor, or resume where delivery stopped."""

    since = fields.String(validate=CURSOR, metadata={
        "description": "Deliver every wanted change after this cursor again; leave out to resume where it stopped."})


class TestResultSchema(Schema):
    """How the receiver answered a signed test message."""

    status = fields.Integer(allow_none=True)
    latency_ms = fields.Float(required=True)
    error = fields.String(allow_none=True)
    ok = fields.Boolean(required=True)


class BundleSchema(Schema):
    """Every published document, with the feed cursor the set corresponds to."""

    cursor = fields.String(required=True, metadata={
        "description": "The feed cursor this bundle corresponds to: follow /v1/feed?since=<cursor> from here."})
    count = fields.Integer(required=True)
    documents = fields.List(fields.Dict(), required=True, metadata={
        "description": "Every published document, by type then id, as /v1/feed upserts carry them."})

