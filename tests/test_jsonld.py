"""schema.org JSON-LD for articles: built from the shipped content, facts only, nothing empty."""
import copy
import json

import pytest
from conftest import CONTENT

import schemaorg_vocabulary as vocabulary
from api.services.jsonld import _compact, article_jsonld, plain_text
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
    "type": "person", "id": "dr-reviewer", "schema_version": 3, "revision": 1, "locale": "en-US",
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
    # The page's canonical web address, not the API's JSON endpoint.
    assert page["@id"] == page["url"] == f"{BASE}/{article['slug']}"
    assert "/v1/" not in json.dumps(page)
    assert page["headline"] == page["name"] == article["headline"]
    assert page["description"] == article["summary"]
    assert page["inLanguage"] == "en-US"
    assert page["isAccessibleForFree"] is True
    assert page["medicalAudience"] == {"@type": "MedicalAudience", "audienceType": "Patient"}
    assert page["publisher"] == {"@type": "Organization", "name": "Medfinder", "url": "https://medfinder.com"}
    # Not medically reviewed and no known publication date: none is claimed.
    for key in ("datePublished", "lastReviewed", "reviewedBy"):
        assert key not in page


def test_date_modified_is_the_latest_of_the_page_and_its_parts(page, shipped):
    parts = ["article/how-does-hemgenix-work", "product/hemgenix", "mechanism/hemgenix-mechanism"]
    assert page["dateModified"] == max(shipped[key]["updated_at"][:10] for key in parts)


def test_republishing_with_a_new_faq_moves_date_modified(shipped, article, page):
    faq = dict(shipped["faq/hemgenix-how-does-it-work"], id="hemgenix-new", updated_at="2027-01-05T09:00:00Z")
    article.update(faqs=article["faqs"] + ["hemgenix-new"], updated_at="2027-01-05T09:00:00Z")
    later = article_jsonld(article, lookup_in({**shipped, "faq/hemgenix-new": faq}), BASE)
    assert later["dateModified"] == "2027-01-05" > page["dateModified"]


def test_about_is_the_drug_and_the_condition(page, shipped):
    product = shipped["product/hemgenix"]
    drug, condition = page["about"]
    assert drug["@type"] == "Drug"
    assert drug["@id"] == f"{BASE}/how-does-hemgenix-work#hemgenix"
    assert drug["name"] == "Hemgenix"
    assert drug["nonProprietaryName"] == drug["activeIngredient"] == "etranacogene dezaparvovec-drlb"
    assert drug["prescriptionStatus"] == "https://schema.org/PrescriptionOnly"
    assert drug["administrationRoute"] == "intravenous"
    assert drug["dosageForm"] == product["dosage_form"]
    assert drug["description"] == product["summary"]
    # The full ATC code is the drug's code; its class is the ATC group. Unverified codes stay out.
    assert drug["code"] == [{"@type": "MedicalCode", "codeValue": "B02BD16", "codingSystem": "ATC"},
                            {"@type": "MedicalCode", "codeValue": "0053-0300-30", "codingSystem": "NDC"}]
    assert drug["drugClass"] == [
        {"@type": "DrugClass", "name": "B02BD", "code": {"@type": "MedicalCode", "codeValue": "B02BD", "codingSystem": "ATC"}},
        {"@type": "DrugClass", "name": "Gene therapy using an AAV5 vector to deliver the F9 gene"},
    ]
    assert drug["manufacturer"] == [{"@type": "Organization", "name": "CSL Behring"}]
    assert condition["@type"] == "MedicalCondition"
    assert condition["name"] == "Hemophilia B"
    assert condition["code"] == [{"@type": "MedicalCode", "codeValue": "306900", "codingSystem": "OMIM"}]
    assert condition["drug"] == {"@id": drug["@id"]}


def test_text_is_plain_not_markdown(page, shipped):
    answer = page["mainEntity"]["mainEntity"][2]["acceptedAnswer"]["text"]
    assert "**" not in answer and "1. Immune-mediated hepatotoxicity:" in answer
    for _, value in walk(page):
        if isinstance(value, str):
            assert "**" not in value and "](" not in value, value


@pytest.mark.parametrize("markdown, text", [
    ("**Bold** and *italic* and _under_", "Bold and italic and under"),
    ("See [the label](https://example.org) now", "See the label now"),
    ("# Title\n\n- one\n- two", "Title\n\none\ntwo"),
    ("1. **First**: a\n2. Second", "1. First: a\n2. Second"),
    ("Use `code` > here", "Use code > here"),
    ("2×10^13 genome copies per kg", "2×10^13 genome copies per kg"),
    ("snake_case_word and 2*3*4", "snake_case_word and 2*3*4"),
])
def test_plain_text_reduces_markdown(markdown, text):
    assert plain_text(markdown) == text


def test_faq_page_in_article_order(page, shipped, article):
    faq_page = page["mainEntity"]
    assert faq_page["@type"] == "FAQPage"
    questions = faq_page["mainEntity"]
    assert len(questions) == 4
    for position, (question, faq_id) in enumerate(zip(questions, article["faqs"]), start=1):
        faq = shipped[f"faq/{faq_id}"]
        assert question == {"@type": "Question", "name": faq["question"], "position": position,
                            "acceptedAnswer": {"@type": "Answer", "text": plain_text(faq["answer"])}}


def test_mechanism_is_a_page_part_holding_an_ordered_item_list(page, shipped):
    mechanism = shipped["mechanism/hemgenix-mechanism"]
    [part] = page["hasPart"]
    assert part["@type"] == "WebPageElement"  # a CreativeWork, as hasPart requires
    assert part["name"] == "How Hemgenix Works"
    assert part["description"] == mechanism["summary"]
    item_list = part["mainEntity"]
    assert item_list["@type"] == "ItemList"
    assert item_list["itemListOrder"] == "https://schema.org/ItemListOrderAscending"
    assert item_list["numberOfItems"] == 4
    items = item_list["itemListElement"]
    assert [item["position"] for item in items] == [1, 2, 3, 4]
    assert [item["name"] for item in items] == STEP_TITLES
    assert [item["description"] for item in items] == [plain_text(step["body"]) for step in mechanism["steps"]]


def test_steps_are_ordered_by_position(shipped, article):
    mechanism = copy.deepcopy(shipped["mechanism/hemgenix-mechanism"])
    mechanism["steps"].reverse()
    documents = {**shipped, "mechanism/hemgenix-mechanism": mechanism}
    items = article_jsonld(article, lookup_in(documents), BASE)["hasPart"][0]["mainEntity"]["itemListElement"]
    assert [item["name"] for item in items] == STEP_TITLES


def test_author_is_a_person(page):
    assert page["author"] == {"@type": "Person", "name": "Peter Daggett",
                              "affiliation": {"@type": "Organization", "name": "Medfinder"}}


def test_citations_are_the_external_primary_sources_only(page, shipped):
    cited = {work["url"]: work for work in page["citation"]}
    assert [work["name"] for work in page["citation"]] == [
        shipped[f"source/{id_}"]["title"] for id_ in
        ("hemgenix-us-pi", "hemgenix-eu-smpc", "hemgenix-eu-package-leaflet", "hope-b-nejm-2023")]
    # Not the internal compilation, and not the article the page itself reproduces.
    assert all(work["@type"] == "CreativeWork" and work["url"].startswith("https://") for work in cited.values())
    names = json.dumps(page["citation"])
    assert "medkb drug facts" not in names and "Mechanism of Action Explained" not in names


def test_output_is_json_and_has_no_empty_values(page):
    assert_clean(page)


def test_base_url_is_used(shipped, article):
    page = article_jsonld(article, lookup_in(shipped), "http://localhost:5000")
    assert page["@id"] == page["url"] == f"http://localhost:5000/{article['slug']}"
    assert page["about"][0]["@id"] == f"http://localhost:5000/{article['slug']}#hemgenix"


def test_inputs_are_not_changed(shipped, article):
    before = copy.deepcopy(shipped)
    article_jsonld(article, lookup_in(shipped), BASE)
    assert shipped == before
    assert article == before[f"article/{ARTICLE}"]


# --- against the schema.org vocabulary ----------------------------------------


def reviewed(shipped, article):
    article.update(medical_reviewer="dr-reviewer", last_reviewed="2026-04-01", review_status="medically_reviewed",
                   date_published="2026-03-01")
    return article_jsonld(article, lookup_in({**shipped, "person/dr-reviewer": REVIEWER}), BASE)


def test_every_property_exists_on_its_type_and_every_value_fits_its_range(shipped, article, page):
    assert vocabulary.problems(page) == []
    assert vocabulary.problems(reviewed(shipped, article)) == []


@pytest.mark.parametrize("node, words", [
    ({"@type": "MedicalWebPage", "hasPart": [{"@type": "ItemList", "name": "x"}]}, "hasPart"),
    ({"@type": "DrugClass", "name": "B02BD16", "activeIngredient": "x"}, "not a property of DrugClass"),
    ({"@type": "Drug", "madeUp": 1}, "not a schema.org property"),
    ({"@type": "Drug", "prescriptionStatus": {"@type": "Person", "name": "x"}}, "prescriptionStatus"),
    ({"@type": "MedicalWebPage", "lastReviewed": "last spring"}, "lastReviewed"),
])
def test_the_vocabulary_check_catches_what_it_is_for(node, words):
    assert any(words in problem for problem in vocabulary.problems(node)), vocabulary.problems(node)


def test_pyld_expands_every_term_with_the_packaged_context(page):
    from pyld import jsonld

    expanded = jsonld.expand(page, {"documentLoader": vocabulary.document_loader})
    used = {key for path, value in walk(page) if isinstance(value, dict) for key in value if not key.startswith("@")}
    found = {key.rsplit("/", 1)[1] for path, value in walk(expanded) if isinstance(value, dict)
             for key in value if key.startswith("http://schema.org/")}
    # pyld silently drops terms its context does not define; every one must survive.
    assert used - found == set()
    [node] = expanded
    assert node["@type"] == ["http://schema.org/MedicalWebPage"]
    assert node["@id"] == f"{BASE}/{ARTICLE}"


def test_the_loader_never_fetches_anything_else():
    with pytest.raises(ValueError, match="never reach the network"):
        vocabulary.document_loader("https://example.org/context.jsonld")


# --- medical review ---------------------------------------------------------


def test_reviewer_and_review_date_when_really_reviewed(shipped, article):
    page = reviewed(shipped, article)
    assert page["reviewedBy"] == {
        "@type": "Person", "name": "Ann Reviewer", "honorificSuffix": "MD, PhD",
        "hasCredential": [{"@type": "EducationalOccupationalCredential", "name": "MD"},
                          {"@type": "EducationalOccupationalCredential", "name": "PhD"}],
        "affiliation": {"@type": "Organization", "name": "A Hospital"},
    }
    assert page["lastReviewed"] == "2026-04-01"
    assert page["datePublished"] == "2026-03-01"
    assert_clean(page)


@pytest.mark.parametrize("change", [
    {"medical_reviewer": "nobody"},
    {"medical_reviewer": "peter-daggett"},  # the author
    {"review_status": "not_medically_reviewed"},
    {"reviewer": {"roles": ["author"]}},
    {"reviewer": {"credentials": ["PhD"]}},
])
def test_no_review_is_claimed_unless_it_is_real(shipped, article, change):
    article.update(medical_reviewer="dr-reviewer", last_reviewed="2026-04-01", review_status="medically_reviewed")
    article.update({key: value for key, value in change.items() if key != "reviewer"})
    person = {**REVIEWER, **change.get("reviewer", {})}
    page = article_jsonld(article, lookup_in({**shipped, "person/dr-reviewer": person}), BASE)
    assert "reviewedBy" not in page and "lastReviewed" not in page


# --- missing references -------------------------------------------------------


def test_missing_mechanism_drops_only_has_part(shipped, article, page):
    partial = article_jsonld(article, lookup_in(shipped, {"mechanism/hemgenix-mechanism"}), BASE)
    assert "hasPart" not in partial
    assert {key: value for key, value in partial.items() if key != "dateModified"} == {
        key: value for key, value in page.items() if key not in ("hasPart", "dateModified")}


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


def test_missing_product_drops_drug_and_condition(shipped, article, page):
    partial = article_jsonld(article, lookup_in(shipped, {"product/hemgenix"}), BASE)
    assert "about" not in partial


@pytest.mark.parametrize("missing", ["person/peter-daggett", "source/hemgenix-us-pi"])
def test_missing_author_or_source_is_left_out(shipped, article, missing):
    page = article_jsonld(article, lookup_in(shipped, {missing}), BASE)
    if missing.startswith("person/"):
        assert "author" not in page
    else:
        assert "hemgenix-us-pi" not in json.dumps(page) and len(page["citation"]) == 3
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
    article = {"id": "a", "slug": "a", "headline": "H", "summary": "S", "about": "drug", "author": "w",
               "publisher": {"name": "Pub"}, "date_modified": "2026-04-02", "sources": []}
    page = article_jsonld(article, lambda t, i: drug if (t, i) == ("product", "drug") else None, BASE)
    assert_clean(page)
    assert vocabulary.problems(page) == []
    assert page["publisher"] == {"@type": "Organization", "name": "Pub"}
    return page["about"][0]


def test_minimal_product_has_no_invented_fields():
    assert about(product()) == {
        "@type": "Drug", "@id": f"{BASE}/a#drug", "name": "Drug", "nonProprietaryName": "drugamab",
        "activeIngredient": "drugamab", "description": "A drug.", "administrationRoute": "subcutaneous",
        "drugClass": [{"@type": "DrugClass", "name": "factor IX"}], "mechanismOfAction": "It works.",
    }


def test_named_atc_group_keeps_its_name_and_code():
    drug = about(product(classes=[{"system": "atc", "code": "B02BX", "name": "other systemic hemostatics"}]))
    assert drug["drugClass"] == [{"@type": "DrugClass", "name": "other systemic hemostatics",
                                  "code": {"@type": "MedicalCode", "codeValue": "B02BX", "codingSystem": "ATC"}}]


def test_only_verified_codes_are_emitted():
    verified = {"status": "verified", "source": "s", "date": "2026-04-01"}
    drug = about(product(identifiers=[
        {"system": "ndc", "value": "0053-0300-30", "verification": verified},
        {"system": "rxcui", "value": "2626772", "verification": {"status": "unverified"}},
        {"system": "application_number", "value": "BLA125444", "verification": verified},
    ]))
    assert drug["code"] == [{"@type": "MedicalCode", "codeValue": "0053-0300-30", "codingSystem": "NDC"}]


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
    article = {"id": "a", "slug": "a", "headline": "H", "summary": "S", "publisher": {"name": "Pub"},
               "date_modified": "2026-04-02", "sources": ["s", "gone"]}
    page = article_jsonld(article, lambda t, i: source if (t, i) == ("source", "s") else None, BASE)
    assert page["citation"] == [{
        "@type": "CreativeWork", "name": "Label", "url": "https://example.org/label",
        "publisher": {"@type": "Organization", "name": "FDA"},
        "author": [{"@type": "Person", "name": "A One"}, {"@type": "Person", "name": "B Two"}],
        "datePublished": "2022-11-22", "dateModified": "2024-01-01",
    }]
    assert vocabulary.problems(page) == []


@pytest.mark.parametrize("kind", ["compilation", "secondary"])
def test_internal_and_secondary_sources_are_not_citations(kind):
    source = {"type": "source", "id": "s", "title": "Notes", "kind": kind, "url": "https://example.org/notes"}
    article = {"id": "a", "slug": "a", "headline": "H", "summary": "S", "publisher": {"name": "Pub"},
               "date_modified": "2026-04-02", "sources": ["s"]}
    assert "citation" not in article_jsonld(article, lambda t, i: source if t == "source" else None, BASE)


def test_compact_drops_empty_values_but_keeps_false_and_zero():
    assert _compact({
        "a": None, "b": "", "c": [], "d": {}, "e": [None, "", {}, []], "f": {"g": None},
        "h": {"@type": "Organization", "name": None}, "i": False, "j": 0, "k": [{"@type": "Person", "name": "X"}],
    }) == {"i": False, "j": 0, "k": [{"@type": "Person", "name": "X"}]}
