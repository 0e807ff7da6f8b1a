"""The one definition of every knowledge-base document.

The store, the API, `medkb validate` and the generated JSON/OpenAPI schemas all
use these classes. Schemas only validate: documents are kept exactly as written
(`schema.validate(doc)`), never round-tripped through load/dump, so an import
followed by an export gives back the same bytes.
"""
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from .fields import (
    Choice,
    Citations,
    CitedStatementSchema,
    HttpUrl,
    Locale,
    Markdown,
    PartialDate,
    Pattern,
    Slug,
    Text,
    Verification,
    positions_are_contiguous,
)

# Bump when the stored format changes, and register a migration from the
# previous version in api/migrations.py.
CURRENT_SCHEMA_VERSION = 2
DEFAULT_LOCALE = "en-US"
# Identity and references are the same in every language; only words are translated.
UNTRANSLATABLE = ("type", "id", "schema_version", "revision", "locale", "updated_at", "translations",
                  "product", "about", "author", "medical_reviewer", "mechanism", "faqs", "sources", "conditions",
                  "position")


class DocumentSchema(Schema):
    """The envelope every document shares."""

    type_name = None  # set by each document type

    type = fields.String(required=True)
    id = Slug(required=True)
    schema_version = fields.Integer(
        required=True, strict=True, validate=validate.Equal(CURRENT_SCHEMA_VERSION, error="Must be {other}.")
    )
    revision = fields.Integer(required=True, strict=True, validate=validate.Range(min=1))
    locale = Locale(required=True)
    updated_at = fields.AwareDateTime(format="iso", required=True, error_messages={
        "invalid": "Not an ISO 8601 date-time with a time zone (like 2026-04-02T00:00:00Z).",
        "invalid_awareness": "Not an ISO 8601 date-time with a time zone (like 2026-04-02T00:00:00Z).",
    })
    translations = fields.Dict(keys=Locale(), values=fields.Dict(), metadata={
        "description": "By locale, the fields that differ in that language; each translation must make a "
                       "valid document when laid over this one."})

    @validates_schema
    def type_matches(self, data, **kwargs):
        if data.get("type") != self.type_name:
            raise ValidationError(f"Must be '{self.type_name}'.", "type")

    @validates_schema(pass_original=True)
    def translations_are_valid(self, data, original_data, **kwargs):
        translations = original_data.get("translations")
        if not isinstance(translations, dict):
            return
        errors = {}
        for locale, overrides in translations.items():
            if not isinstance(overrides, dict):
                continue  # the field itself reports it
            if locale == original_data.get("locale"):
                errors[locale] = ["Is the document's own locale."]
                continue
            fixed = [name for name in overrides if name in UNTRANSLATABLE]
            if fixed:
                errors[locale] = {name: ["Cannot differ between translations."] for name in fixed}
                continue
            merged = {key: value for key, value in original_data.items() if key != "translations"}
            problems = type(self)().validate({**merged, **overrides})
            problems = {name: messages for name, messages in problems.items() if name in overrides}
            if problems:
                errors[locale] = problems
        if errors:
            raise ValidationError(errors, "translations")


# --- product ---------------------------------------------------------------

PRODUCT_TYPES = ("gene_therapy", "recombinant_factor", "monoclonal_antibody")
RELATION_TYPES = ("same_condition", "same_class", "alternative_mechanism", "also_looked_for")
CLASS_SYSTEMS = ("atc", "pharmacologic")
ROUTES = ("intravenous", "subcutaneous")


class ProductClassSchema(Schema):
    system = Choice(CLASS_SYSTEMS, required=True)
    code = fields.String(validate=Pattern(r"^[A-Z][0-9]{2}[A-Z]{2}[0-9]{2}$|^[A-Z][0-9]{2}[A-Z]{0,2}$", error="Not an ATC code."))
    name = Text(metadata={"description": "required for pharmacologic classes; optional for ATC, whose code is the name"})
    citations = Citations(required=False)
    verification = Verification()

    @validates_schema
    def identified(self, data, **kwargs):
        if data.get("system") == "atc" and not data.get("code"):
            raise ValidationError("An ATC class needs its code.", "code")
        if data.get("system") == "pharmacologic" and not data.get("name"):
            raise ValidationError("A pharmacologic class needs its name.", "name")


class OrganisationRoleSchema(Schema):
    name = Text(required=True)
    role = Choice(("marketing_authorisation_holder", "marketer", "developer", "manufacturer"), required=True)
    region = Text(max_length=100)
    citations = Citations(required=False)
    verification = Verification()


class ApprovalSchema(Schema):
    # authority and kind are optional: sources often state only "approved in the EU".
    authority = Text(max_length=100)
    region = Text(max_length=100, required=True)
    date = PartialDate(required=True)
    kind = Choice(("full", "conditional", "accelerated"))
    citations = Citations()
    verification = Verification()


class DosingSchema(CitedStatementSchema):
    population = Text(max_length=200)


class PackageVariantSchema(Schema):
    name = Text(required=True)
    weight_min_kg = fields.Integer(strict=True, validate=validate.Range(min=1, max=500))
    weight_max_kg = fields.Integer(strict=True, validate=validate.Range(min=1, max=500))
    description = Markdown(max_length=2000)
    citations = Citations(required=False)

    @validates_schema
    def band_is_ordered(self, data, **kwargs):
        low, high = data.get("weight_min_kg"), data.get("weight_max_kg")
        if low is not None and high is not None and low > high:
            raise ValidationError("Must not be below weight_min_kg.", "weight_max_kg")


class RiskSchema(Schema):
    name = Text(max_length=200, required=True)
    description = Markdown(max_length=5000, required=True)
    citations = Citations()
    verification = Verification()


class IdentifierSchema(Schema):
    system = Choice(("rxcui", "unii", "ndc", "atc", "ema_product_number"), required=True)
    value = Text(max_length=100, required=True)


class RelationSchema(Schema):
    product = Slug(required=True, metadata={"description": "id of the related `product`"})
    type = Choice(RELATION_TYPES, required=True)
    basis = Markdown(max_length=1000, required=True, metadata={"description": "why the relation holds; never a claim of equivalence"})
    citations = Citations(required=False)


class ProductSchema(DocumentSchema):
    type_name = "product"

    name = Text(max_length=200, required=True, metadata={"description": "brand name"})
    non_proprietary_name = Text(max_length=200, required=True)
    development_code = Text(max_length=50)
    product_type = Choice(PRODUCT_TYPES, required=True)
    summary = Markdown(max_length=2000, required=True)
    how_it_works = fields.Nested(CitedStatementSchema, required=True)
    classes = fields.List(fields.Nested(ProductClassSchema), required=True, validate=validate.Length(min=1))
    organisations = fields.List(fields.Nested(OrganisationRoleSchema))
    approvals = fields.List(fields.Nested(ApprovalSchema))
    dosage_form = Text(max_length=200)
    route = Choice(ROUTES, required=True)
    dosing = fields.List(fields.Nested(DosingSchema))
    package_variants = fields.List(fields.Nested(PackageVariantSchema))
    key_risks = fields.List(fields.Nested(RiskSchema))
    conditions = fields.List(Slug(), required=True, validate=validate.Length(min=1))
    identifiers = fields.List(fields.Nested(IdentifierSchema))
    related = fields.List(fields.Nested(RelationSchema))

    @validates_schema
    def relations_are_distinct(self, data, **kwargs):
        pairs = [(r.get("product"), r.get("type")) for r in data.get("related") or []]
        if len(pairs) != len(set(pairs)):
            raise ValidationError("Each (product, type) relation may appear once.", "related")
        if any(product == data.get("id") for product, _ in pairs):
            raise ValidationError("A product cannot be related to itself.", "related")


# --- condition -------------------------------------------------------------


class TreatmentApproachSchema(CitedStatementSchema):
    name = Text(max_length=200, required=True)


class ConditionSchema(DocumentSchema):
    type_name = "condition"

    name = Text(max_length=200, required=True)
    synonyms = fields.List(Text(max_length=200))
    summary = Markdown(max_length=5000, required=True)
    cause = fields.Nested(CitedStatementSchema, required=True)
    gene = Text(max_length=50, required=True)
    protein = Text(max_length=100)
    inheritance = Choice(("x_linked_recessive", "autosomal_dominant", "autosomal_recessive", "acquired"), required=True)
    treatment_approaches = fields.List(fields.Nested(TreatmentApproachSchema))


# --- mechanism -------------------------------------------------------------


class StepSchema(Schema):
    position = fields.Integer(required=True, strict=True, validate=validate.Range(min=1))
    title = Text(max_length=200, required=True)
    body = Markdown(required=True)
    citations = Citations()


class SectionSchema(Schema):
    key = Slug(required=True)
    title = Text(max_length=200, required=True)
    placement = Choice(("before_steps", "after_steps"), required=True)
    body = Markdown(required=True)
    citations = Citations()


class MechanismSchema(DocumentSchema):
    type_name = "mechanism"

    product = Slug(required=True, metadata={"description": "id of the `product` this explains"})
    title = Text(max_length=200, required=True)
    summary = Markdown(max_length=2000, required=True)
    steps = fields.List(fields.Nested(StepSchema), required=True, validate=validate.Length(min=1))
    sections = fields.List(fields.Nested(SectionSchema))

    @validates_schema
    def steps_are_ordered(self, data, **kwargs):
        problem = positions_are_contiguous(data.get("steps") or [], "Step")
        if problem:
            raise ValidationError(problem, "steps")
        keys = [s.get("key") for s in data.get("sections") or []]
        if len(keys) != len(set(keys)):
            raise ValidationError("Section keys must be unique.", "sections")


# --- faq -------------------------------------------------------------------


class FaqSchema(DocumentSchema):
    type_name = "faq"

    product = Slug(required=True, metadata={"description": "id of the `product` the question is about"})
    position = fields.Integer(required=True, strict=True, validate=validate.Range(min=1))
    question = Text(max_length=300, required=True)
    answer = Markdown(max_length=5000, required=True)
    citations = Citations()


# --- article ---------------------------------------------------------------


class PublisherSchema(Schema):
    name = Text(max_length=200, required=True)
    url = HttpUrl()


class ArticleSchema(DocumentSchema):
    type_name = "article"

    headline = Text(max_length=200, required=True)
    summary = Markdown(max_length=2000, required=True)
    about = Slug(required=True, metadata={"description": "id of the `product` the article explains"})
    author = Slug(required=True, metadata={"description": "id of a `person`"})
    medical_reviewer = Slug(metadata={"description": "id of a `person`"})
    publisher = fields.Nested(PublisherSchema, required=True)
    date_published = fields.Date()
    date_modified = fields.Date(required=True)
    last_reviewed = fields.Date()
    next_review_due = fields.Date()
    mechanism = Slug(metadata={"description": "id of the `mechanism` the article shows"})
    faqs = fields.List(Slug(), metadata={"description": "ids of `faq` documents, in display order"})
    sources = fields.List(Slug(), required=True, validate=validate.Length(min=1))
    disclaimers = fields.List(Markdown(max_length=2000))

    @validates_schema
    def dates_are_ordered(self, data, **kwargs):
        published, modified = data.get("date_published"), data.get("date_modified")
        if published and modified and modified < published:
            raise ValidationError("Must not be before date_published.", "date_modified")
        reviewed, due = data.get("last_reviewed"), data.get("next_review_due")
        if reviewed and due and due <= reviewed:
            raise ValidationError("Must be after last_reviewed.", "next_review_due")
        faqs = data.get("faqs") or []
        if len(faqs) != len(set(faqs)):
            raise ValidationError("An FAQ may be listed once.", "faqs")


# --- source, person --------------------------------------------------------

SOURCE_KINDS = ("article", "label", "trial", "regulator_page", "compilation")


class SourceSchema(DocumentSchema):
    type_name = "source"

    title = Text(max_length=300, required=True)
    kind = Choice(SOURCE_KINDS, required=True)
    publisher = Text(max_length=200)
    authors = fields.List(Text(max_length=200))
    url = HttpUrl(metadata={"description": "left out when the address is not known; never guessed"})
    date_published = fields.Date()
    date_modified = fields.Date()
    date_accessed = fields.Date()
    notes = Markdown(max_length=2000)
    verification = Verification(required=True)


class PersonSchema(DocumentSchema):
    type_name = "person"

    name = Text(max_length=200, required=True)
    credentials = fields.List(Text(max_length=100))
    roles = fields.List(Choice(("author", "medical_reviewer", "editor")), required=True, validate=validate.Length(min=1))
    affiliation = Text(max_length=200)
    bio = Markdown(max_length=2000)
    url = HttpUrl()


DOCUMENT_SCHEMAS = {
    cls.type_name: cls
    for cls in (ProductSchema, ConditionSchema, MechanismSchema, FaqSchema, ArticleSchema, SourceSchema, PersonSchema)
}
DOCUMENT_TYPES = tuple(DOCUMENT_SCHEMAS)
# content/<folder>/<id>.json and /v1/<folder>: the plural of each type.
TYPE_FOLDERS = {"product": "products", "condition": "conditions", "mechanism": "mechanisms", "faq": "faqs",
                "article": "articles", "source": "sources", "person": "people"}
FOLDER_TYPES = {folder: type_name for type_name, folder in TYPE_FOLDERS.items()}

# Every field of every type that holds the id of another document: (type, field path, target type).
# `[]` marks a list. The cross-document check and the API's `include=` read this one table.
REFERENCES = {
    "product": [("conditions[]", "condition"), ("related[].product", "product")],
    "mechanism": [("product", "product")],
    "faq": [("product", "product")],
    "article": [("about", "product"), ("author", "person"), ("medical_reviewer", "person"),
                ("mechanism", "mechanism"), ("faqs[]", "faq"), ("sources[]", "source")],
    "condition": [],
    "source": [],
    "person": [],
}
