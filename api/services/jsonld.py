"""schema.org JSON-LD for an article page.

`article_jsonld(article, lookup, base_url)` describes a published article as a
`MedicalWebPage` at its canonical web address (`base_url` + the article's slug), built only
from the documents themselves: nothing is invented, a reference that `lookup` cannot resolve
is left out, no key is given an empty value, and text is plain (search engines show it as-is,
so Markdown markup would be shown literally). A review is claimed only when the article says
it was medically reviewed by a clinician who is not its author; codes are emitted only when
verified; citations are the external primary sources, never internal compilations.
"""
import re

from api.knowledge.integrity import PRIMARY_KINDS, is_clinician

MANUFACTURER_ROLES = ("marketer", "manufacturer", "marketing_authorisation_holder")
CODING_SYSTEMS = {"atc": "ATC", "ndc": "NDC", "rxcui": "RxNorm", "unii": "UNII", "icd10cm": "ICD-10-CM",
                  "omim": "OMIM", "orphanet": "Orphanet", "mesh": "MeSH", "snomedct": "SNOMED CT", "umls": "UMLS"}
PRESCRIPTION_STATUS = {"prescription_only": "https://schema.org/PrescriptionOnly", "otc": "https://schema.org/OTC"}


def article_jsonld(article: dict, lookup, base_url: str) -> dict:
    """The JSON-LD object for `article`; `lookup(type, id)` gives a published document or None."""

    def find(type_name, id_):
        return lookup(type_name, id_) if id_ else None

    url = f"{base_url}/{article.get('slug') or article.get('id')}"
    product = find("product", article.get("about"))
    mechanism = find("mechanism", article.get("mechanism"))
    faqs = [faq for faq in (find("faq", id_) for id_ in article.get("faqs") or []) if faq]
    conditions = [find("condition", id_) for id_ in (product or {}).get("conditions") or []]
    reviewer = _reviewer(article, find("person", article.get("medical_reviewer")))
    included = [article, product, mechanism, *faqs]
    return _compact({
        "@context": "https://schema.org",
        "@type": "MedicalWebPage",
        "@id": url,
        "url": url,
        "headline": article.get("headline"),
        "name": article.get("headline"),
        "description": plain_text(article.get("summary")),
        "inLanguage": article.get("locale"),
        "datePublished": article.get("date_published"),
        "dateModified": _latest([article.get("date_modified")] + [(d or {}).get("updated_at") for d in included]),
        "lastReviewed": reviewer and article.get("last_reviewed"),
        "reviewedBy": reviewer,
        "author": _person(find("person", article.get("author"))),
        "publisher": _organisation(article.get("publisher") or {}),
        "isAccessibleForFree": True,
        "medicalAudience": {"@type": "MedicalAudience", "audienceType": "Patient"},
        "about": [_drug(product, url), *(_condition(c, product, url) for c in conditions if c)],
        "mainEntity": _faq_page(faqs),
        "hasPart": [_mechanism(mechanism)],
        "citation": [_creative_work(find("source", id_)) for id_ in article.get("sources") or []],
    })


_MARKDOWN = [
    (re.compile(r"!?\[([^\]]*)\]\([^)]*\)"), r"\1"),       # links and images keep their text
    (re.compile(r"(\*\*|__)(.+?)\1"), r"\2"),              # bold
    (re.compile(r"(?<![\w*])([*_])(?!\s)(.+?)(?<!\s)\1(?![\w*])"), r"\2"),  # italics
    (re.compile(r"`([^`]*)`"), r"\1"),                      # code
    (re.compile(r"^[ \t]{0,3}#{1,6}[ \t]+", re.MULTILINE), ""),  # headings
    (re.compile(r"^[ \t]{0,3}>[ \t]?", re.MULTILINE), ""),       # quotes
    (re.compile(r"^[ \t]*[-*+][ \t]+", re.MULTILINE), ""),       # bullets
]


def plain_text(markdown):
    """Markdown reduced to the words a reader sees; numbered list markers stay, as they carry meaning."""
    if not isinstance(markdown, str):
        return markdown
    text = markdown
    for pattern, replacement in _MARKDOWN:
        text = pattern.sub(replacement, text)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def _latest(dates):
    """The latest of ISO dates and date-times, as a date: a republished part makes the page newer."""
    days = [value[:10] for value in dates if isinstance(value, str) and len(value) >= 10]
    return max(days) if days else None


def _compact(value):
    """`value` without None, "", [] or {} anywhere, nor objects holding nothing but their @type."""
    if isinstance(value, dict):
        kept = {key: _compact(item) for key, item in value.items()}
        kept = {key: item for key, item in kept.items() if not _empty(item)}
        return kept if set(kept) - {"@type", "@context"} else {}
    if isinstance(value, list):
        return [item for item in map(_compact, value) if not _empty(item)]
    return value


def _empty(value):
    return value is None or (isinstance(value, (str, list, dict)) and not value)


def _organisation(organisation):
    return {"@type": "Organization", "name": organisation.get("name"), "url": organisation.get("url")}


def _person(person):
    if not person:
        return None
    credentials = person.get("credentials") or []
    return {
        "@type": "Person",
        "name": person.get("name"),
        "honorificSuffix": ", ".join(credentials),
        "hasCredential": [{"@type": "EducationalOccupationalCredential", "name": c} for c in credentials],
        "affiliation": _organisation({"name": person.get("affiliation")}),
        "url": person.get("url"),
    }


def _reviewer(article, person):
    """The medical reviewer as a Person, only when the review is real: the article says it was
    reviewed, and the reviewer is a clinician in the reviewer role who is not the author."""
    if (article.get("review_status") != "medically_reviewed" or not person or not article.get("last_reviewed")
            or person.get("id") == article.get("author") or "medical_reviewer" not in (person.get("roles") or [])
            or not is_clinician(person)):
        return None
    return _person(person)


def _codes(item):
    return [{"@type": "MedicalCode", "codeValue": code.get("value"), "codingSystem": CODING_SYSTEMS.get(code.get("system"))}
            for code in item.get("identifiers") or []
            if code.get("system") in CODING_SYSTEMS and (code.get("verification") or {}).get("status") == "verified"]


def _drug_class(drug_class):
    code = drug_class.get("code")
    return {
        "@type": "DrugClass",
        "name": drug_class.get("name") or code,
        "code": code and {"@type": "MedicalCode", "codeValue": code, "codingSystem": "ATC"},
    }


def _drug(product, page_url):
    if not product:
        return None
    makers = [o.get("name") for o in product.get("organisations") or [] if o.get("role") in MANUFACTURER_ROLES]
    return {
        "@type": "Drug",
        "@id": f"{page_url}#{product.get('id')}",
        "name": product.get("name"),
        "nonProprietaryName": product.get("non_proprietary_name"),
        "activeIngredient": product.get("non_proprietary_name"),
        "description": plain_text(product.get("summary")),
        "administrationRoute": product.get("route"),
        "dosageForm": product.get("dosage_form"),
        "prescriptionStatus": PRESCRIPTION_STATUS.get(product.get("prescription_status")),
        "code": _codes(product),
        "drugClass": [_drug_class(c) for c in product.get("classes") or []],
        "manufacturer": [_organisation({"name": name}) for name in dict.fromkeys(makers)],
        "mechanismOfAction": plain_text((product.get("how_it_works") or {}).get("text")),
    }


def _condition(condition, product, page_url):
    return {
        "@type": "MedicalCondition",
        "@id": f"{page_url}#{condition.get('id')}",
        "name": condition.get("name"),
        "alternateName": condition.get("synonyms") or [],
        "description": plain_text(condition.get("summary")),
        "code": _codes(condition),
        "drug": product and {"@id": f"{page_url}#{product.get('id')}"},
    }


def _faq_page(faqs):
    return {"@type": "FAQPage", "mainEntity": [
        {"@type": "Question", "name": faq.get("question"), "position": position,
         "acceptedAnswer": {"@type": "Answer", "text": plain_text(faq.get("answer"))}}
        for position, faq in enumerate(faqs, start=1)
    ]}


def _mechanism(mechanism):
    """The step-by-step section as a part of the page (a WebPageElement, which is a CreativeWork)
    whose main entity is the ordered list of steps."""
    if not mechanism:
        return None
    steps = sorted(mechanism.get("steps") or [], key=lambda step: step.get("position") or 0)
    return {
        "@type": "WebPageElement",
        "name": mechanism.get("title"),
        "description": plain_text(mechanism.get("summary")),
        "mainEntity": {
            "@type": "ItemList",
            "name": mechanism.get("title"),
            "itemListOrder": "https://schema.org/ItemListOrderAscending",
            "numberOfItems": len(steps),
            "itemListElement": [
                {"@type": "ListItem", "position": step.get("position"), "name": step.get("title"),
                 "description": plain_text(step.get("body"))}
                for step in steps
            ],
        },
    }


def _creative_work(source):
    """A cited source, if it is an external primary source with an address: internal
    compilations, secondary aggregators and address-less records are not citations."""
    if not source or source.get("kind") not in PRIMARY_KINDS or not source.get("url"):
        return None
    return {
        "@type": "CreativeWork",
        "name": source.get("title"),
        "url": source.get("url"),
        "publisher": _organisation({"name": source.get("publisher")}),
        "author": [{"@type": "Person", "name": name} for name in source.get("authors") or []],
        "datePublished": source.get("date_published"),
        "dateModified": source.get("date_modified"),
        "version": source.get("version"),
    }
