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
from .facts import (
    ApprovalDate,
    CitationsOf,
    ConditionCodeSchema,
    DiscrepancySchema,
    GeneCodeSchema,
    LabelFactsSchema,
    ProductCodeSchema,
    ReviewStatus,
    Statement,
    Verified,
    label_fact_keys,
    review_problems,
)

# Bump when the stored format changes, and register a migration from the
# previous version in api/knowledge/migrations.py.
CURRENT_SCHEMA_VERSION = 3
DEFAULT_LOCALE = "en-US"
# Identity and references are the same in every language; only words are translated.
UNTRANSLATABLE = ("type", "id", "schema_version", "revision", "locale", "updated_at", "translations",
                  "product", "about", "author", "medical_reviewer", "mechanism", "faqs", "sources", "conditions",
                  "position", "identifiers", "gene_identifiers", "review_status", "last_reviewed", "slug")


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
    """A class the product belongs to in one classification system (ATC group, pharmacologic class)."""

    system = Choice(CLASS_SYSTEMS, required=True)
    code = fields.String(validate=Pattern(r"^[A-Z](?:[0-9]{2}(?:[A-Z]{1,2})?)?$", error=(
        "Not an ATC group (levels 1 to 4, like B02BD); a full ATC code names the substance and goes in "
        "identifiers.")))
    name = Text(metadata={"description": "required for pharmacologic classes; optional for ATC, whose code is the name"})
    citations = Citations(required=False)
    verification = Verified()

    @validates_schema
    def identified(self, data, **kwargs):
        if data.get("system") == "atc" and not data.get("code"):
            raise ValidationError("An ATC class needs its code.", "code")
        if data.get("system") == "pharmacologic" and not data.get("name"):
            raise ValidationError("A pharmacologic class needs its name.", "name")


class OrganisationRoleSchema(Schema):
    """An organisation and its role for the product (developer, manufacturer, marketer, ...)."""

    name = Text(required=True)
    role = Choice(("marketing_authorisation_holder", "marketer", "developer", "manufacturer"), required=True)
    region = Text(max_length=100)
    citations = Citations(required=False)
    verification = Verified()


class ApprovalSchema(Schema):
    """A regulatory approval as a source states it: region, date, authority and kind when stated."""

    # authority and kind are optional: sources often state only "approved in the EU".
    authority = Text(max_length=100)
    region = Text(max_length=100, required=True)
    date = ApprovalDate()
    application_number = fields.String(validate=validate.Regexp(r"^(?:BLA|NDA|ANDA)[0-9]{6}$|^EMEA/H/C/[0-9]{6}$",
                                                                error="Not an application number (like BLA125772)."))
    kind = Choice(("full", "conditional", "accelerated", "extension"))
    scope = Text(max_length=500, metadata={"description": "what the approval covers (population, indication)"})
    citations = Citations()
    verification = Verified(required=True)

    @validates_schema
    def identified(self, data, **kwargs):
        if not data.get("date") and not data.get("application_number"):
            raise ValidationError("An approval needs its date or its application number.", "date")


class DosingSchema(Statement):
    """How the product is dosed, as the article or compilation states it, cited."""

    population = Text(max_length=200)


class PackageVariantSchema(Schema):
    """A package or kit the product comes in (for Hemgenix, a body-weight band)."""

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
    """A key risk and what it means for the patient, cited."""

    name = Text(max_length=200, required=True)
    description = Markdown(max_length=5000, required=True)
    citations = Citations()
    verification = Verified()


class RelationSchema(Schema):
    """A related product, with the relation's type and its basis."""

    product = Slug(required=True, metadata={"description": "id of the related `product`"})
    type = Choice(RELATION_TYPES, required=True)
    basis = Markdown(max_length=1000, required=True, metadata={"description": "why the relation holds; never a claim of equivalence"})
    citations = Citations(required=False)
    verification = Verified()


class ProductSchema(DocumentSchema):
    type_name = "product"

    name = Text(max_length=200, required=True, metadata={"description": "brand name"})
    non_proprietary_name = Text(max_length=200, required=True)
    development_code = Text(max_length=50)
    product_type = Choice(PRODUCT_TYPES, required=True)
    summary = Markdown(max_length=2000, required=True)
    summary_citations = CitationsOf("summary")
    how_it_works = fields.Nested(Statement, required=True)
    classes = fields.List(fields.Nested(ProductClassSchema), required=True, validate=validate.Length(min=1))
    organisations = fields.List(fields.Nested(OrganisationRoleSchema))
    approvals = fields.List(fields.Nested(ApprovalSchema))
    dosage_form = Text(max_length=200)
    route = Choice(ROUTES, required=True)
    prescription_status = Choice(("prescription_only", "otc"))
    dosing = fields.List(fields.Nested(DosingSchema))
    package_variants = fields.List(fields.Nested(PackageVariantSchema))
    key_risks = fields.List(fields.Nested(RiskSchema))
    conditions = fields.List(Slug(), required=True, validate=validate.Length(min=1))
    identifiers = fields.List(fields.Nested(ProductCodeSchema), metadata={"description": "only real codes, each cited"})
    related = fields.List(fields.Nested(RelationSchema))
    label_facts = fields.Nested(LabelFactsSchema, metadata={
        "description": "what the labels say, by region, beside (never instead of) the article's prose"})
    discrepancies = fields.List(fields.Nested(DiscrepancySchema), metadata={
        "description": "where the article and a label differ: both stand, linked here for the medical reviewer"})
    review_status = ReviewStatus(required=True)
    medical_reviewer = Slug(metadata={"description": "id of a `person` with the medical_reviewer role"})
    last_reviewed = fields.Date()

    @validates_schema
    def reviewed_honestly(self, data, **kwargs):
        review_problems(data)

    @validates_schema
    def discrepancies_point_at_label_facts(self, data, **kwargs):
        keys = label_fact_keys(data)
        for index, discrepancy in enumerate(data.get("discrepancies") or []):
            unknown = [key for key in discrepancy.get("label_facts") or [] if key not in keys]
            if unknown:
                raise ValidationError({"discrepancies": {index: {"label_facts": [
                    f"Not a label fact of this product: {', '.join(unknown)}."]}}})
        keys = [d.get("key") for d in data.get("discrepancies") or []]
        if len(keys) != len(set(keys)):
            raise ValidationError("Discrepancy keys must be unique.", "discrepancies")

    @validates_schema
    def relations_are_distinct(self, data, **kwargs):
        pairs = [(r.get("product"), r.get("type")) for r in data.get("related") or []]
        if len(pairs) != len(set(pairs)):
            raise ValidationError("Each (product, type) relation may appear once.", "related")
        if any(product == data.get("id") for product, _ in pairs):
            raise ValidationError("A product cannot be related to itself.", "related")


# --- condition -------------------------------------------------------------


class TreatmentApproachSchema(Statement):
    """A way the condition is treated, cited."""

    name = Text(max_length=200, required=True)


class ConditionSchema(DocumentSchema):
    type_name = "condition"

    name = Text(max_length=200, required=True)
    synonyms = fields.List(Text(max_length=200))
    summary = Markdown(max_length=5000, required=True)
    summary_citations = CitationsOf("summary")
    cause = fields.Nested(Statement, required=True)
    gene = Text(max_length=50, required=True)
    gene_identifiers = fields.List(fields.Nested(GeneCodeSchema), metadata={"description": "the gene's codes, each cited"})
    identifiers = fields.List(fields.Nested(ConditionCodeSchema), metadata={"description": "only real codes, each cited"})
    protein = Text(max_length=100)
    inheritance = Choice(("x_linked_recessive", "autosomal_dominant", "autosomal_recessive", "acquired"), required=True)
    treatment_approaches = fields.List(fields.Nested(TreatmentApproachSchema))


# --- mechanism -------------------------------------------------------------


class StepSchema(Schema):
    """One step of how a product works, in order, cited."""

    position = fields.Integer(required=True, strict=True, validate=validate.Range(min=1))
    title = Text(max_length=200, required=True)
    body = Markdown(required=True)
    citations = Citations()


class SectionSchema(Schema):
    """A side section of a mechanism (the root cause, why the immune system matters), cited."""

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
    summary_citations = CitationsOf("summary")
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
    """Who publishes the article."""

    name = Text(max_length=200, required=True)
    url = HttpUrl()


class ArticleSchema(DocumentSchema):
    type_name = "article"

    headline = Text(max_length=200, required=True)
    summary = Markdown(max_length=2000, required=True)
    summary_citations = CitationsOf("summary")
    slug = Slug(required=True, metadata={"description": "the page's path on the public site: its canonical URL is "
                                                        "MEDKB_PUBLIC_BASE_URL/<slug>"})
    about = Slug(required=True, metadata={"description": "id of the `product` the article explains"})
    author = Slug(required=True, metadata={"description": "id of a `person`"})
    medical_reviewer = Slug(metadata={"description": "id of a `person`"})
    publisher = fields.Nested(PublisherSchema, required=True)
    date_published = fields.Date()
    date_modified = fields.Date(required=True)
    last_reviewed = fields.Date()
    next_review_due = fields.Date()
    review_status = ReviewStatus(required=True)
    mechanism = Slug(metadata={"description": "id of the `mechanism` the article shows"})
    faqs = fields.List(Slug(), metadata={"description": "ids of `faq` documents, in display order"})
    sources = fields.List(Slug(), required=True, validate=validate.Length(min=1))
    disclaimers = fields.List(Markdown(max_length=2000))

    @validates_schema
    def reviewed_honestly(self, data, **kwargs):
        review_problems(data)

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

# "compilation" and "secondary" are leads, not evidence: a fact citing only them must say it is unverified.
SOURCE_KINDS = ("article", "label", "trial", "regulator_page", "registry", "compilation", "secondary")
SECONDARY_SOURCE_KINDS = ("compilation", "secondary")


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
    version = Text(max_length=200, metadata={"description": "the label's revision or version as published"})
    read_via = fields.List(HttpUrl(), metadata={"description": "copies where the text was actually read, when the "
                                                               "original at `url` was not"})
    identifiers = fields.List(Text(max_length=100), metadata={"description": "e.g. a trial's NCT number"})
    locators = fields.List(Text(max_length=200), metadata={
        "description": "the places in this source a citation may point at (sections, headings); a citation's "
                       "locator must be one of them"})
    notes = Markdown(max_length=2000)
    verification = Verification(required=True)

    @validates_schema
    def locators_are_distinct(self, data, **kwargs):
        locators = data.get("locators") or []
        if len(locators) != len(set(locators)):
            raise ValidationError("Each locator may appear once.", "locators")


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
    "product": [("conditions[]", "condition"), ("related[].product", "product"), ("medical_reviewer", "person")],
    "mechanism": [("product", "product")],
    "faq": [("product", "product")],
    "article": [("about", "product"), ("author", "person"), ("medical_reviewer", "person"),
                ("mechanism", "mechanism"), ("faqs[]", "faq"), ("sources[]", "source")],
    "condition": [],
    "source": [],
    "person": [],
}

# What `include=` can embed in a delivered document, per type: name -> (document type, many).
# A name is a reference field above (the document points at them), or the reverse of one (they
# point at the document: a product's mechanism and FAQs, a condition's products). `related`
# embeds each relation of `related[].product` with its product. Query schemas, the `included`
# body schemas and the delivery service all read this one table.
INCLUDES = {
    "product": {"mechanism": ("mechanism", False), "faqs": ("faq", True), "related": ("product", True),
                "conditions": ("condition", True)},
    "article": {"about": ("product", False), "author": ("person", False), "medical_reviewer": ("person", False),
                "mechanism": ("mechanism", False), "faqs": ("faq", True), "sources": ("source", True)},
    "faq": {"product": ("product", False)},
    "mechanism": {"product": ("product", False)},
    "condition": {"products": ("product", True)},
    "source": {},
    "person": {},
}

# The fields public lists filter on, by name: the read model indexes their values (lower-cased)
# per change, so a filtered list reads one page, not every document. Paths as in REFERENCES;
# `[system=atc]` keeps only the list items whose `system` is "atc".
LIST_FILTERS = {
    "product": [("condition", "conditions[]"), ("product_type", "product_type"), ("class_code", "classes[].code"),
                ("class_name", "classes[].name"), ("atc", "identifiers[system=atc].value")],
}
