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


SET_RULES = {"faq.position"}  # need the whole set: fired by lint_set only (test below)


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

