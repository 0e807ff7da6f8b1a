"""The shipped knowledge base in content/: it validates, and it says what its sources say."""
import json
import re
from pathlib import Path

import pytest

from api.knowledge.documents import load_set

ROOT = Path(__file__).resolve().parents[1]
CONTENT = ROOT / "content"

ARTICLE_SOURCE = "medfinder-how-does-hemgenix-work"
DRUG_FACTS = "medkb-drug-facts"
RELATED = {
    "alprolix": "eftrenonacog alfa",
    "idelvion": "albutrepenonacog alfa",
    "alhemo": "concizumab-mtci",
    "benefix": "nonacog alfa",
}
FACTOR_IX_PRODUCTS = ("alprolix", "idelvion", "benefix")
STEP_TITLES = [
    "The AAV5 Viral Vector — A Molecular Delivery Truck",
    "The Padua Variant — A High-Activity F9 Gene",
    "After Infusion — The Gene Reaches the Liver",
    "Factor IX Production Begins",
]


@pytest.fixture(scope="module")
def loaded():
    return load_set([CONTENT])


@pytest.fixture(scope="module")
def docs(loaded):
    return loaded.documents


def of_type(docs, type_name):
    return [doc for key, doc in sorted(docs.items()) if key.startswith(f"{type_name}/")]


def text_of(node):
    """Every string inside a document, joined, for phrase checks."""
    return json.dumps(node, ensure_ascii=False)


def squash(text):
    return re.sub(r"\s+", " ", text)


def citation_sources(node):
    return {c["source"] for c in node.get("citations", [])}


# --- the set as a whole ---------------------------------------------------


def test_shipped_content_validates_with_no_problems(loaded):
    assert loaded.problems == [], "\n".join(map(str, loaded.problems))
    assert loaded.files_seen == len(loaded.documents)


def test_every_expected_document_is_present(docs):
    expected = {
        "source/medfinder-how-does-hemgenix-work", "source/medkb-drug-facts", "person/peter-daggett",
        "condition/hemophilia-b", "mechanism/hemgenix-mechanism", "article/how-does-hemgenix-work",
        "product/hemgenix", *(f"product/{p}" for p in RELATED),
    }
    assert expected <= set(docs)


@pytest.mark.parametrize("phrase", ["better than", "safer than", "as effective as", "as good as"])
def test_no_document_makes_a_comparative_claim(docs, phrase):
    offenders = [key for key, doc in docs.items() if phrase in text_of(doc).lower()]
    assert offenders == []


def test_no_identifiers_are_recorded(docs):
    # No RxCUI, UNII or NDC appears in the material, so none may appear in the content.
    assert [key for key, doc in docs.items() if "identifiers" in doc] == []
    for doc in docs.values():
        lowered = text_of(doc).lower()
        for system in ("rxcui", "unii", "ndc"):
            assert not re.search(rf"\b{system}\b", lowered), (doc["id"], system)


def test_sources_have_no_guessed_urls(docs):
    assert [s["id"] for s in of_type(docs, "source") if "url" in s] == []


def test_sources_record_their_verification_state(docs):
    assert docs[f"source/{ARTICLE_SOURCE}"]["verification"] == "verified"
    drug_facts = docs[f"source/{DRUG_FACTS}"]
    assert drug_facts["kind"] == "compilation"
    assert drug_facts["verification"] == "unverified"


def test_article_source_names_publisher_author_and_date(docs):
    source = docs[f"source/{ARTICLE_SOURCE}"]
    assert source["kind"] == "article"
    assert source["publisher"] == "Medfinder"
    assert source["authors"] == ["Peter Daggett"]
    assert source["date_modified"] == "2026-04-02"


def test_author_has_no_invented_credentials(docs):
    person = docs["person/peter-daggett"]
    assert person["roles"] == ["author"]
    assert person["affiliation"] == "Medfinder"
    assert "credentials" not in person


# --- condition ---------------------------------------------------------------


def test_hemophilia_b_cause_and_inheritance_come_from_the_article(docs):
    condition = docs["condition/hemophilia-b"]
    assert condition["gene"] == "F9"
    assert condition["protein"] == "factor IX"
    assert condition["inheritance"] == "x_linked_recessive"
    assert "Christmas disease" not in text_of(condition)
    assert ARTICLE_SOURCE in citation_sources(condition["cause"])


def test_treatment_approaches_keep_the_articles_claim_attributed(docs):
    approaches = {a["name"]: a for a in docs["condition/hemophilia-b"]["treatment_approaches"]}
    replacement = approaches["Factor IX replacement therapy"]
    assert "2–3 times per week" in replacement["text"]
    assert citation_sources(replacement) == {ARTICLE_SOURCE, DRUG_FACTS}
    assert replacement["verification"] == "unverified"
    assert "Gene therapy" in approaches
    assert any("TFPI" in a["text"] for a in approaches.values())


# --- mechanism ---------------------------------------------------------------


@pytest.fixture(scope="module")
def mechanism(docs):
    return docs["mechanism/hemgenix-mechanism"]


def step(mechanism, position):
    return squash(next(s for s in mechanism["steps"] if s["position"] == position)["body"])


def section(mechanism, key):
    return next(s for s in mechanism["sections"] if s["key"] == key)


def test_mechanism_has_four_steps_in_order_with_the_articles_titles(mechanism):
    assert mechanism["product"] == "hemgenix"
    assert [s["position"] for s in mechanism["steps"]] == [1, 2, 3, 4]
    assert [s["title"] for s in mechanism["steps"]] == STEP_TITLES


@pytest.mark.parametrize("position", [1, 2, 3, 4])
def test_each_step_cites_the_article_at_that_step(mechanism, position):
    cited = next(s for s in mechanism["steps"] if s["position"] == position)["citations"]
    assert {"source": ARTICLE_SOURCE} in [{"source": c["source"]} for c in cited]
    assert any(c.get("locator", "").startswith(f"Step {position}") for c in cited)


@pytest.mark.parametrize("position, facts", [
    (1, ["AAV5", "hepatocytes", "replicate", "pre-existing antibodies", "safety track record"]),
    (2, ["hFIX598 Padua", "approximately 8 times more active", "codon-optimized", "liver-specific promoter"]),
    (3, ["intravenously", "episome", "integration into the genome does occur at low levels",
         "unproven, as of 2026", "hepatocellular carcinoma"]),
    (4, ["several weeks", "continue their existing Factor IX prophylaxis", "HOPE-B",
         "39.0 IU/dL at 6 months", "Over 5 years of follow-up", "stable in most patients"]),
])
def test_step_bodies_keep_the_articles_facts(mechanism, position, facts):
    body = step(mechanism, position)
    for fact in facts:
        assert fact in body, (position, fact)


def test_root_cause_section_comes_before_the_steps(mechanism):
    root = section(mechanism, "root-cause")
    assert root["placement"] == "before_steps"
    body = squash(root["body"])
    for fact in ("F9 gene", "Factor IX", "X-linked", "2–3 times per week"):
        assert fact in body
    assert citation_sources(root) == {ARTICLE_SOURCE}


def test_immune_section_gives_the_monitoring_schedule(mechanism):
    immune = section(mechanism, "immune-system")
    assert immune["placement"] == "after_steps"
    assert immune["title"] == "Why the Immune System Can Complicate Things"
    body = squash(immune["body"])
    for fact in ("immune-mediated hepatotoxicity", "ALT", "AST",
                 "weekly liver function monitoring for 3 months (then monthly up to 1 year)",
                 "corticosteroids", "alcohol", "hepatotoxic supplements", "first year"):
        assert fact in body, fact
    assert any(c["locator"] == "Why the Immune System Can Complicate Things" for c in immune["citations"])


# --- FAQs ----------------------------------------------------------------


@pytest.fixture(scope="module")
def hemgenix_faqs(docs):
    return sorted((f for f in of_type(docs, "faq") if f["product"] == "hemgenix"), key=lambda f: f["position"])


def test_hemgenix_has_exactly_four_faqs_numbered_one_to_four(hemgenix_faqs):
    assert [f["position"] for f in hemgenix_faqs] == [1, 2, 3, 4]
    assert all(f["id"].startswith("hemgenix-") for f in hemgenix_faqs)
    assert all(f["question"].endswith("?") for f in hemgenix_faqs)


@pytest.mark.parametrize("position, facts", [
    (1, ["AAV5", "Padua variant", "hepatocytes", "IV infusion", "without requiring ongoing infusions"]),
    (2, ["episome", "low-level integration", "liver ultrasound and AFP levels for up to 5 years"]),
    (3, ["1. **Immune-mediated hepatotoxicity**", "2. **Neutralizing AAV5 antibodies**", "3. **Liver disease**"]),
    (4, ["R338L", "approximately 8 times more active", "single one-time infusion"]),
])
def test_faq_answers_keep_the_articles_facts(hemgenix_faqs, position, facts):
    faq = hemgenix_faqs[position - 1]
    answer = squash(faq["answer"])
    for fact in facts:
        assert fact in answer, (position, fact)
    assert faq["citations"] == [{"source": ARTICLE_SOURCE, "locator": f"Frequently Asked Questions, answer {position}"}]


# --- products ----------------------------------------------------------------


@pytest.fixture(scope="module")
def hemgenix(docs):
    return docs["product/hemgenix"]


@pytest.mark.parametrize("product, non_proprietary_name", sorted(RELATED.items()))
def test_related_product_exists_with_its_non_proprietary_name(docs, product, non_proprietary_name):
    doc = docs[f"product/{product}"]
    assert doc["non_proprietary_name"] == non_proprietary_name
    assert doc["conditions"] == ["hemophilia-b"]


@pytest.mark.parametrize("product", sorted(RELATED))
def test_hemgenix_relates_to_each_looked_for_product_as_browsing_only(hemgenix, product):
    relation = next(r for r in hemgenix["related"] if r["product"] == product and r["type"] == "also_looked_for")
    assert "also looked for" in relation["basis"]
    assert "not mean the two products are equivalent" in relation["basis"]
    assert citation_sources(relation) == {ARTICLE_SOURCE}


@pytest.mark.parametrize("product, route, product_type", [
    ("alprolix", "intravenous", "recombinant_factor"),
    ("idelvion", "intravenous", "recombinant_factor"),
    ("benefix", "intravenous", "recombinant_factor"),
    ("alhemo", "subcutaneous", "monoclonal_antibody"),
    ("hemgenix", "intravenous", "gene_therapy"),
])
def test_products_have_their_route_and_type(docs, product, route, product_type):
    doc = docs[f"product/{product}"]
    assert (doc["route"], doc["product_type"]) == (route, product_type)


@pytest.mark.parametrize("product", sorted(RELATED))
def test_every_related_product_dosing_entry_is_unverified(docs, product):
    dosing = docs[f"product/{product}"]["dosing"]
    assert dosing
    assert all(entry["verification"] == "unverified" for entry in dosing)
    assert all(citation_sources(entry) == {DRUG_FACTS} for entry in dosing)


def test_factor_ix_products_share_atc_b02bd04_and_alhemo_has_no_atc(docs):
    for product in FACTOR_IX_PRODUCTS:
        atc = [c["code"] for c in docs[f"product/{product}"]["classes"] if c["system"] == "atc"]
        assert atc == ["B02BD04"]
    assert [c for c in docs["product/alhemo"]["classes"] if c["system"] == "atc"] == []


def test_same_class_links_only_the_recombinant_factor_ix_products(docs):
    for doc in of_type(docs, "product"):
        targets = {r["product"] for r in doc.get("related", []) if r["type"] == "same_class"}
        if doc["id"] in FACTOR_IX_PRODUCTS:
            assert targets == set(FACTOR_IX_PRODUCTS) - {doc["id"]}
        else:
            assert targets == set()


def test_alprolix_maker_is_marked_unverified(docs):
    organisations = docs["product/alprolix"]["organisations"]
    assert {o["name"].split(" ")[0] for o in organisations} == {"Sanofi", "Sobi", "Biogen"}
    assert all(o["verification"] == "unverified" for o in organisations)


def test_hemgenix_names_and_organisations(hemgenix):
    assert hemgenix["non_proprietary_name"] == "etranacogene dezaparvovec-drlb"
    assert hemgenix["development_code"] == "AMT-061"
    assert {(o["name"], o["role"]) for o in hemgenix["organisations"]} == {
        ("CSL Behring", "marketer"), ("uniQure", "developer")}


def test_hemgenix_how_it_works_gives_vector_gene_and_promoter(hemgenix):
    text = squash(hemgenix["how_it_works"]["text"])
    for fact in ("AAV5", "Padua", "R338L", "approximately 8 times more active", "liver-specific promoter",
                 "given once", "intravenous"):
        assert fact in text, fact
    assert citation_sources(hemgenix["how_it_works"]) == {ARTICLE_SOURCE}


def test_hemgenix_atc_code_cites_the_eu_smpc_origin(hemgenix):
    atc = next(c for c in hemgenix["classes"] if c["system"] == "atc")
    assert atc["code"] == "B02BD16"
    assert any("EU SmPC" in c["locator"] for c in atc["citations"])


def test_hemgenix_approvals_keep_month_precision_where_no_day_is_known(hemgenix):
    approvals = {(a["region"], a["date"], a.get("kind")) for a in hemgenix["approvals"]}
    # The material says "US approval" and "EU conditional approval": no kind for the US one.
    assert approvals == {("United States", "2022-11-22", None), ("European Union", "2023-02", "conditional")}


def test_hemgenix_is_a_one_time_infusion_at_the_label_dose(hemgenix):
    dosing = squash(" ".join(d["text"] for d in hemgenix["dosing"]))
    assert "Given once" in dosing
    assert "2×10^13 genome copies per kilogram" in dosing


def test_hemgenix_has_the_126_to_130_kg_kit(hemgenix):
    kit = next(v for v in hemgenix["package_variants"] if v["name"] == "Hemgenix Kit 126-130 kg")
    assert (kit["weight_min_kg"], kit["weight_max_kg"]) == (126, 130)
    assert "Dose in mL = 2 × weight in kg" in kit["description"]
    assert "10 mL vials" in kit["description"]


def test_hemgenix_key_risks_are_cited(hemgenix):
    risks = {r["name"]: squash(r["description"]) for r in hemgenix["key_risks"]}
    assert "Infusion reactions" in risks
    liver = next(d for n, d in risks.items() if "hepatotoxicity" in n)
    assert "ALT" in liver and "AST" in liver and "weekly for 3 months, then monthly up to 1 year" in liver
    cancer = next(d for n, d in risks.items() if "hepatocellular carcinoma" in n)
    assert "theoretical" in cancer and "low levels" in cancer
    assert all(r["citations"] for r in hemgenix["key_risks"])


# --- citations everywhere they are needed ------------------------------------


def cited_statements(docs):
    for doc in docs.values():
        if doc["type"] == "product":
            yield doc["id"], "how_it_works", doc["how_it_works"]
            for field in ("dosing", "key_risks", "approvals"):
                for index, item in enumerate(doc.get(field, [])):
                    yield doc["id"], f"{field}.{index}", item
        elif doc["type"] == "mechanism":
            for field in ("steps", "sections"):
                for index, item in enumerate(doc.get(field, [])):
                    yield doc["id"], f"{field}.{index}", item
        elif doc["type"] == "faq":
            yield doc["id"], "answer", doc


def test_every_clinical_statement_carries_a_citation_with_a_locator(docs):
    missing = [(doc_id, field) for doc_id, field, item in cited_statements(docs)
               if not item.get("citations") or not all(c.get("locator") for c in item["citations"])]
    assert missing == []


# --- article -----------------------------------------------------------------


def test_article_matches_its_source(docs):
    article = docs["article/how-does-hemgenix-work"]
    assert article["headline"] == "How Does Hemgenix Work? Mechanism of Action Explained in Plain English"
    assert article["author"] == "peter-daggett"
    assert article["date_modified"] == "2026-04-02"
    assert article["publisher"]["name"] == "Medfinder"
    assert set(article["sources"]) == {ARTICLE_SOURCE, DRUG_FACTS}
    for absent in ("medical_reviewer", "last_reviewed", "date_published"):
        assert absent not in article


def test_article_mechanism_and_faqs_belong_to_hemgenix(docs, hemgenix_faqs):
    article = docs["article/how-does-hemgenix-work"]
    assert article["about"] == "hemgenix"
    assert docs[f"mechanism/{article['mechanism']}"]["product"] == "hemgenix"
    assert article["faqs"] == [f["id"] for f in hemgenix_faqs]
    assert all(docs[f"faq/{faq_id}"]["product"] == "hemgenix" for faq_id in article["faqs"])
