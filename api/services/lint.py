"""Editorial checks that protect patients reading the content.

`lint(document, lookup, today)` returns findings, each
`{"rule", "severity", "field", "message"}`, sorted by field then rule. Errors
block submit and publish (api/workflow.py); warnings are advice. The schema
already forces citations on statements that have a `citations` list; these
rules catch what a schema cannot: claims in uncited prose, missing medical
review, comparisons between products, hard-to-read text and dangling references.
"""
import datetime
import functools
import re

from api.knowledge.documents import reference_errors
from api.knowledge.integrity import resolve_field
from api.knowledge.parallel import fork_map

RULES = {
    "citation.locator": ("error", "A citation whose locator is not one its source declares."),
    "citation.missing": ("error", "A clinical claim in a text field that has no citations of its own."),
    "claim.comparative": ("error", "A comparison between products, like 'better than' or 'as effective as'."),
    "faq.position": ("warning", "A product's FAQ positions that are not 1, 2, 3...: a gap or a tie."),
    "discrepancy.open": ("warning", "The article and a label differ here; a medical reviewer has not resolved it."),
    "readability.grade": ("warning", "Patient-facing prose above Flesch-Kincaid grade 8."),
    "reference.unresolved": ("error", "A reference to a document that does not exist or does not fit."),
    "review.due": ("warning", "An article's next_review_due date has passed."),
    "review.future_date": ("error", "A review dated in the future: a review is recorded once it has happened."),
    "review.invalid_reviewer": ("error", "A medical reviewer who is the author, or not a clinician in the reviewer role."),
    "review.no_medical_reviewer": ("error", "An article names no medical reviewer."),
    "review.overdue": ("error", "An article never medically reviewed, or not reviewed in the last 12 months."),
    "verification.missing": ("error", "A fact resting only on secondary sources that does not say whether it was verified."),
}

REVIEW_INTERVAL_DAYS = 365
MAX_GRADE = 8.0
MIN_WORDS_FOR_GRADE = 30

# What makes uncited text a clinical claim: (what it states, pattern). Case-insensitive.
_UNIT = r"(?:IU/dL|IU/kg|IU|units?(?:/kg| per kg)?|mg/kg|mg|mcg|µg|mL|kg|%|vg/kg|genome copies)"
CLINICAL_CLAIMS = [
    ("an amount with a clinical unit", rf"(?<![A-Za-z0-9.])\d+(?:[.,]\d+)?\s*{_UNIT}(?![A-Za-z])"),
    ("dosing", r"\bdos(?:e|es|ed|ing|age)\b"),
    ("a dosing frequency", r"\binfusions? every\b|\btimes (?:a|per) (?:day|week|month)\b|\b(?:weekly|monthly)\b"),
    ("efficacy", r"\befficacy\b|\beffective(?:ness)?\b|\breduc(?:e|es|ed|ing) bleed(?:s|ing)?\b"),
    ("safety", r"\bside effects?\b|\brisks? of\b|\bcontraindicated\b"),
    ("monitoring", r"\bmonitor(?:s|ed|ing)?\b"),
]
_CLAIMS = [(label, re.compile(pattern, re.IGNORECASE)) for label, pattern in CLINICAL_CLAIMS]

COMPARATIVES = ("better than", "safer than", "more effective than", "as effective as", "as good as",
                "superior to", "inferior to", "worse than", "less effective than")
_COMPARATIVE = re.compile(r"\b(?:" + "|".join(p.replace(" ", r"\s+") for p in COMPARATIVES) + r")\b", re.IGNORECASE)

SUMMARY_TYPES = ("product", "condition", "mechanism", "article")


def lint(document, lookup, today, *, references=True):
    """Every finding for one document; `lookup(type, id)` gives the head document or None.
    references=False leaves out the reference rules, for a document already checked by them."""
    if isinstance(today, datetime.datetime):
        today = today.date()
    findings = []

    def report(rule, field, message):
        findings.append({"rule": rule, "severity": RULES[rule][0], "field": field, "message": message})

    for field, text in _uncited_texts(document):
        claim = _clinical_claim(text)
        if claim:
            report("citation.missing", field, f"States {claim} with no citation; cite a source for it "
                                              f"or move it to a field that has citations.")
    if document.get("type") == "article":
        if not document.get("sources"):
            report("citation.missing", "sources", "The article lists no sources.")
        _check_review(document, today, report)
    if any(_COMPARATIVE.search(text) for text in _string_values(document)):
        for field, text in _strings(document):
            for match in _COMPARATIVE.finditer(text):
                report("claim.comparative", field, f"Compares products ('{match.group(0)}'); describe each product "
                                                   f"on its own evidence instead.")
    for field, text in _prose(document):
        measure = _measure(text)
        grade = _grade(*measure)
        if measure[0] >= MIN_WORDS_FOR_GRADE and grade > MAX_GRADE:
            report("readability.grade", field, f"Reads at grade {grade:.1f} (Flesch-Kincaid); aim for "
                                               f"{MAX_GRADE:g} or below with shorter sentences and plainer words.")
    for field, message in reference_errors(document, lookup) if references else ():
        report(_reference_rule(field), field, message)
    for field, message in open_discrepancies(document, lookup):
        report("discrepancy.open", field, message)
    return ordered(findings)


def ordered(findings):
    """Findings in the order every report shows them: by field, then rule."""
    return sorted(findings, key=lambda f: (f["field"], f["rule"], f["message"]))


def _reference_rule(field):
    if field == "medical_reviewer":
        return "review.invalid_reviewer"
    if field.endswith(".locator"):
        return "citation.locator"
    if field.endswith("verification"):
        return "verification.missing"
    return "reference.unresolved"


def open_discrepancies(document, lookup):
    """(field, message) for each open discrepancy touching this document: on a product, each of
    its own; on a mechanism, FAQ or article, each of its product's that points at its text."""
    kind = document.get("type")
    product = document if kind == "product" else lookup("product", document.get(
        "about" if kind == "article" else "product")) if kind in ("mechanism", "faq", "article") else None
    if not isinstance(product, dict):
        return []
    me = f"{kind}/{document.get('id')}"
    found = []
    for index, discrepancy in enumerate(_list(product.get("discrepancies"))):
        if not isinstance(discrepancy, dict) or discrepancy.get("status") != "open":
            continue
        facts = ", ".join(_list(discrepancy.get("label_facts")))
        if kind == "product":
            found.append((f"discrepancies.{index}", f"Open for the medical reviewer: {discrepancy.get('topic')} "
                                                    f"(label facts: {facts})."))
            continue
        for ref in _list(discrepancy.get("article_statements")):
            if isinstance(ref, dict) and ref.get("document") == me:
                field = ref.get("field") or ""
                if field and resolve_field(document, field) is None:
                    continue
                found.append((field, f"Differs from the label ({facts}) on {discrepancy.get('topic')}: see "
                                     f"product/{product.get('id')} discrepancies.{index}; open for the medical reviewer."))
    return found


# --- which fields each rule reads --------------------------------------------


def _list(value):
    return value if isinstance(value, list) else []


def _uncited_texts(document):
    """(field, text) for clinical-looking prose that carries no citations of its own."""
    kind = document.get("type")
    found = []
    if kind in SUMMARY_TYPES and not document.get("summary_citations"):
        found.append(("summary", document.get("summary")))
    if kind == "product":
        for index, variant in enumerate(_list(document.get("package_variants"))):
            if isinstance(variant, dict) and not variant.get("citations"):
                found.append((f"package_variants.{index}.description", variant.get("description")))
    if kind == "article":
        found += [(f"disclaimers.{index}", text) for index, text in enumerate(_list(document.get("disclaimers")))]
    return [(field, text) for field, text in found if isinstance(text, str)]


def _prose(document):
    """(field, text) for the prose patients read as running text."""
    kind = document.get("type")
    found = []
    if kind in SUMMARY_TYPES:
        found.append(("summary", document.get("summary")))
    if kind == "faq":
        found += [("question", document.get("question")), ("answer", document.get("answer"))]
    if kind == "mechanism":
        for part in ("steps", "sections"):
            for index, item in enumerate(_list(document.get(part))):
                if isinstance(item, dict):
                    found.append((f"{part}.{index}.body", item.get("body")))
    return [(field, text) for field, text in found if isinstance(text, str)]


def _strings(node, path=""):
    """Every string value in a document, with its dotted path."""
    if isinstance(node, str):
        yield path, node
    elif isinstance(node, dict):
        for key, value in node.items():
            yield from _strings(value, f"{path}.{key}" if path else str(key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _strings(value, f"{path}.{index}" if path else str(index))


def _string_values(document):
    """Every string value in a document, without paths: most documents compare nothing, and
    naming the path of each of their strings was most of the linter's time."""
    values, stack = [], [document]
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            values.append(node)
        elif isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return values


# --- rules -------------------------------------------------------------------


def _clinical_claim(text):
    """What clinical claim the text makes, like "dosing ('dose')", or None."""
    for label, pattern in _CLAIMS:
        match = pattern.search(text)
        if match:
            return f"{label} ('{match.group(0)}')"
    return None


def _date(value):
    if isinstance(value, datetime.date):
        return value
    try:
        return datetime.date.fromisoformat(value)
    except (TypeError, ValueError):
        return None


def _check_review(article, today, report):
    if not article.get("medical_reviewer"):
        report("review.no_medical_reviewer", "medical_reviewer",
               "No medical reviewer is named; a clinician must review patient content before it is published.")
    reviewed = _date(article.get("last_reviewed"))
    if reviewed is not None and reviewed > today:
        report("review.future_date", "last_reviewed", f"Dated {reviewed.isoformat()}, after today: a review is "
                                                      f"recorded once it has happened.")
    elif reviewed is None:
        report("review.overdue", "last_reviewed", "Never reviewed: the article has no last_reviewed date.")
    elif (today - reviewed).days > REVIEW_INTERVAL_DAYS:
        report("review.overdue", "last_reviewed", f"Last reviewed {reviewed.isoformat()}, "
                                                  f"{(today - reviewed).days} days ago; review at least every 12 months.")
    due = _date(article.get("next_review_due"))
    if due is not None and due < today:
        report("review.due", "next_review_due", f"The review due {due.isoformat()} has not happened.")


# --- readability -------------------------------------------------------------

_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
_URL = re.compile(r"https?://\S+")
_SENTENCE_END = re.compile(r"[.!?]+(?=\s|$)|\n\s*\n|\n\s*(?:[-*+]|\d+\.)\s")
_WORD = re.compile(r"[A-Za-z0-9]+(?:['’-][A-Za-z0-9]+)*")
_VOWEL_GROUP = re.compile(r"[aeiouy]+")


@functools.lru_cache(maxsize=1 << 16)  # a text's words repeat, and a set's texts share most of them
def syllables(word):
    """A heuristic: vowel groups, less a silent trailing e, at least one."""
    word = word.lower()
    count = len(_VOWEL_GROUP.findall(word))
    if word.endswith("e") and not word.endswith(("le", "ee")) and count > 1:
        count -= 1
    return max(1, count)


def _measure(text):
    """(words, sentences, syllables) of Markdown text: link targets and markup are not words."""
    text = _URL.sub(" ", _LINK.sub(r"\1", text))
    words = _WORD.findall(text)
    sentences = [part for part in _SENTENCE_END.split(text) if _WORD.search(part)]
    return len(words), max(1, len(sentences)), sum(syllables(word) for word in words)


def grade_level(text):
    """The Flesch-Kincaid grade level of a text (0.0 when it has no words)."""
    return _grade(*_measure(text))


def _grade(words, sentences, syllable_count):
    if not words:
        return 0.0
    return 0.39 * (words / sentences) + 11.8 * (syllable_count / words) - 15.59


def lint_set(documents, today=None, *, outside=None, processes=None, progress=None):
    """(lines to report, {"type/id": [error rules]}) for every lint finding in `documents`, a set
    load_set accepted: its reference rules passed there, so they are not run again. `outside`
    ("type/id" -> document): what the set refers to but does not hold (LoadedSet.outside), so a
    folder of FAQs is linted against its product in the store."""
    outside = outside or {}

    def lookup(type_name, id_):
        key = f"{type_name}/{id_}"
        return documents.get(key) or outside.get(key)

    today = today or datetime.date.today()
    lines, with_errors, counts = [], {}, {"error": 0, "warning": 0}
    keys = list(documents)
    of_the_set = faq_position_findings(documents)
    for key, findings in zip(keys, fork_map(lambda key: lint(documents[key], lookup, today, references=False), keys,
                                            processes=processes, progress=progress)):
        if key in of_the_set:
            findings = ordered([*findings, of_the_set[key]])
        for finding in findings:
            counts[finding["severity"]] += 1
            lines.append(f"lint: {key}: {finding['field'] or '-'}: {finding['severity']} {finding['rule']}: "
                         f"{finding['message']}")
            if finding["severity"] == "error":
                with_errors.setdefault(key, []).append(finding["rule"])
    if lines:
        lines.append(f"lint: {counts['error']} error(s), {counts['warning']} warning(s); "
                     f"{len(with_errors)} document(s) published with open errors.")
    return lines, {key: sorted(set(rules)) for key, rules in with_errors.items()}


def faq_position_findings(documents):
    """{"type/id": finding} for the FAQs of each product in `documents` whose positions are not
    1, 2, 3...: a whole-set rule (editorial lint applies it to an FAQ and its product's published
    ones). It is advice, not an error: positions order a product's FAQs (ties by id), and editors
    unpublishing or adding one FAQ through the API leave gaps that an export must import back."""
    products = {document.get("id") for document in documents.values() if document.get("type") == "product"}
    by_product = {}
    for key, document in documents.items():
        if document.get("type") == "faq" and document.get("product") in products:
            by_product.setdefault(document["product"], []).append(key)
    findings = {}
    for product, keys in by_product.items():
        finding = faq_position_finding(product, [documents[key] for key in keys])
        if finding:
            findings.update(dict.fromkeys(keys, finding))
    return findings


def faq_position_finding(product, faqs):
    """The faq.position finding when the positions of `faqs`, all of product/`product`, are not 1 to n."""
    positions = sorted(faq["position"] for faq in faqs)
    if positions == list(range(1, len(faqs) + 1)):
        return None
    return {"rule": "faq.position", "severity": RULES["faq.position"][0], "field": "position",
            "message": f"The FAQs of product/{product} are at positions {positions}, not 1 to {len(faqs)}: readers "
                       f"see them by position, then id. Renumber them to make the order explicit."}
