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


# Every code in label-facts.md, with how far it was verified there. Codes marked "not found" (UNII, Alhemo's
# ATC, the Hemgenix BLA, ICD-11) are absent: never guessed.
EXPECTED_CODES = {
    "product/hemgenix": {("atc", "B02BD16", "verified"), ("ndc", "0053-0300-30", "verified"),
                         ("rxcui", "2626772", "unverified")},
    "product/alprolix": {("ndc", "71104-933-01", "verified"), ("application_number", "BLA125444", "verified"),
                         ("atc", "B02BD04", "unverified")},
    "product/idelvion": {("ndc", "69911-866-02", "verified"), ("application_number", "BLA125582", "verified"),
                         ("atc", "B02BD04", "unverified")},
    "product/alhemo": {("ndc", "0169-2080-15", "verified"), ("application_number", "BLA761315", "verified"),
                       ("rxcui", "2708346", "unverified")},
    "product/benefix": {("ndc", "58394-633-03", "verified"), ("application_number", "BLA103677", "verified"),
                        ("atc", "B02BD04", "unverified")},
    "condition/hemophilia-b": {("icd10cm", "D67", "unverified"), ("omim", "306900", "verified"),
                               ("orphanet", "ORPHA:98879", "unverified"), ("mesh", "D002836", "unverified"),
                               ("snomedct", "41788008", "unverified"), ("umls", "C0008533", "unverified")},
}


@pytest.mark.parametrize("key", sorted(EXPECTED_CODES))
def test_each_product_and_the_condition_has_its_cited_codes(docs, key):
    identifiers = docs[key]["identifiers"]
    assert {(i["system"], i["value"], i["verification"]["status"]) for i in identifiers} == EXPECTED_CODES[key]
    for identifier in identifiers:
        assert identifier["citations"] and all(c.get("locator") for c in identifier["citations"])
        verification = identifier["verification"]
        if verification["status"] == "verified":
            assert verification["source"] in {c["source"] for c in identifier["citations"]}
            assert verification["date"]
        else:
            assert verification["note"], "an unverified code says why"


def test_f9_gene_has_its_hgnc_id(docs):
    genes = {(g["system"], g["value"]) for g in docs["condition/hemophilia-b"]["gene_identifiers"]}
    assert genes == {("hgnc", "HGNC:3551"), ("ncbi_gene", "2158"), ("omim", "300746")}


def test_no_unverified_code_claims_a_verifying_source(docs):
    for doc in docs.values():
        if doc["type"] == "source":
            continue  # a source's identifiers are plain strings, like its trial registration
        for identifier in doc.get("identifiers", []) + doc.get("gene_identifiers", []):
            if identifier["verification"]["status"] == "unverified":
                assert "source" not in identifier["verification"]


PRIMARY_SOURCES = {
    "hemgenix-us-pi": ("label", "https://www.fda.gov/vaccines-blood-biologics/vaccines/hemgenix"),
    "hemgenix-eu-smpc": ("label", "https://www.ema.europa.eu/en/medicines/human/EPAR/hemgenix"),
    "hemgenix-eu-package-leaflet": ("label", "https://www.ema.europa.eu/en/medicines/human/EPAR/hemgenix"),
    "hope-b-nejm-2023": ("trial", None),
    "alprolix-us-pi": ("label", None), "idelvion-us-pi-highlights": ("label", None),
    "alhemo-us-pi": ("label", None), "alhemo-eu-smpc": ("label", None),
    "benefix-us-pi-highlights": ("label", None),
}


@pytest.mark.parametrize("source_id", sorted(PRIMARY_SOURCES))
def test_primary_sources_have_url_publisher_version_and_access_date(docs, source_id):
    source = docs[f"source/{source_id}"]
    kind, url = PRIMARY_SOURCES[source_id]
    assert source["kind"] == kind
    assert source["url"].startswith("https://") and (url is None or source["url"] == url)
    assert source["publisher"] and source["date_accessed"] == "2026-11-24"
    assert source.get("version") or source.get("date_published")
    assert source["locators"]


def test_hope_b_is_identified_by_its_trial_registration(docs):
    assert docs["source/hope-b-nejm-2023"]["identifiers"] == ["NCT03569891"]


def test_article_source_declares_the_untitled_introduction(docs):
    locators = docs[f"source/{ARTICLE_SOURCE}"]["locators"]
    assert locators[1].startswith("Introduction")
    assert "Step 3: After Infusion" in locators and "Frequently Asked Questions, answer 4" in locators


def test_the_article_source_has_no_guessed_url(docs):
    assert "url" not in docs[f"source/{ARTICLE_SOURCE}"]


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
    assert replacement["verification"]["status"] == "unverified"
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
def test_related_product_dosing_is_verified_against_a_label_or_marked_unverified(docs, product):
    dosing = docs[f"product/{product}"]["dosing"]
    assert dosing
    for entry in dosing:
        verification = entry["verification"]
        if verification["status"] == "verified":
            assert verification["source"] in citation_sources(entry)
            assert docs[f"source/{verification['source']}"]["kind"] in ("label", "regulator_page")
        else:
            assert citation_sources(entry) == {DRUG_FACTS} and verification["note"]
    assert {d["verification"]["status"] for d in docs["product/idelvion"]["dosing"]} == {"unverified"}


@pytest.mark.parametrize("product", sorted(RELATED))
def test_related_products_have_label_doses_and_regional_indications(docs, product):
    facts = docs[f"product/{product}"]["label_facts"]
    assert facts["doses"] and facts["indications"]
    assert len({region for fact in facts["indications"] for region in fact["regions"]}) >= 2


def test_alhemo_indication_is_qualified_by_age_inhibitors_and_region(docs):
    indications = {f["key"]: f for f in docs["product/alhemo"]["label_facts"]["indications"]}
    us = indications["us-indication"]
    assert (us["regions"], us["age_min_years"], us["inhibitor_status"]) == (["US"], 12, "with_or_without_inhibitors")
    assert indications["eu-indication-with-inhibitors"]["inhibitor_status"] == "with_inhibitors"
    assert "12 and older" in docs["product/alhemo"]["summary"]
    assert "used for hemophilia B." not in docs["product/alhemo"]["summary"]


def test_alhemo_dose_has_loading_and_maintenance_per_kg(docs):
    doses = {d["key"]: d for d in docs["product/alhemo"]["label_facts"]["doses"]}
    loading = doses["loading-dose"]
    assert (loading["phase"], loading["amount"], loading["unit"], loading["per_kg"]) == ("loading", 1, "mg", True)
    assert (doses["individual-maintenance-dose"]["amount"], doses["individual-maintenance-dose"]["amount_max"]) == (0.15, 0.25)


def test_factor_ix_products_atc_b02bd04_is_unverified_and_alhemo_has_no_atc(docs):
    for product in FACTOR_IX_PRODUCTS:
        atc = [i for i in docs[f"product/{product}"]["identifiers"] if i["system"] == "atc"]
        assert [(i["value"], i["verification"]["status"]) for i in atc] == [("B02BD04", "unverified")]
        assert [c["code"] for c in docs[f"product/{product}"]["classes"] if c["system"] == "atc"] == ["B02BD"]
    alhemo = docs["product/alhemo"]
    assert [i for i in alhemo["identifiers"] if i["system"] == "atc"] == []
    assert [c for c in alhemo["classes"] if c["system"] == "atc"] == []


def test_same_class_links_only_the_recombinant_factor_ix_products(docs):
    for doc in of_type(docs, "product"):
        targets = {r["product"] for r in doc.get("related", []) if r["type"] == "same_class"}
        if doc["id"] in FACTOR_IX_PRODUCTS:
            assert targets == set(FACTOR_IX_PRODUCTS) - {doc["id"]}
        else:
            assert targets == set()


def test_alprolix_makers_from_the_compilation_stay_unverified(docs):
    status = {o["name"].split(" ")[0]: o["verification"]["status"] for o in docs["product/alprolix"]["organisations"]}
    assert status == {"Sanofi": "unverified", "Sobi": "unverified", "Biogen": "unverified", "Bioverativ": "verified"}


def test_hemgenix_names_and_organisations(hemgenix):
    assert hemgenix["non_proprietary_name"] == "etranacogene dezaparvovec-drlb"
    assert hemgenix["development_code"] == "AMT-061"
    assert {(o["name"], o["role"], o["verification"]["status"]) for o in hemgenix["organisations"]} == {
        ("CSL Behring", "marketer", "verified"), ("uniQure", "developer", "unverified")}


def test_hemgenix_how_it_works_gives_vector_gene_and_promoter(hemgenix):
    text = squash(hemgenix["how_it_works"]["text"])
    for fact in ("AAV5", "Padua", "R338L", "approximately 8 times more active", "liver-specific promoter",
                 "given once", "intravenous"):
        assert fact in text, fact
    assert citation_sources(hemgenix["how_it_works"]) == {ARTICLE_SOURCE}


def test_hemgenix_atc_code_is_a_code_citing_the_eu_smpc(hemgenix):
    atc = next(i for i in hemgenix["identifiers"] if i["system"] == "atc")
    assert atc["value"] == "B02BD16"
    assert atc["citations"] == [{"source": "hemgenix-eu-smpc", "locator": "§5.1 Pharmacodynamic properties"}]
    assert "B02BD16" not in [c.get("code") for c in hemgenix["classes"]]


def test_hemgenix_approvals_keep_month_precision_where_no_day_is_known(hemgenix):
    approvals = {(a["region"], a["date"], a.get("kind")) for a in hemgenix["approvals"]}
    assert {a["verification"]["status"] for a in hemgenix["approvals"]} == {"unverified"}
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
    infusion = next(r for r in hemgenix["key_risks"] if r["name"] == "Infusion-related reactions")
    # The article never discusses infusion reactions: the risk cites the EU leaflet, not the article.
    assert citation_sources(infusion) == {"hemgenix-eu-package-leaflet"}
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


@pytest.mark.parametrize("key", ["product/hemgenix", "product/alprolix", "product/idelvion", "product/alhemo",
                                 "product/benefix", "condition/hemophilia-b", "mechanism/hemgenix-mechanism",
                                 "article/how-does-hemgenix-work"])
def test_every_summary_is_cited(docs, key):
    citations = docs[key]["summary_citations"]
    assert citations and all(c.get("locator") for c in citations)


def test_every_citation_names_a_locator_its_source_declares(docs):
    def walk(node, path):
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("citations", "summary_citations") and isinstance(value, list):
                    for citation in value:
                        yield path, citation
                else:
                    yield from walk(value, f"{path}.{key}")
        elif isinstance(node, list):
            for index, item in enumerate(node):
                yield from walk(item, f"{path}.{index}")

    for key, doc in docs.items():
        for path, citation in walk(doc, key):
            assert citation["locator"] in docs[f"source/{citation['source']}"]["locators"], (path, citation)


def test_one_time_infusion_claims_cite_where_the_article_says_it(hemgenix):
    intro = next(loc for loc in [c["locator"] for c in hemgenix["summary_citations"]] if loc.startswith("Introduction"))
    for relation in hemgenix["related"]:
        if "one-time infusion" in relation["basis"]:
            locators = {c["locator"] for c in relation["citations"]}
            assert intro in locators and "Step 3: After Infusion" not in locators


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
    assert set(article["sources"]) == {ARTICLE_SOURCE, DRUG_FACTS, "hemgenix-us-pi", "hemgenix-eu-smpc",
                                       "hemgenix-eu-package-leaflet", "hope-b-nejm-2023"}
    # The source names no medical reviewer and no review date: none is invented, and the article says so.
    for absent in ("medical_reviewer", "last_reviewed", "date_published"):
        assert absent not in article
    assert article["review_status"] == "not_medically_reviewed"
    assert any("has not been medically reviewed" in text for text in article["disclaimers"])


def test_article_mechanism_and_faqs_belong_to_hemgenix(docs, hemgenix_faqs):
    article = docs["article/how-does-hemgenix-work"]
    assert article["about"] == "hemgenix"
    assert docs[f"mechanism/{article['mechanism']}"]["product"] == "hemgenix"
    assert article["faqs"] == [f["id"] for f in hemgenix_faqs]
    assert all(docs[f"faq/{faq_id}"]["product"] == "hemgenix" for faq_id in article["faqs"])
