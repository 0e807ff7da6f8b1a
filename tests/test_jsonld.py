"""schema.org JSON-LD for articles: built from the shipped content, facts only, nothing empty."""
import copy
import json

import pytest
from conftest import CONTENT

from api.services.jsonld import _compact, article_jsonld
from api.knowledge.documents import load_set

BASE = "https://api.example.org"
ARTICLE = "how-does-hemgenix-work"
STEP_TITLES = [
    "The AAV5 Viral Vector — A Molecular Delivery Truck",
    "The Padua Variant — A High-Activity F9 Gene",
    "After Infusion — The Gene Reaches the Liver",
    "Factor IX Production Begins",
]
REVIEWER = {
    "type": "person", "id": "dr-reviewer", "schema_version": 2, "revision": 1, "locale": "en-US",
    "updated_at": "2026-04-02T00:00:00Z", "name": "Ann Reviewer", "credentials": ["MD", "PhD"],
    "roles": ["medical_reviewer"], "affiliation": "A Hospital",
}


@pytest.fixture(scope="module")
def shipped():
    loaded = load_set([CONTENT])
    assert not loaded.problems
    return loaded.documents


def lookup_in(documents, missing=()):
    """A lookup over `documents` that answers None for the "type/id" keys in `missing`."""
    def lookup(type_name, id_):
        key = f"{type_name}/{id_}"
        return None if key in missing else documents.get(key)
    return lookup


@pytest.fixture
def article(shipped):
    return copy.deepcopy(shipped[f"article/{ARTICLE}"])


@pytest.fixture
def page(shipped, article):
    return article_jsonld(article, lookup_in(shipped), BASE)


def walk(value, path="$"):
    """Every (path, value) in a JSON tree, containers included."""
    yield path, value
    if isinstance(value, dict):
        for key, item in value.items():
            yield from walk(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from walk(item, f"{path}[{index}]")


def assert_clean(value):
    json.dumps(value)  # serialisable as it is
    empty = [path for path, item in walk(value) if item is None or item == "" or item == [] or item == {}]
    assert not empty, empty


# --- the shipped article --------------------------------------------------


def test_top_level_shape(page, article):
    assert page["@context"] == "https://schema.org"
    assert page["@type"] == "MedicalWebPage"
    assert page["@id"] == page["url"] == f"{BASE}/v1/articles/{ARTICLE}"
    assert page["headline"] == page["name"] == article["headline"]
    assert page["description"] == article["summary"]
    assert page["inLanguage"] == "en-US"
    assert page["dateModified"] == "2026-04-02"
    assert page["isAccessibleForFree"] is True
    assert page["medicalAudience"] == {"@type": "MedicalAudience", "audienceType": "Patient"}
    assert page["publisher"] == {"@type": "Organization", "name": "Medfinder", "url": "https://medfinder.com"}
    # The article has none of these, so none are made up.
    for key in ("datePublished", "lastReviewed", "reviewedBy"):
        assert key not in page


def test_about_is_the_drug(page, shipped):
    product = shipped["product/hemgenix"]
    drug = page["about"]
    assert drug["@type"] == "Drug"
    assert drug["@id"] == f"{BASE}/v1/products/hemgenix"
    assert drug["name"] == "Hemgenix"
    assert drug["nonProprietaryName"] == "etranacogene dezaparvovec-drlb"
    assert drug["administrationRoute"] == "intravenous"
    assert drug["dosageForm"] == product["dosage_form"]
    assert drug["description"] == product["summary"]
    assert drug["mechanismOfAction"] == product["how_it_works"]["text"]
    assert drug["drugClass"] == [
        {"@type": "DrugClass", "name": "B02BD16",
         "code": {"@type": "MedicalCode", "codeValue": "B02BD16", "codingSystem": "ATC"}},
        {"@type": "DrugClass", "name": "Gene therapy using an AAV5 vector to deliver the F9 gene"},
    ]
    # CSL Behring markets it; uniQure only developed it.
    assert drug["manufacturer"] == [{"@type": "Organization", "name": "CSL Behring"}]
    for key in ("legalStatus", "relevantSpecialty"):
        assert key not in drug


def test_faq_page_in_article_order(page, shipped, article):
    faq_page = page["mainEntity"]
    assert faq_page["@type"] == "FAQPage"
    questions = faq_page["mainEntity"]
    assert len(questions) == 4
    for position, (question, faq_id) in enumerate(zip(questions, article["faqs"]), start=1):
        faq = shipped[f"faq/{faq_id}"]
        assert question == {"@type": "Question", "name": faq["question"], "position": position,
                            "acceptedAnswer": {"@type": "Answer", "text": faq["answer"]}}


def test_mechanism_is_an_ordered_item_list(page, shipped):
    mechanism = shipped["mechanism/hemgenix-mechanism"]
    [item_list] = page["hasPart"]
    assert item_list["@type"] == "ItemList"
    assert item_list["name"] == "How Hemgenix Works"
    assert item_list["description"] == mechanism["summary"]
    assert item_list["itemListOrder"] == "https://schema.org/ItemListOrderAscending"
    assert item_list["numberOfItems"] == 4
    items = item_list["itemListElement"]
    assert [item["@type"] for item in items] == ["ListItem"] * 4
    assert [item["position"] for item in items] == [1, 2, 3, 4]
    assert [item["name"] for item in items] == STEP_TITLES
    assert [item["description"] for item in items] == [step["body"] for step in mechanism["steps"]]


def test_steps_are_ordered_by_position(shipped, article):
    mechanism = copy.deepcopy(shipped["mechanism/hemgenix-mechanism"])
    mechanism["steps"].reverse()
    documents = {**shipped, "mechanism/hemgenix-mechanism": mechanism}
    items = article_jsonld(article, lookup_in(documents), BASE)["hasPart"][0]["itemListElement"]
    assert [item["name"] for item in items] == STEP_TITLES


def test_author_is_a_person(page):
    assert page["author"] == {"@type": "Person", "name": "Peter Daggett",
                              "affiliation": {"@type": "Organization", "name": "Medfinder"}}


def test_citations_are_creative_works(page):
    assert page["citation"] == [
        {"@type": "CreativeWork",
         "name": "How Does Hemgenix Work? Mechanism of Action Explained in Plain English",
         "publisher": {"@type": "Organization", "name": "Medfinder"},
         "author": [{"@type": "Person", "name": "Peter Daggett"}],
         "dateModified": "2026-04-02"},
        # The compilation records no address, publisher or dates, so none appear.
        {"@type": "CreativeWork", "name": "medkb drug facts: Hemgenix and related products"},
    ]


def test_output_is_json_and_has_no_empty_values(page):
    assert_clean(page)


def test_base_url_is_used(shipped, article):
    page = article_jsonld(article, lookup_in(shipped), "http://localhost:5000")
    assert page["@id"] == page["url"] == f"http://localhost:5000/v1/articles/{ARTICLE}"
    assert page["about"]["@id"] == "http://localhost:5000/v1/products/hemgenix"


def test_inputs_are_not_changed(shipped, article):
    before = copy.deepcopy(shipped)
    article_jsonld(article, lookup_in(shipped), BASE)
    assert shipped == before
    assert article == before[f"article/{ARTICLE}"]


# --- medical review ---------------------------------------------------------


def test_reviewer_and_review_date(shipped, article):
    article.update(medical_reviewer="dr-reviewer", last_reviewed="2026-04-01", date_published="2026-03-01")
    documents = {**shipped, "person/dr-reviewer": REVIEWER}
    page = article_jsonld(article, lookup_in(documents), BASE)
    assert page["reviewedBy"] == {
        "@type": "Person", "name": "Ann Reviewer", "honorificSuffix": "MD, PhD",
        "hasCredential": [{"@type": "EducationalOccupationalCredential", "name": "MD"},
                          {"@type": "EducationalOccupationalCredential", "name": "PhD"}],
        "affiliation": {"@type": "Organization", "name": "A Hospital"},
    }
    assert page["lastReviewed"] == "2026-04-01"
    assert page["datePublished"] == "2026-03-01"
    assert_clean(page)


def test_unresolvable_reviewer_is_left_out(shipped, article):
    article.update(medical_reviewer="nobody", last_reviewed="2026-04-01")
    page = article_jsonld(article, lookup_in(shipped), BASE)
    assert "reviewedBy" not in page
    assert page["lastReviewed"] == "2026-04-01"


# --- missing references -------------------------------------------------------


def test_missing_mechanism_drops_only_has_part(shipped, article, page):
    partial = article_jsonld(article, lookup_in(shipped, {"mechanism/hemgenix-mechanism"}), BASE)
    assert "hasPart" not in partial
    assert partial == {key: value for key, value in page.items() if key != "hasPart"}


def test_missing_faq_is_skipped(shipped, article):
    missing = f"faq/{article['faqs'][1]}"
    page = article_jsonld(article, lookup_in(shipped, {missing}), BASE)
    questions = page["mainEntity"]["mainEntity"]
    expected = [shipped[f"faq/{id_}"]["question"] for id_ in article["faqs"] if f"faq/{id_}" != missing]
    assert [q["name"] for q in questions] == expected
    assert [q["position"] for q in questions] == [1, 2, 3]


def test_no_faqs_means_no_faq_page(shipped, article):
    missing = {f"faq/{id_}" for id_ in article["faqs"]}
    assert "mainEntity" not in article_jsonld(article, lookup_in(shipped, missing), BASE)
    del article["faqs"]
    assert "mainEntity" not in article_jsonld(article, lookup_in(shipped), BASE)


def test_missing_product_drops_only_about(shipped, article, page):
    partial = article_jsonld(article, lookup_in(shipped, {"product/hemgenix"}), BASE)
    assert partial == {key: value for key, value in page.items() if key != "about"}


@pytest.mark.parametrize("missing", ["person/peter-daggett", "source/medkb-drug-facts"])
def test_missing_author_or_source_is_left_out(shipped, article, missing):
    page = article_jsonld(article, lookup_in(shipped, {missing}), BASE)
    if missing.startswith("person/"):
        assert "author" not in page
    else:
        assert [work["name"] for work in page["citation"]] == [
            "How Does Hemgenix Work? Mechanism of Action Explained in Plain English"]
    assert_clean(page)


def test_nothing_resolves(article):
    page = article_jsonld(article, lambda type_name, id_: None, BASE)
    for key in ("about", "author", "mainEntity", "hasPart", "citation", "reviewedBy"):
        assert key not in page
    assert page["headline"] == article["headline"]
    assert_clean(page)


# --- hand-made products ---------------------------------------------------------


def product(**fields):
    return {"type": "product", "id": "drug", "name": "Drug", "non_proprietary_name": "drugamab",
            "summary": "A drug.", "how_it_works": {"text": "It works.", "citations": []},
            "classes": [{"system": "pharmacologic", "name": "factor IX"}], "route": "subcutaneous", **fields}


def about(drug):
    article = {"id": "a", "headline": "H", "summary": "S", "about": "drug", "author": "w",
               "publisher": {"name": "Pub"}, "date_modified": "2026-04-02", "sources": []}
    page = article_jsonld(article, lambda t, i: drug if (t, i) == ("product", "drug") else None, BASE)
    assert_clean(page)
    assert page["publisher"] == {"@type": "Organization", "name": "Pub"}
    return page["about"]


def test_minimal_product_has_no_invented_fields():
    assert about(product()) == {
        "@type": "Drug", "@id": f"{BASE}/v1/products/drug", "name": "Drug", "nonProprietaryName": "drugamab",
        "description": "A drug.", "administrationRoute": "subcutaneous",
        "drugClass": [{"@type": "DrugClass", "name": "factor IX"}], "mechanismOfAction": "It works.",
    }


def test_named_atc_class_keeps_its_name_and_code():
    drug = about(product(classes=[{"system": "atc", "code": "B02BX06", "name": "emicizumab-like"}]))
    assert drug["drugClass"] == [{"@type": "DrugClass", "name": "emicizumab-like",
                                  "code": {"@type": "MedicalCode", "codeValue": "B02BX06", "codingSystem": "ATC"}}]


def test_manufacturers_by_role_once_each():
    drug = about(product(organisations=[
        {"name": "Maker", "role": "manufacturer"},
        {"name": "Holder", "role": "marketing_authorisation_holder"},
        {"name": "Lab", "role": "developer"},
        {"name": "Holder", "role": "marketer"},
    ]))
    assert drug["manufacturer"] == [{"@type": "Organization", "name": "Maker"},
                                    {"@type": "Organization", "name": "Holder"}]


def test_source_with_every_field():
    source = {"type": "source", "id": "s", "title": "Label", "kind": "label", "url": "https://example.org/label",
              "publisher": "FDA", "authors": ["A One", "B Two"], "date_published": "2022-11-22",
              "date_modified": "2024-01-01", "date_accessed": "2026-04-01"}
    article = {"id": "a", "headline": "H", "summary": "S", "publisher": {"name": "Pub"},
               "date_modified": "2026-04-02", "sources": ["s", "gone"]}
    page = article_jsonld(article, lambda t, i: source if (t, i) == ("source", "s") else None, BASE)
    assert page["citation"] == [{
        "@type": "CreativeWork", "name": "Label", "url": "https://example.org/label",
        "publisher": {"@type": "Organization", "name": "FDA"},
        "author": [{"@type": "Person", "name": "A One"}, {"@type": "Person", "name": "B Two"}],
        "datePublished": "2022-11-22", "dateModified": "2024-01-01",
    }]


def test_compact_drops_empty_values_but_keeps_false_and_zero():
    assert _compact({
        "a": None, "b": "", "c": [], "d": {}, "e": [None, "", {}, []], "f": {"g": None},
        "h": {"@type": "Organization", "name": None}, "i": False, "j": 0, "k": [{"@type": "Person", "name": "X"}],
    }) == {"i": False, "j": 0, "k": [{"@type": "Person", "name": "X"}]}
