"""Field types shared by every document schema."""
import datetime
import re

from marshmallow import Schema, ValidationError, fields, validate

SLUG_PATTERN = r"^[a-z0-9]+(?:-[a-z0-9]+)*$"
# BCP 47 language tag, the common subset: language, optional script, optional
# region (alpha-2 or UN M.49), optional variants. "en-US", "es-419", "zh-Hant-TW".
BCP47_PATTERN = r"^[a-z]{2,3}(?:-[A-Z][a-z]{3})?(?:-(?:[A-Z]{2}|[0-9]{3}))?(?:-(?:[a-zA-Z0-9]{5,8}|[0-9][a-zA-Z0-9]{3}))*$"
# Markdown bodies are rendered to sanitised HTML on the way out; accepting raw
# HTML on the way in would make what an editor wrote differ from what a patient sees.
RAW_HTML = re.compile(r"</?[A-Za-z][A-Za-z0-9-]*(?:\s[^<>]*)?/?>")


def Slug(**kwargs):
    return fields.String(
        validate=[
            validate.Length(min=1, max=100),
            validate.Regexp(SLUG_PATTERN, error="Not a URL-safe slug (lowercase letters, digits and single hyphens)."),
        ],
        **kwargs,
    )


def Locale(**kwargs):
    return fields.String(validate=validate.Regexp(BCP47_PATTERN, error="Not a BCP 47 language tag (like en-US)."), **kwargs)


def HttpUrl(**kwargs):
    return fields.Url(schemes={"http", "https"}, require_tld=True, **kwargs)


def Text(max_length=500, **kwargs):
    """A short plain line: titles, names, labels."""
    return fields.String(validate=validate.Length(min=1, max=max_length), **kwargs)


def _no_raw_html(value):
    if RAW_HTML.search(value):
        raise ValidationError("Raw HTML is not allowed; write Markdown.")


def Markdown(max_length=20_000, **kwargs):
    return fields.String(validate=[validate.Length(min=1, max=max_length), _no_raw_html], **kwargs)


def _real_calendar_date(value):
    year, month, *day = map(int, value.split("-"))
    try:
        datetime.date(year, month, day[0] if day else 1)
    except ValueError:
        raise ValidationError("Not a real calendar date.") from None


def PartialDate(**kwargs):
    """An ISO 8601 date at day or month precision ("2023-02"): sources often give no day,
    and inventing one would be a false fact."""
    return fields.String(
        validate=[validate.Regexp(r"^[0-9]{4}-[0-9]{2}(?:-[0-9]{2})?$", error="Not an ISO 8601 date (YYYY-MM-DD or YYYY-MM)."),
                  _real_calendar_date],
        **kwargs,
    )


def Choice(values, **kwargs):
    return fields.String(validate=validate.OneOf(values), **kwargs)


VERIFICATION_STATES = ("verified", "unverified")


def Verification(**kwargs):
    """Whether an editor has confirmed a fact against its primary source (label, trial)."""
    return Choice(VERIFICATION_STATES, **kwargs)


class CitationSchema(Schema):
    source = Slug(required=True, metadata={"description": "id of a `source` document"})
    locator = Text(max_length=200, metadata={"description": "where in the source, e.g. 'label §12.1'"})


def Citations(required=True, **kwargs):
    """Clinical statements (efficacy, safety, dosing, monitoring) must cite at least one source."""
    if required:
        return fields.List(fields.Nested(CitationSchema), required=True, validate=validate.Length(min=1), **kwargs)
    return fields.List(fields.Nested(CitationSchema), **kwargs)


class CitedStatementSchema(Schema):
    """A clinical statement with where it comes from."""

    text = Markdown(max_length=5000, required=True)
    citations = Citations()
    verification = Verification()


def positions_are_contiguous(items, label):
    """Ordered items carry `position` 1..n, each once; return an error message or None."""
    positions = [item.get("position") for item in items if isinstance(item, dict)]
    if not all(isinstance(p, int) and not isinstance(p, bool) for p in positions):
        return None  # the field validator reports the bad value itself
    if sorted(positions) != list(range(1, len(positions) + 1)):
        return f"{label} positions must be unique and contiguous from 1; got {sorted(positions)}."
    return None
