"""Editorial lint: each rule fires on the mistake it is for, names the field, and stays quiet otherwise."""
import copy
import datetime

import pytest

from api.knowledge.documents import load_set, schema_errors
from api.services.lint import RULES, grade_level, lint, lint_set, syllables
from conftest import CONTENT, envelope, minimal_documents, write_documents

TODAY = datetime.date(2026, 4, 2)
COMPLEX = ("Administration of recombinant coagulation factor concentrates necessitates individualized "
           "pharmacokinetic evaluation, considering interindividual variability, concomitant inhibitor "
           "development, and prophylactic regimen optimization across heterogeneous populations, particularly "
           "adolescents undergoing physiological maturation. Consequently, hematological monitoring "
           "of circulating activity remains indispensable.")
SIMPLE = ("The drug helps your blood clot. You get it by a drip in your arm. It takes about an hour. "
          "Most people go home the same day. Your care team will tell you what to do next. Ask them if you "
          "have a question.")


def clean_documents():
    """minimal_documents() with a medical reviewer and a recent review: nothing for lint to find."""
    documents = {f"{d['type']}/{d['id']}": d for d in copy.deepcopy(minimal_documents())}
    documents["person/doc"] = {**envelope("person", "doc"), "name": "A Doctor", "roles": ["medical_reviewer"],
                               "credentials": ["MD"]}
    documents["article/about-drug"].update(medical_reviewer="doc", last_reviewed="2026-03-01",
                                           next_review_due="2027-03-01", review_status="medically_reviewed")
    documents["source/notes"] = {**envelope("source", "notes"), "title": "Notes", "kind": "compilation",
                                 "verification": "unverified", "locators": ["row 1"]}
    documents["source/label"] = {**envelope("source", "label"), "title": "A label", "kind": "label",
                                 "url": "https://example.org/label", "verification": "verified", "locators": ["§1"]}
    return documents


def run(documents, key, today=TODAY):
    return lint(documents[key], lambda type_name, id_: documents.get(f"{type_name}/{id_}"), today)


def set_field(path, value):
    def change(document):
        *parents, last = path
        for part in parents:
            document = document[part]
        document[last] = value
    return change


def not_reviewed(article):
    for name in ("medical_reviewer", "last_reviewed", "next_review_due"):
        article.pop(name)
    article["review_status"] = "not_medically_reviewed"


# (case, document, change, rule, field, severity)
CASES = [
    ("amount in product summary", "product/drug", set_field(["summary"], "Give 2 mg/kg once."),
     "citation.missing", "summary", "error"),
    ("percent in condition summary", "condition/cond", set_field(["summary"], "Levels rise to 40% of normal."),
     "citation.missing", "summary", "error"),
    ("monitoring in mechanism summary", "mechanism/drug-mechanism",
     set_field(["summary"], "Your doctor will monitor your liver."), "citation.missing", "summary", "error"),
    ("efficacy in article summary", "article/about-drug",
     set_field(["summary"], "It reduces bleeding for years."), "citation.missing", "summary", "error"),
    ("frequency in disclaimer", "article/about-drug",
     set_field(["disclaimers"], ["Education only.", "Infusions are needed weekly."]),
     "citation.missing", "disclaimers.1", "error"),
    ("uncited package variant", "product/drug",
     set_field(["package_variants"], [{"name": "Kit", "description": "Supplied in 10 mL vials."}]),
     "citation.missing", "package_variants.0.description", "error"),
    ("article without sources", "article/about-drug", set_field(["sources"], []), "citation.missing", "sources",
     "error"),
    ("no medical reviewer", "article/about-drug", lambda d: not_reviewed(d), "review.no_medical_reviewer",
     "medical_reviewer", "error"),
    ("never reviewed", "article/about-drug", lambda d: not_reviewed(d), "review.overdue", "last_reviewed", "error"),
    ("author as medical reviewer", "article/about-drug", set_field(["medical_reviewer"], "writer"),
     "review.invalid_reviewer", "medical_reviewer", "error"),
    ("review dated after today", "article/about-drug", set_field(["last_reviewed"], "2026-05-01"),
     "review.future_date", "last_reviewed", "error"),
    ("locator the source does not declare", "faq/drug-q1",
     set_field(["citations"], [{"source": "src", "locator": "p. 99"}]), "citation.locator", "citations.0.locator",
     "error"),
    ("secondary fact without verification", "product/drug",
     set_field(["dosing"], [{"text": "Once.", "citations": [{"source": "notes", "locator": "row 1"}]}]),
     "verification.missing", "dosing.0.verification", "error"),
    ("open discrepancy with a label", "product/drug", lambda d: d.update(
        label_facts={"monitoring": [{"key": "eu-liver", "regions": ["EU"], "text": "Yearly.", "test": "ALT",
                                     "citations": [{"source": "label", "locator": "§1"}],
                                     "verification": {"status": "verified", "source": "label", "date": "2026-04-01"},
                                     "schedule": [{"every": 1, "unit": "year", "from_month": 0, "until_month": 60,
                                                   "until_at_least": True}]}]},
        discrepancies=[{"key": "liver", "topic": "Liver tests", "status": "open", "description": "They differ.",
                        "article_statements": [{"document": "faq/drug-q1", "field": "answer"}],
                        "label_facts": ["eu-liver"]}]),
     "discrepancy.open", "discrepancies.0", "warning"),
    ("reviewed over a year ago", "article/about-drug",
     set_field(["last_reviewed"], "2025-04-01"), "review.overdue", "last_reviewed", "error"),
    ("review due date passed", "article/about-drug", set_field(["next_review_due"], "2026-04-01"),
     "review.due", "next_review_due", "warning"),
    ("comparison in faq answer", "faq/drug-q1", set_field(["answer"], "Drug is Better Than Other."),
     "claim.comparative", "answer", "error"),
    ("comparison in relation basis", "product/drug",
     set_field(["related", 0, "basis"], "Works as effective as otherase."),
     "claim.comparative", "related.0.basis", "error"),
    ("comparison in a translation", "faq/drug-q1",
     set_field(["translations"], {"es-419": {"answer": "Drug is superior to Other (en inglés)."}}),
     "claim.comparative", "translations.es-419.answer", "error"),
    ("hard faq answer", "faq/drug-q1", set_field(["answer"], COMPLEX), "readability.grade", "answer", "warning"),
    ("hard step body", "mechanism/drug-mechanism", set_field(["steps", 1, "body"], COMPLEX),
     "readability.grade", "steps.1.body", "warning"),
    ("missing condition", "product/drug", set_field(["conditions"], ["cond", "nope"]),
     "reference.unresolved", "conditions.1", "error"),
    ("missing cited source", "faq/drug-q2", set_field(["citations"], [{"source": "nowhere"}]),
     "reference.unresolved", "citations.0.source", "error"),
]


def broken(key, change):
    documents = clean_documents()
    change(documents[key])
    return documents


@pytest.mark.parametrize("key, change, rule, field, severity", [case[1:] for case in CASES],
                         ids=[case[0] for case in CASES])
def test_rule_fires_and_names_the_field(key, change, rule, field, severity):
    documents = broken(key, change)
    if field != "sources":  # an empty sources list is schema-invalid; lint is only defensive about it
        assert schema_errors(documents[key]) == []
    found = [(f["rule"], f["field"], f["severity"]) for f in run(documents, key)]
    assert (rule, field, severity) in found
    assert RULES[rule][0] == severity


SET_RULES = {"faq.position"}  # about several documents: lint_set (below) and editorial lint (test_import_export)


def test_every_rule_has_a_firing_case():
    assert {case[3] for case in CASES} | SET_RULES == set(RULES)


@pytest.mark.parametrize("positions", [(1, 1), (2, 3), (1, 3)], ids=["tie", "not from 1", "gap"])
def test_faq_positions_that_are_not_1_to_n_are_a_warning_on_each_faq_of_the_product(tmp_path, positions):
    documents = clean_documents()
    for key, position in zip(("faq/drug-q1", "faq/drug-q2"), positions):
        documents[key]["position"] = position
    write_documents(tmp_path, documents.values())
    assert load_set([tmp_path]).problems == [], "a gap or a tie is valid: the set still imports"
    lines, with_errors = lint_set(documents, TODAY, processes=1)
    message = (f"The FAQs of product/drug are at positions {sorted(positions)}, not 1 to 2: readers see them "
               f"by position, then id. Renumber them to make the order explicit.")
    assert lines == [f"lint: faq/drug-q1: position: warning faq.position: {message}",
                     f"lint: faq/drug-q2: position: warning faq.position: {message}",
                     "lint: 0 error(s), 2 warning(s); 0 document(s) published with open errors."]
    assert with_errors == {}


def test_faq_positions_1_to_n_in_any_order_are_not_a_finding():
    documents = clean_documents()
    documents["faq/drug-q1"]["position"], documents["faq/drug-q2"]["position"] = 2, 1
    assert lint_set(documents, TODAY, processes=1) == ([], {})


def test_clean_documents_have_no_findings():
    documents = clean_documents()
    for key, document in documents.items():
        assert schema_errors(document) == [], key
        assert run(documents, key) == [], key


def test_minimal_documents_only_lack_medical_review():
    documents = {f"{d['type']}/{d['id']}": d for d in minimal_documents()}
    found = {(key, f["rule"]) for key in documents for f in run(documents, key)}
    assert found == {("article/about-drug", "review.no_medical_reviewer"), ("article/about-drug", "review.overdue")}


def test_review_messages_and_boundaries():
    documents = clean_documents()
    article = documents["article/about-drug"]
    del article["last_reviewed"], article["next_review_due"]
    (overdue,) = [f for f in run(documents, "article/about-drug") if f["rule"] == "review.overdue"]
    assert "never reviewed" in overdue["message"].lower()
    article["last_reviewed"] = "2025-04-02"  # exactly 365 days: still in date
    assert not [f for f in run(documents, "article/about-drug") if f["rule"].startswith("review.")]
    article["next_review_due"] = "2026-04-02"  # due today: not yet past
    assert not [f for f in run(documents, "article/about-drug") if f["rule"].startswith("review.")]


@pytest.mark.parametrize("text", [
    "Hemophilia B is caused by a change in the F9 gene.",
    "AAV5 carries the gene to the liver.",
    "Talk to your treatment center about your care.",
])
def test_plain_uncited_text_is_not_a_clinical_claim(text):
    documents = broken("product/drug", set_field(["summary"], text))
    assert not [f for f in run(documents, "product/drug") if f["rule"] == "citation.missing"]


def test_package_variant_with_citations_may_state_amounts():
    variant = {"name": "Kit", "description": "Dose in mL = 2 × weight in kg.", "citations": [{"source": "src"}]}
    documents = broken("product/drug", set_field(["package_variants"], [variant]))
    assert run(documents, "product/drug") == []


@pytest.mark.parametrize("text", ["A better option.", "Whether one is superior, ask.", "Betterthan nothing."])
def test_comparatives_need_the_whole_phrase(text):
    documents = broken("faq/drug-q1", set_field(["answer"], text))
    assert run(documents, "faq/drug-q1") == []


# --- readability -------------------------------------------------------------


@pytest.mark.parametrize("word, count", [("the", 1), ("cake", 1), ("gene", 1), ("table", 2), ("rhythm", 1),
                                         ("factor", 2), ("therapy", 3), ("half-life", 2), ("F9", 1)])
def test_syllable_heuristic(word, count):
    assert syllables(word) == count


def test_simple_sentences_score_below_8_and_polysyllabic_above():
    assert grade_level(SIMPLE) < 8
    assert grade_level(COMPLEX) > 8


def test_markdown_and_link_targets_are_not_words():
    assert grade_level("**Simple** [words](https://example.org/hyperpolysyllabicization) _here_.") == \
        grade_level("Simple words here.")


def test_short_texts_are_not_graded_and_the_message_gives_one_decimal():
    short = " ".join(COMPLEX.split()[:29])
    assert not run(broken("faq/drug-q1", set_field(["answer"], short)), "faq/drug-q1")
    (finding,) = run(broken("faq/drug-q1", set_field(["answer"], COMPLEX)), "faq/drug-q1")
    assert f"{grade_level(COMPLEX):.1f}" in finding["message"]


# --- the shipped content -----------------------------------------------------


@pytest.fixture(scope="module")
def shipped():
    documents = load_set([CONTENT]).documents
    return {key: run(documents, key) for key in documents}


def test_linting_a_set_over_several_processes_reports_what_each_document_does(shipped):
    documents = load_set([CONTENT]).documents
    lines, with_errors = lint_set(documents, TODAY, processes=2)
    assert lines == lint_set(documents, TODAY, processes=1)[0]
    expected = [f"lint: {key}: {f['field'] or '-'}: {f['severity']} {f['rule']}: {f['message']}"
                for key, findings in shipped.items() for f in findings]
    assert lines[:-1] == expected and lines[-1].startswith(f"lint: {sum(f['severity'] == 'error' for fs in shipped.values() for f in fs)} error(s)")
    assert with_errors == {key: sorted({f["rule"] for f in findings if f["severity"] == "error"})
                           for key, findings in shipped.items() if any(f["severity"] == "error" for f in findings)}


def rules_found(shipped, rule):
    return sorted((key, f["field"]) for key, findings in shipped.items() for f in findings if f["rule"] == rule)


def test_shipped_content_makes_no_comparisons_and_every_reference_resolves(shipped):
    assert rules_found(shipped, "claim.comparative") == []
    assert rules_found(shipped, "reference.unresolved") == []


def test_shipped_content_makes_no_uncited_clinical_claim(shipped):
    assert rules_found(shipped, "citation.missing") == []


def test_shipped_article_awaits_medical_review(shipped):
    # The source article names an author but no medical reviewer and no review date.
    article = shipped["article/how-does-hemgenix-work"]
    assert {(f["rule"], f["field"]) for f in article} >= {("review.no_medical_reviewer", "medical_reviewer"),
                                                           ("review.overdue", "last_reviewed")}


# --- robustness and shape ----------------------------------------------------


def test_lint_survives_documents_missing_optional_fields():
    bare = {
        "product/drug": {**envelope("product", "drug"), "name": "Drug", "non_proprietary_name": "drugamab",
                         "product_type": "gene_therapy", "summary": "A drug.",
                         "how_it_works": {"text": "It works.", "citations": [{"source": "src"}]},
                         "classes": [{"system": "atc", "code": "B02BD"}], "route": "intravenous",
                         "conditions": ["cond"], "review_status": "not_medically_reviewed"},
        "article/a": {**envelope("article", "a"), "headline": "H", "summary": "S.", "about": "drug",
                      "slug": "a", "review_status": "not_medically_reviewed",
                      "author": "writer", "publisher": {"name": "Pub"}, "date_modified": "2026-04-02",
                      "sources": ["src"]},
        "mechanism/m": {**envelope("mechanism", "m"), "product": "drug", "title": "T", "summary": "S.",
                        "steps": [{"position": 1, "title": "T", "body": "B.", "citations": [{"source": "src"}]}]},
    }
    for key, document in bare.items():
        assert schema_errors(document) == [], key
        for today in (TODAY, datetime.datetime(2026, 4, 2, 12, 0)):
            assert isinstance(lint(document, lambda type_name, id_: None, today), list)
    for key, document in clean_documents().items():
        assert lint(document, lambda type_name, id_: None, TODAY) is not None


def all_findings(shipped):
    yield from shipped.values()
    for _, key, change, *_ in CASES:
        yield run(broken(key, change), key)


def test_findings_are_sorted_and_match_rules(shipped):
    assert all(severity in ("error", "warning") and description for severity, description in RULES.values())
    for findings in all_findings(shipped):
        assert findings == sorted(findings, key=lambda f: (f["field"], f["rule"]))
        for finding in findings:
            assert set(finding) == {"rule", "severity", "field", "message"}
            assert finding["severity"] == RULES[finding["rule"]][0]
            assert isinstance(finding["field"], str) and finding["message"]
