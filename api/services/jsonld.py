"""schema.org JSON-LD for an article page.

`article_jsonld(article, lookup, base_url)` describes a published article as a
`MedicalWebPage`, built only from the documents themselves: nothing is invented
(no job titles, legal status or specialties), a reference that `lookup` cannot
resolve is simply left out, and no key is ever given an empty value.
"""

MANUFACTURER_ROLES = ("marketer", "manufacturer", "marketing_authorisation_holder")
CODING_SYSTEMS = {"atc": "ATC"}


def article_jsonld(article: dict, lookup, base_url: str) -> dict:
    """The JSON-LD object for `article`; `lookup(type, id)` gives a published document or None."""

    def find(type_name, id_):
        return lookup(type_name, id_) if id_ else None

    url = f"{base_url}/v1/articles/{article.get('id')}"
    reviewer = find("person", article.get("medical_reviewer"))
    faqs = [find("faq", id_) for id_ in article.get("faqs") or []]
    return _compact({
        "@context": "https://schema.org",
        "@type": "MedicalWebPage",
        "@id": url,
        "url": url,
        "headline": article.get("headline"),
        "name": article.get("headline"),
        "description": article.get("summary"),
        "inLanguage": article.get("locale"),
        "datePublished": article.get("date_published"),
        "dateModified": article.get("date_modified"),
        "lastReviewed": article.get("last_reviewed"),
        "reviewedBy": _person(reviewer),
        "author": _person(find("person", article.get("author"))),
        "publisher": _organisation(article.get("publisher") or {}),
        "isAccessibleForFree": True,
        "medicalAudience": {"@type": "MedicalAudience", "audienceType": "Patient"},
        "about": _drug(find("product", article.get("about")), base_url),
        "mainEntity": _faq_page([faq for faq in faqs if faq]),
        "hasPart": [_item_list(find("mechanism", article.get("mechanism")))],
        "citation": [_creative_work(find("source", id_)) for id_ in article.get("sources") or []],
    })


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


def _drug_class(drug_class):
    code = drug_class.get("code")
    return {
        "@type": "DrugClass",
        "name": drug_class.get("name") or code,
        "code": code and {"@type": "MedicalCode", "codeValue": code,
                          "codingSystem": CODING_SYSTEMS.get(drug_class.get("system"))},
    }


def _drug(product, base_url):
    if not product:
        return None
    makers = [o.get("name") for o in product.get("organisations") or [] if o.get("role") in MANUFACTURER_ROLES]
    return {
        "@type": "Drug",
        "@id": f"{base_url}/v1/products/{product.get('id')}",
        "name": product.get("name"),
        "nonProprietaryName": product.get("non_proprietary_name"),
        "description": product.get("summary"),
        "administrationRoute": product.get("route"),
        "dosageForm": product.get("dosage_form"),
        "drugClass": [_drug_class(c) for c in product.get("classes") or []],
        "manufacturer": [_organisation({"name": name}) for name in dict.fromkeys(makers)],
        "mechanismOfAction": (product.get("how_it_works") or {}).get("text"),
    }


def _faq_page(faqs):
    return {"@type": "FAQPage", "mainEntity": [
        {"@type": "Question", "name": faq.get("question"), "position": position,
         "acceptedAnswer": {"@type": "Answer", "text": faq.get("answer")}}
        for position, faq in enumerate(faqs, start=1)
    ]}


def _item_list(mechanism):
    if not mechanism:
        return None
    steps = sorted(mechanism.get("steps") or [], key=lambda step: step.get("position") or 0)
    return {
        "@type": "ItemList",
        "name": mechanism.get("title"),
        "description": mechanism.get("summary"),
        "itemListOrder": "https://schema.org/ItemListOrderAscending",
        "numberOfItems": len(steps),
        "itemListElement": [
            {"@type": "ListItem", "position": step.get("position"), "name": step.get("title"),
             "description": step.get("body")}
            for step in steps
        ],
    }


def _creative_work(source):
    if not source:
        return None
    return {
        "@type": "CreativeWork",
        "name": source.get("title"),
        "url": source.get("url"),
        "publisher": _organisation({"name": source.get("publisher")}),
        "author": [{"@type": "Person", "name": name} for name in source.get("authors") or []],
        "datePublished": source.get("date_published"),
        "dateModified": source.get("date_modified"),
    }
