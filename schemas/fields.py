"""Field types shared by every document schema."""
import datetime

from marshmallow import Schema, ValidationError, fields, validate

from .markup import markdown_problems, plain_text_problems

SLUG_PATTERN = r"^[a-z0-9]+(?:-[a-z0-9]+)*$"
SLUG_MAX_LENGTH = 100
# BCP 47 language tag, the common subset: language, optional script, optional
# region (alpha-2 or UN M.49), optional variants. "en-US", "es-419", "zh-Hant-TW".
BCP47_PATTERN = r"^[a-z]{2,3}(?:-[A-Z][a-z]{3})?(?:-(?:[A-Z]{2}|[0-9]{3}))?(?:-(?:[a-zA-Z0-9]{5,8}|[0-9][a-zA-Z0-9]{3}))*$"
# Characters RFC 3986 never allows unencoded in a URL; refusing them keeps a URL from breaking
# out of the HTML attribute or script a consumer puts it in.
URL_UNSAFE = set('<>"\'`\\ {}|^') | {chr(code) for code in range(0x20)} | {"\x7f"}


class Pattern(validate.Regexp):
    """Regexp over the whole value: `$` alone also matches before a final newline, which would
    let "hemgenix\\n" pass as a slug and become a file name."""

    def __call__(self, value):
        if self.regex.fullmatch(value) is None:
            raise ValidationError(self._format_error(value))
        return value


def Slug(**kwargs):
    return fields.String(
        validate=[
            validate.Length(min=1, max=SLUG_MAX_LENGTH),
            Pattern(SLUG_PATTERN, error="Not a URL-safe slug (lowercase letters, digits and single hyphens)."),
        ],
        **kwargs,
    )


def Locale(**kwargs):
    return fields.String(validate=Pattern(BCP47_PATTERN, error="Not a BCP 47 language tag (like en-US)."), **kwargs)


def _url_characters(value):
    if not URL_UNSAFE.isdisjoint(value):
        raise ValidationError("Contains characters a URL must percent-encode (spaces, quotes, <, > and the like).")


def HttpUrl(**kwargs):
    return fields.Url(schemes={"http", "https"}, require_tld=True, validate=_url_characters, **kwargs)


def _plain_text(value):
    problems = plain_text_problems(value)
    if problems:
        raise ValidationError(problems)


def Text(max_length=500, **kwargs):
    """A short plain line: titles, names, labels. Never markup: it lands in HTML templates as is."""
    return fields.String(validate=[validate.Length(min=1, max=max_length), _plain_text], **kwargs)


def Markdown(max_length=20_000, **kwargs):
    """Prose in CommonMark. Consumers render it to HTML, so it may hold no raw HTML and only
    http, https, mailto or relative links (see schemas/markup.py)."""

    def safe_markdown(value):
        if len(value) > max_length:
            return  # Length reports it; parsing a megabyte to say more would only cost time
        problems = markdown_problems(value)
        if problems:
            raise ValidationError(problems)

    return fields.String(validate=[validate.Length(min=1, max=max_length), safe_markdown], **kwargs)


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
        validate=[Pattern(r"^[0-9]{4}-[0-9]{2}(?:-[0-9]{2})?$", error="Not an ISO 8601 date (YYYY-MM-DD or YYYY-MM)."),
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
    """Where a statement comes from: a source document and the place in it (a locator it declares)."""

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
