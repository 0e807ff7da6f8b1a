"""Schemas of HTTP query strings and response bodies (documents themselves are in documents.py)."""
import datetime

from marshmallow import EXCLUDE, INCLUDE, Schema, ValidationError, fields, validate, validates

from api.services.workflow import ACTIONS, DELETED, STATES

from .documents import DOCUMENT_SCHEMAS, INCLUDES, PRODUCT_TYPES
from .fields import BCP47_PATTERN, SLUG_PATTERN, Slug

ENVELOPE = ("type", "id", "schema_version", "revision", "locale", "updated_at")

LOCALE_HELP = "Preferred locale (BCP 47); falls back to Accept-Language, then the document's own locale."


def split_names(value):
    return [name.strip() for name in value.split(",") if name.strip()]


class _NameList(fields.String):
    """A comma-separated list of names from a fixed set, e.g. `fields=name,route`."""

    def __init__(self, allowed, what, **kwargs):
        self.allowed, self.what = tuple(allowed), what
        names = "|".join(self.allowed)
        super().__init__(metadata={"description": f"Comma-separated {what}: {', '.join(self.allowed)}.",
                                   "pattern": f"^({names})(,({names}))*$"}, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        names = split_names(super()._deserialize(value, attr, data, **kwargs))
        unknown = [name for name in names if name not in self.allowed]
        if unknown:
            raise ValidationError(f"Unknown {self.what}: {', '.join(unknown)}. Allowed: {', '.join(self.allowed)}.")
        if not names:
            raise ValidationError(f"Name at least one of the {self.what}.")
        return names


class _DeliveryQuery(Schema):
    class Meta:
        unknown = EXCLUDE  # caches and proxies add their own parameters; ignoring them is harmless

    locale = fields.String(validate=validate.Regexp(BCP47_PATTERN, error="Not a BCP 47 language tag."),
                           metadata={"description": LOCALE_HELP})


def delivery_query(type_name, extra=None):
    """The query schema of a delivery endpoint for documents of `type_name`: fields, include, locale."""
    attributes = {"fields": _NameList([n for n in DOCUMENT_SCHEMAS[type_name]().fields if n != "translations"],
                                      "fields (type and id are always returned)")}
    if INCLUDES[type_name]:
        attributes["include"] = _NameList(INCLUDES[type_name], "related documents to embed under `included`")
    attributes.update(extra or {})
    name = f"{type_name.title()}Query"
    return type(name, (_DeliveryQuery,), attributes)


ProductQuery = delivery_query("product", {
    "condition": Slug(metadata={"description": "Only products treating this condition id."}),
    "drug_class": fields.String(data_key="class", validate=validate.Length(min=1, max=100), metadata={
        "description": "Only products in this class: an ATC code or prefix (B02BD), or a pharmacologic class name."}),
    "product_type": fields.String(data_key="type", validate=validate.OneOf(PRODUCT_TYPES), metadata={
        "description": "Only products of this product type."}),
})
FaqQuery = delivery_query("faq", {"product": Slug(metadata={"description": "Only FAQs about this product id."})})
ConditionQuery = delivery_query("condition")
ArticleQuery = delivery_query("article")
MechanismQuery = delivery_query("mechanism")
SourceQuery = delivery_query("source")
PersonQuery = delivery_query("person")


def included_schema(type_name):
    """The `included` object of a delivered document: each name it can embed, typed."""
    attributes = {}
    for name in INCLUDES[type_name]:
        if name == "related":
            attributes[name] = fields.List(fields.Nested(lambda: RelatedProductSchema()), metadata={
                "description": "Published related products, with the relation."})
            continue
        target, many = INCLUDES[type_name][name]
        nested = fields.Nested(lambda target=target: VIEWS[target](), allow_none=not many)
        attributes[name] = fields.List(nested) if many else nested
        attributes[name].metadata["description"] = f"The published {target}{'s' if many else ''} named by `{name}`."
    included = type(f"{type_name.title()}Included", (Schema,), attributes)
    included.__doc__ = f"Documents embedded in a {type_name} with `include=`, by name."
    return included


def view_schema(type_name):
    """A document as delivered: its schema, with only `type` and `id` guaranteed (because of
    `fields=`) and embedded documents under `included`."""
    base = DOCUMENT_SCHEMAS[type_name]

    class View(base):
        included = fields.Nested(included_schema(type_name), metadata={
            "description": "Related documents asked for with `include=`, by name."})

        def on_bind_field(self, field_name, field_obj):
            field_obj.required = field_name in ("type", "id")

    View.__name__ = View.__qualname__ = base.__name__.replace("Schema", "View")
    View.__doc__ = f"A published {type_name} as delivered (with `fields=`, only the fields asked for)."
    return View


VIEWS = {type_name: view_schema(type_name) for type_name in DOCUMENT_SCHEMAS}

SERVER_SET = ("revision", "updated_at")  # the store numbers revisions and the server stamps the time


def input_schema(type_name):
    """A document as a client sends it to create or replace: its schema, less what the server sets."""
    base = DOCUMENT_SCHEMAS[type_name]

    class Input(base):
        def on_bind_field(self, field_name, field_obj):
            if field_name in SERVER_SET:
                field_obj.required = False

    Input.__name__ = Input.__qualname__ = base.__name__.replace("Schema", "Input")
    Input.__doc__ = (f"A {type_name} as sent to create or replace it; the server sets "
                     f"{' and '.join(f'`{name}`' for name in SERVER_SET)}.")
    return Input


INPUTS = {type_name: input_schema(type_name) for type_name in DOCUMENT_SCHEMAS}


class RelatedProductSchema(Schema):
    """A related product with the relation's type, its basis and citations."""

    type = fields.String(required=True, metadata={"description": "relation type"})
    basis = fields.String(required=True, metadata={"description": "why the products are related"})
    citations = fields.List(fields.Dict(), metadata={"description": "where the relation is stated"})
    product = fields.Nested(lambda: VIEWS["product"](), required=True)


class SearchQuery(Schema):
    class Meta:
        unknown = EXCLUDE

    q = fields.String(required=True, validate=validate.Length(min=1, max=200), metadata={
        "description": "Words to find; typos are tolerated."})
    type = _NameList(("product", "mechanism_step", "mechanism_section", "faq"), "result types")
    limit = fields.Integer(load_default=10, validate=validate.Range(min=1, max=50), metadata={
        "description": "How many results to return at most."})

    @validates("q")
    def not_blank(self, value, **kwargs):
        if not value.strip():
            raise ValidationError("Must contain something to search for.")


class SearchResultSchema(Schema):
    """One search hit: what matched, where it lives, and an excerpt."""

    type = fields.String(required=True)
    id = fields.String(required=True)
    product = fields.String(required=True)
    position = fields.Integer()
    section = fields.String()
    title = fields.String(required=True)
    snippet = fields.String(required=True, metadata={"description": "HTML-escaped excerpt; matches in <mark>."})
    score = fields.Float(required=True)
    href = fields.String(required=True)


class SearchResponseSchema(Schema):
    """Search results, best first."""

    query = fields.String(required=True)
    results = fields.List(fields.Nested(SearchResultSchema), required=True)


class FeedQuery(Schema):
    class Meta:
        unknown = EXCLUDE

    since = fields.String(validate=validate.Regexp(r"^[0-9]{1,12}$", error="Not a cursor returned by this feed."),
                          metadata={"description": "next_cursor of the previous call; leave out for a full sync."})
    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=500), metadata={
        "description": "How many changes a page holds at most."})


class FeedEntrySchema(Schema):
    """One change to published content: an upsert with the document, or a tombstone."""

    seq = fields.Integer(required=True)
    op = fields.String(required=True, validate=validate.OneOf(("upsert", "delete")))
    type = fields.String(required=True)
    id = fields.String(required=True, validate=validate.Regexp(SLUG_PATTERN))
    revision = fields.Integer(metadata={"description": "the published revision (upserts)"})
    reason = fields.String(validate=validate.OneOf(("unpublished", "deleted")))
    document = fields.Dict(metadata={"description": "the published document (upserts)"})


class FeedResponseSchema(Schema):
    """A page of the change feed and the cursor to continue from."""

    changes = fields.List(fields.Nested(FeedEntrySchema), required=True)
    next_cursor = fields.String(required=True)
    has_more = fields.Boolean(required=True)


class ProblemSchema(Schema):
    """RFC 9457 problem details."""

    type = fields.String(required=True)
    title = fields.String(required=True)
    status = fields.Integer(required=True)
    detail = fields.String()
    errors = fields.Dict(metadata={"description": "messages by field, for validation problems"})
    allowed = fields.List(fields.String(), metadata={"description": "409: the transitions allowed from the state"})
    current = fields.String(metadata={"description": "409: the document's workflow state"})
    current_etag = fields.String(metadata={"description": "412/428: the ETag to send in If-Match"})
    findings = fields.List(fields.Dict(), metadata={"description": "422: the lint errors that block the step"})
    approved_revision = fields.Integer(allow_none=True, metadata={
        "description": "422: the revision that was approved, when it is no longer the head"})
    unpublished = fields.List(fields.String(), metadata={
        "description": "409 on publish: the referenced documents (type/id) that are not published"})
    referrers = fields.List(fields.String(), metadata={
        "description": "409 on unpublish or archive: the published documents (type/id) that refer to this one"})


class HealthSchema(Schema):
    """Whether the process (and, for readiness, the store and read model) is ready."""

    status = fields.String(required=True)
    documents = fields.Integer()
    change = fields.Integer()


# --- editorial ---------------------------------------------------------------

class DocumentInputSchema(Schema):
    """A whole document, as in content/. Its own schema (by `type`) validates it in the store;
    `revision` and `updated_at` are set by the server."""

    class Meta:
        unknown = INCLUDE

    type = fields.String(required=True, validate=validate.OneOf(tuple(DOCUMENT_SCHEMAS)))
    id = Slug(required=True)


class MergePatchSchema(Schema):
    """RFC 7386 JSON Merge Patch: the fields to change; null removes a field."""

    class Meta:
        unknown = INCLUDE


class WriteQuery(Schema):
    class Meta:
        unknown = EXCLUDE

    message = fields.String(load_default="", validate=validate.Length(max=2000), metadata={
        "description": "A revision message, recorded in the history and the audit log."})


def in_utc_range(value):
    """A time the workflow can store: it keeps schedules in UTC, and 9999-12-31T23:59-23:59 has none."""
    try:
        value.astimezone(datetime.UTC)
    except OverflowError:
        raise ValidationError("Out of range once converted to UTC.") from None


TRANSITION_ACTIONS = ("submit", "approve", "request_changes", "publish", "unpublish", "archive", "restore")


class TransitionSchema(Schema):
    """A workflow step to take, with what it needs."""

    action = fields.String(required=True, validate=validate.OneOf(ACTIONS), metadata={
        "description": "The workflow step to take."})
    comment = fields.String(validate=validate.Length(max=2000), metadata={"description": "required for request_changes"})
    publish_at = fields.AwareDateTime(format="iso", validate=in_utc_range,
                                      metadata={"description": "publish: schedule for this time"})
    revision = fields.Integer(strict=True, validate=validate.Range(min=1), metadata={
        "description": "restore: the revision to restore as a new draft"})


class WorkingDocumentSchema(Schema):
    """A document's workflow state: head and published revisions, approval, schedule."""

    type = fields.String(required=True)
    id = fields.String(required=True)
    state = fields.String(required=True)
    head = fields.Integer(required=True)
    published = fields.Integer(allow_none=True)
    approved_revision = fields.Integer(allow_none=True)
    publish_at = fields.String(allow_none=True)


class WorkingSetQuery(Schema):
    class Meta:
        unknown = EXCLUDE

    status = fields.String(validate=validate.OneOf((*STATES, DELETED)), metadata={
        "description": "Only documents in this workflow state."})
    type = fields.String(validate=validate.OneOf(tuple(DOCUMENT_SCHEMAS)), metadata={
        "description": "Only documents of this type."})


class EditorialDocumentSchema(Schema):
    """A document's head revision with its workflow state."""

    document = fields.Dict(required=True, allow_none=True)
    workflow = fields.Nested(WorkingDocumentSchema, required=True)


class _RevisionFacts(Schema):
    revision = fields.Integer(required=True)
    author = fields.String(required=True, metadata={"description": "name of the API key that wrote it"})
    at = fields.String(required=True)
    message = fields.String(required=True)
    hash = fields.String(allow_none=True, metadata={"description": "content hash; null for a deletion"})


class RevisionSummarySchema(_RevisionFacts):
    """A revision in a document's history, with its workflow label."""

    state = fields.String(required=True)


class RevisionSchema(_RevisionFacts):
    """One revision as it was written, with the whole document."""

    document = fields.Dict(allow_none=True)


class DiffQuery(Schema):
    class Meta:
        unknown = EXCLUDE

    from_ = fields.Integer(data_key="from", required=True, validate=validate.Range(min=1, max=10**9), metadata={
        "description": "The older revision number."})
    to = fields.Integer(required=True, validate=validate.Range(min=1, max=10**9), metadata={
        "description": "The newer revision number."})


class DiffSchema(Schema):
    """What changed between two revisions."""

    # The service names it as the contract does; `from_` is only Python's name for the field.
    from_ = fields.Integer(data_key="from", attribute="from", required=True)
    to = fields.Integer(required=True)
    patch = fields.List(fields.Dict(), required=True, metadata={"description": "RFC 6902 JSON Patch"})
    summary = fields.List(fields.String(), required=True)


class FindingSchema(Schema):
    """One lint finding: the rule, its severity and the field it concerns."""

    rule = fields.String(required=True)
    severity = fields.String(required=True, validate=validate.OneOf(("error", "warning")))
    field = fields.String(required=True)
    message = fields.String(required=True)


class LintSchema(Schema):
    """Lint findings on a document's head revision."""

    findings = fields.List(fields.Nested(FindingSchema), required=True)
    errors = fields.Integer(required=True)
    warnings = fields.Integer(required=True)


class AuditQuery(Schema):
    class Meta:
        unknown = EXCLUDE

    document = fields.String(validate=validate.Regexp(r"^[a-z]+/[a-z0-9]+(?:-[a-z0-9]+)*$", error="Use type/id."),
                             metadata={"description": "Only changes to this document, as type/id."})
    actor = fields.String(validate=validate.Length(min=1, max=64), metadata={
        "description": "Only changes made with API keys of this name."})
    since = fields.AwareDateTime(format="iso", metadata={"description": "Only changes at or after this time."})
    until = fields.AwareDateTime(format="iso", metadata={"description": "Only changes at or before this time."})


class AuditEntrySchema(Schema):
    """One accepted change: who (key name and id, role), what, when, and why."""

    seq = fields.Integer(required=True)
    at = fields.String(required=True)
    actor = fields.String(required=True, metadata={"description": "the name of the API key"})
    key_id = fields.String(allow_none=True, metadata={
        "description": "the API key's stable id: tells apart keys that once had the same name"})
    role = fields.String(allow_none=True)
    kind = fields.String(required=True)
    action = fields.String(allow_none=True)
    document = fields.String(required=True)
    from_revision = fields.Integer(allow_none=True)
    to_revision = fields.Integer(allow_none=True)
    from_state = fields.String(allow_none=True)
    to_state = fields.String(allow_none=True)
    comment = fields.String(allow_none=True)
