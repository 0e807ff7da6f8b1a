"""Fields for facts checked against primary sources: verification, coded identifiers,
label facts (indication, dose, monitoring, required actions), discrepancies and review status.

Label facts stand beside the article's prose, never in place of it: where the two differ, a
discrepancy links the article's statement to the label's version for the medical reviewer.
"""
import datetime
import re

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from .fields import CitationSchema, Choice, Citations, CitedStatementSchema, Markdown, Slug, Text

REGIONS = ("US", "EU", "UK")


class VerificationSchema(Schema):
    """Whether a fact was confirmed against a primary source, which one and when; or that it was not."""

    status = Choice(("verified", "unverified"), required=True)
    source = Slug(metadata={"description": "id of the `source` the fact was confirmed against (required when verified)"})
    date = fields.Date(metadata={"description": "when it was confirmed (required when verified)"})
    note = Text(max_length=500, metadata={"description": "how it was checked, or why it could not be"})

    @validates_schema
    def verified_says_against_what_and_when(self, data, **kwargs):
        if data.get("status") == "verified":
            missing = {name: ["Required when status is 'verified'."] for name in ("source", "date") if not data.get(name)}
            if missing:
                raise ValidationError(missing)
        elif data.get("source"):
            raise ValidationError("Only a verified fact names the source it was verified against.", "source")
        if data.get("date") and data["date"] > datetime.date.today():
            raise ValidationError("Cannot be in the future.", "date")


def Verified(**kwargs):
    return fields.Nested(VerificationSchema, **kwargs)


def CitationsOf(field_name):
    """Citations for a plain-text field that cannot carry its own (a summary is a string)."""
    return fields.List(fields.Nested(CitationSchema), validate=validate.Length(min=1),
                       metadata={"description": f"the sources of `{field_name}`, with locators"})


class Statement(CitedStatementSchema):
    """A cited clinical statement whose verification says against what and when."""

    verification = Verified()


# --- coded identifiers -------------------------------------------------------


def _ndc(value):
    """An NDC is 10 digits in one of the three FDA segment layouts (4-4-2, 5-3-2, 5-4-1)."""
    parts = value.split("-")
    return all(p.isdigit() for p in parts) and tuple(map(len, parts)) in ((4, 4, 2), (5, 3, 2), (5, 4, 1))


def _snomed(value):
    """A SNOMED CT concept id: 6-18 digits, partition 00 (concept), Verhoeff check digit valid."""
    if not re.fullmatch(r"[1-9][0-9]{5,17}", value) or value[-3:-1] != "00":
        return False
    return _verhoeff_valid(value)


_VERHOEFF_D = [[0, 1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 2, 3, 4, 0, 6, 7, 8, 9, 5], [2, 3, 4, 0, 1, 7, 8, 9, 5, 6],
               [3, 4, 0, 1, 2, 8, 9, 5, 6, 7], [4, 0, 1, 2, 3, 9, 5, 6, 7, 8], [5, 9, 8, 7, 6, 0, 4, 3, 2, 1],
               [6, 5, 9, 8, 7, 1, 0, 4, 3, 2], [7, 6, 5, 9, 8, 2, 1, 0, 4, 3], [8, 7, 6, 5, 9, 3, 2, 1, 0, 4],
               [9, 8, 7, 6, 5, 4, 3, 2, 1, 0]]
_VERHOEFF_P = [[0, 1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 5, 7, 6, 2, 8, 3, 0, 9, 4], [5, 8, 0, 3, 7, 9, 6, 1, 4, 2],
               [8, 9, 1, 6, 0, 4, 3, 5, 2, 7], [9, 4, 5, 3, 1, 2, 6, 8, 7, 0], [4, 2, 8, 6, 5, 7, 3, 9, 0, 1],
               [2, 7, 9, 3, 8, 0, 6, 4, 1, 5], [7, 0, 4, 6, 9, 1, 3, 2, 5, 8]]


def _verhoeff_valid(digits):
    check = 0
    for index, digit in enumerate(reversed(digits)):
        check = _VERHOEFF_D[check][_VERHOEFF_P[index % 8][int(digit)]]
    return check == 0


# system: (what it is, a pattern or a check, an example). The format only: a well-formed code
# can still be wrong, which is why every code also carries citations and its verification.
CODE_SYSTEMS = {
    "atc": ("WHO ATC code, level 5", r"[A-Z][0-9]{2}[A-Z]{2}[0-9]{2}", "B02BD16"),
    "ndc": ("US National Drug Code, hyphenated", _ndc, "0053-0300-30"),
    "rxcui": ("RxNorm concept id", r"[1-9][0-9]{0,8}", "2626772"),
    "unii": ("FDA Unique Ingredient Identifier", r"[0-9A-Z]{10}", "ABC123DEF4"),
    "application_number": ("FDA application number", r"(?:BLA|NDA|ANDA)[0-9]{6}", "BLA125772"),
    "ema_product_number": ("EMA product number", r"EMEA/H/C/[0-9]{6}", "EMEA/H/C/123456"),
    "icd10cm": ("ICD-10-CM code", r"[A-TV-Z][0-9][0-9A-Z](?:\.[0-9A-Z]{1,4})?", "D67"),
    "omim": ("OMIM number", r"[1-6][0-9]{5}", "306900"),
    "orphanet": ("Orphanet code", r"ORPHA:[1-9][0-9]{0,6}", "ORPHA:98879"),
    "mesh": ("MeSH descriptor id", r"D[0-9]{6}(?:[0-9]{3})?", "D002836"),
    "snomedct": ("SNOMED CT concept id", _snomed, "41788008"),
    "umls": ("UMLS concept id", r"C[0-9]{7}", "C0008533"),
    "hgnc": ("HGNC gene id", r"HGNC:[1-9][0-9]{0,5}", "HGNC:3551"),
    "ncbi_gene": ("NCBI Gene id", r"[1-9][0-9]{0,9}", "2158"),
}
PRODUCT_CODE_SYSTEMS = ("atc", "ndc", "rxcui", "unii", "application_number", "ema_product_number")
CONDITION_CODE_SYSTEMS = ("icd10cm", "omim", "orphanet", "mesh", "snomedct", "umls")
GENE_CODE_SYSTEMS = ("hgnc", "ncbi_gene", "omim")


def code_is_well_formed(system, value):
    check = CODE_SYSTEMS[system][1]
    return check(value) if callable(check) else re.fullmatch(check, value) is not None


class CodeSchema(Schema):
    """A coded identifier, its value checked against its system's format."""

    system = Choice(tuple(CODE_SYSTEMS), required=True)
    value = Text(max_length=100, required=True)
    label = Text(max_length=200, metadata={"description": "what the code names in its system, e.g. a kit size"})
    citations = Citations()
    verification = Verified(required=True)

    @validates_schema
    def value_fits_system(self, data, **kwargs):
        system, value = data.get("system"), data.get("value")
        if system in CODE_SYSTEMS and isinstance(value, str) and not code_is_well_formed(system, value):
            name, _, example = CODE_SYSTEMS[system]
            raise ValidationError(f"Not a well-formed {name} (like {example}).", "value")


class ProductCodeSchema(CodeSchema):
    """A code that identifies the product in one system (NDC, RxCUI, ATC, ...), cited."""

    system = Choice(PRODUCT_CODE_SYSTEMS, required=True)


class ConditionCodeSchema(CodeSchema):
    """A code for the condition in one system (ICD-10-CM, OMIM, Orphanet, MeSH, SNOMED CT), cited."""

    system = Choice(CONDITION_CODE_SYSTEMS, required=True)


class GeneCodeSchema(CodeSchema):
    """A code for the gene (HGNC), cited."""

    system = Choice(GENE_CODE_SYSTEMS, required=True)


# --- label facts -------------------------------------------------------------


class LabelFactSchema(Statement):
    """One fact from one label (or trial, or registry), for the regions it applies to."""

    key = Slug(required=True, metadata={"description": "unique within the product; discrepancies refer to it"})
    regions = fields.List(Choice(REGIONS), required=True, validate=validate.Length(min=1))
    verification = Verified(required=True)


class IndicationSchema(LabelFactSchema):
    """Who a label says the product is for, in one region, cited."""

    population = Text(max_length=300, required=True)
    age_min_years = fields.Integer(strict=True, validate=validate.Range(min=0, max=120))
    inhibitor_status = Choice(("without_inhibitors", "with_inhibitors", "with_or_without_inhibitors", "not_stated"),
                              required=True)
    severity = Text(max_length=200)
    uses = fields.List(Text(max_length=200))


class DoseSchema(LabelFactSchema):
    """A dose as a label states it: amount, unit, basis, interval, population, region, cited."""

    population = Text(max_length=300, required=True)
    phase = Choice(("single", "loading", "maintenance", "prophylaxis"), required=True)
    amount = fields.Float(required=True, validate=validate.Range(min=0, min_inclusive=False))
    amount_max = fields.Float(validate=validate.Range(min=0, min_inclusive=False),
                              metadata={"description": "upper end when the label gives a range"})
    unit = Text(max_length=50, required=True, metadata={"description": "e.g. IU, mg, genome copies"})
    per_kg = fields.Boolean(required=True, metadata={"description": "whether the amount is per kg of body weight"})
    interval = Text(max_length=100, required=True, metadata={"description": "e.g. once, every 7 days, once daily"})

    @validates_schema
    def range_is_ordered(self, data, **kwargs):
        if data.get("amount_max") is not None and data.get("amount") is not None and data["amount_max"] < data["amount"]:
            raise ValidationError("Must not be below amount.", "amount_max")


class ScheduleSchema(Schema):
    """How often something is done, from when until when."""

    every = fields.Integer(strict=True, required=True, validate=validate.Range(min=1))
    unit = Choice(("day", "week", "month", "year"), required=True)
    from_month = fields.Integer(strict=True, required=True, validate=validate.Range(min=0),
                                metadata={"description": "months after the infusion when this interval starts"})
    until_month = fields.Integer(strict=True, required=True, validate=validate.Range(min=1))
    until_at_least = fields.Boolean(required=True,
                                    metadata={"description": "true when the label says 'for at least' this long"})

    @validates_schema
    def ends_after_it_starts(self, data, **kwargs):
        if isinstance(data.get("from_month"), int) and isinstance(data.get("until_month"), int) \
                and data["until_month"] <= data["from_month"]:
            raise ValidationError("Must be after from_month.", "until_month")


class MonitoringSchema(LabelFactSchema):
    """A test a label requires and its timetable, in one region, cited."""

    test = Text(max_length=200, required=True)
    who = Text(max_length=300, metadata={"description": "which patients, when not everyone treated"})
    schedule = fields.List(fields.Nested(ScheduleSchema), required=True, validate=validate.Length(min=1))


REQUIRED_ACTIONS = ("no_donation", "contraception", "post_infusion_observation", "follow_up_study", "pre_treatment_test")


class RequiredActionSchema(LabelFactSchema):
    """Something a label requires the patient or clinician to do (no donation, contraception, ...)."""

    action = Choice(REQUIRED_ACTIONS, required=True)
    duration = Text(max_length=100, metadata={"description": "e.g. 12 months, at least 3 hours, 15 years"})


class LabelFactsSchema(Schema):
    """What the labels state, by kind: indications, doses, monitoring, required actions."""

    indications = fields.List(fields.Nested(IndicationSchema))
    doses = fields.List(fields.Nested(DoseSchema))
    monitoring = fields.List(fields.Nested(MonitoringSchema))
    required_actions = fields.List(fields.Nested(RequiredActionSchema))

    @validates_schema
    def keys_are_unique(self, data, **kwargs):
        keys = [fact.get("key") for facts in data.values() if isinstance(facts, list) for fact in facts
                if isinstance(fact, dict)]
        repeated = sorted({key for key in keys if keys.count(key) > 1})
        if repeated:
            raise ValidationError(f"Label fact keys must be unique; repeated: {', '.join(repeated)}.")


def label_fact_keys(product):
    facts = product.get("label_facts") if isinstance(product, dict) else None
    if not isinstance(facts, dict):
        return set()
    return {fact.get("key") for group in facts.values() if isinstance(group, list) for fact in group
            if isinstance(fact, dict)}


class StatementRefSchema(Schema):
    """A statement of the article, by document and field."""

    document = fields.String(required=True, validate=validate.Regexp(
        r"^(product|condition|mechanism|faq|article)/[a-z0-9]+(?:-[a-z0-9]+)*$", error="Not a 'type/id' reference."))
    field = fields.String(validate=validate.Regexp(r"^[a-z_]+(?:\.(?:[a-z_]+|[0-9]+))*$",
                                                   error="Not a dotted field path like sections.1.body."),
                          metadata={"description": "the field holding the statement; absent when the document "
                                                   "says nothing on the topic"})


class DiscrepancySchema(Schema):
    """Where the article and a label differ: both stay, each cited, linked here for the medical reviewer."""

    key = Slug(required=True)
    topic = Text(max_length=200, required=True)
    status = Choice(("open", "resolved"), required=True)
    description = Markdown(max_length=3000, required=True)
    article_statements = fields.List(fields.Nested(StatementRefSchema), required=True, validate=validate.Length(min=1),
                                     metadata={"description": "where the article's version is"})
    label_facts = fields.List(Slug(), required=True, validate=validate.Length(min=1),
                              metadata={"description": "keys of this product's label facts giving the label's version"})
    resolution = Markdown(max_length=3000, metadata={"description": "the medical reviewer's decision, once resolved"})

    @validates_schema
    def resolved_says_how(self, data, **kwargs):
        if data.get("status") == "resolved" and not data.get("resolution"):
            raise ValidationError("A resolved discrepancy records the reviewer's resolution.", "resolution")


# --- review status -------------------------------------------------------------

REVIEW_STATUSES = ("medically_reviewed", "not_medically_reviewed")


def ReviewStatus(**kwargs):
    return Choice(REVIEW_STATUSES, metadata={"description": "whether a clinician has reviewed this content; "
                                                            "medically_reviewed needs medical_reviewer and last_reviewed"},
                  **kwargs)


def review_problems(data):
    """Schema-level review checks shared by articles and products: the status matches the fields,
    and no review is dated in the future."""
    status, reviewer, reviewed = data.get("review_status"), data.get("medical_reviewer"), data.get("last_reviewed")
    if reviewed and reviewed > datetime.date.today():
        raise ValidationError("Cannot be in the future: a review is recorded once it has happened.", "last_reviewed")
    if status == "medically_reviewed" and not (reviewer and reviewed):
        raise ValidationError("medically_reviewed needs medical_reviewer and last_reviewed.", "review_status")
    if status == "not_medically_reviewed" and (reviewer or reviewed):
        raise ValidationError("Says not_medically_reviewed but names a reviewer or review date.", "review_status")


def _real_date(value):
    year, month, day = (list(map(int, value.split("-"))) + [1, 1])[:3]
    try:
        datetime.date(year, month, day)
    except ValueError:
        raise ValidationError("Not a real calendar date.") from None


def ApprovalDate(**kwargs):
    """A year, year-month or full date: regulators' public records often give only the year,
    and inventing a month or day would be a false fact."""
    return fields.String(validate=[validate.Regexp(r"^[0-9]{4}(?:-[0-9]{2}(?:-[0-9]{2})?)?$",
                                                   error="Not an ISO 8601 date (YYYY, YYYY-MM or YYYY-MM-DD)."),
                                   _real_date], **kwargs)


# --- delivery view -------------------------------------------------------------


class DeliveredStatementSchema(Schema):
    """An article statement as published: its text and citations."""

    document = fields.String(required=True, metadata={"description": "'type/id' of the published document"})
    field = fields.String(metadata={"description": "where in it; absent when the article says nothing on the topic"})
    text = fields.String(metadata={"description": "the article's statement as published"})
    citations = fields.List(fields.Nested(CitationSchema), required=True)


class DeliveredDiscrepancySchema(Schema):
    """A discrepancy with the article's published statements beside the label facts it differs from."""

    key = fields.String(required=True)
    topic = fields.String(required=True)
    status = fields.String(required=True)
    description = fields.String(required=True)
    resolution = fields.String()
    article_statements = fields.List(fields.Nested(DeliveredStatementSchema), required=True)
    label_facts = fields.List(fields.Dict(), required=True, metadata={"description": "the label facts themselves"})


class ProductLabelFactsSchema(Schema):
    """The label's version beside the article's, for an app to show both."""

    product = fields.String(required=True)
    review_status = fields.String(required=True)
    label_facts = fields.Nested(LabelFactsSchema, required=True)
    discrepancies = fields.List(fields.Nested(DeliveredDiscrepancySchema), required=True)
