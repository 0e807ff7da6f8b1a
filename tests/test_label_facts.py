"""Label facts beside the article: the delivery API serves what each label says, and every
article statement about Hemgenix monitoring comes with the label's version and a discrepancy."""
import os
import re
import subprocess
import sys

import pytest
import requests

import schemaorg_vocabulary as vocabulary
from conftest import ROOT
from servers import serving

# What makes a statement a monitoring statement patients act on.
MONITORING = re.compile(r"\bmonitor(?:ed|ing)?\b|\bweekly\b|\bmonthly\b|liver ultrasound|\bAFP\b", re.IGNORECASE)
DELIVERED_TEXT = {  # where Hemgenix prose lives in the delivered documents (label facts are the label's own words)
    "product/hemgenix": ("summary", "how_it_works.text", "dosing.*.text", "key_risks.*.description"),
    "mechanism/hemgenix-mechanism": ("summary", "steps.*.body", "sections.*.body"),
    "faq/hemgenix-does-it-change-my-dna": ("answer",), "faq/hemgenix-how-does-it-work": ("answer",),
    "faq/hemgenix-what-can-reduce-effectiveness": ("answer",), "faq/hemgenix-what-is-the-padua-variant": ("answer",),
    "article/how-does-hemgenix-work": ("summary", "disclaimers.*"),
}


def texts_at(document, pattern, prefix=""):
    head, _, rest = pattern.partition(".")
    if head == "*":
        for index, item in enumerate(document):
            yield from (texts_at(item, rest, f"{prefix}{index}.") if rest else [(f"{prefix}{index}", item)])
    elif isinstance(document, dict) and head in document:
        yield from (texts_at(document[head], rest, f"{prefix}{head}.") if rest else [(f"{prefix}{head}", document[head])])


def monitoring_statements(get_json):
    found = set()
    for key, patterns in DELIVERED_TEXT.items():
        type_name, id_ = key.split("/")
        url = "/v1/products/hemgenix/mechanism" if type_name == "mechanism" else \
            f"/v1/{ {'product': 'products', 'faq': 'faqs', 'article': 'articles'}[type_name]}/{id_}"
        document = get_json(url)
        assert document.get("id") == id_, document
        for pattern in patterns:
            for field, text in texts_at(document, pattern):
                if MONITORING.search(text):
                    found.add((key, field))
    return found


def test_every_hemgenix_monitoring_statement_has_the_labels_version_and_a_discrepancy(client):
    statements = monitoring_statements(lambda url: client.get(url).get_json())
    assert statements >= {("mechanism/hemgenix-mechanism", "sections.1.body"),
                          ("product/hemgenix", "key_risks.1.description"),
                          ("faq/hemgenix-does-it-change-my-dna", "answer")}
    view = client.get("/v1/products/hemgenix/label-facts").get_json()
    covered = {}
    for discrepancy in view["discrepancies"]:
        for statement in discrepancy["article_statements"]:
            covered.setdefault((statement["document"], statement.get("field")), []).append(discrepancy)
    assert statements - set(covered) == set()
    for statement in statements:
        for discrepancy in covered[statement]:
            assert discrepancy["status"] == "open"
            assert discrepancy["label_facts"], statement
            for fact in discrepancy["label_facts"]:
                assert fact["citations"] and fact["verification"]["status"] == "verified"
                assert "EU" in fact["regions"]


def test_label_facts_carry_the_article_text_beside_the_label_text(client, conforms):
    response = client.get("/v1/products/hemgenix/label-facts")
    assert response.status_code == 200 and response.headers["ETag"]
    conforms(response, "/v1/products/{id}/label-facts")
    view = response.get_json()
    assert view["product"] == "hemgenix" and view["review_status"] == "not_medically_reviewed"
    liver = next(d for d in view["discrepancies"] if d["key"] == "liver-test-schedule")
    mechanism = next(s for s in liver["article_statements"] if s["document"] == "mechanism/hemgenix-mechanism")
    assert "then monthly up to 1 year" in mechanism["text"]
    assert mechanism["citations"] == [{"source": "medfinder-how-does-hemgenix-work",
                                       "locator": "Why the Immune System Can Complicate Things"}]
    [label] = liver["label_facts"]
    assert [(s["every"], s["unit"], s["from_month"], s["until_month"]) for s in label["schedule"]] == [
        (1, "week", 0, 3), (3, "month", 3, 12), (6, "month", 12, 24), (1, "year", 24, 60)]
    assert label["schedule"][-1]["until_at_least"] is True
    omitted = next(d for d in view["discrepancies"] if d["key"] == "label-requirements-not-in-article")
    assert {f["action"] for f in omitted["label_facts"]} == {
        "post_infusion_observation", "no_donation", "contraception", "follow_up_study"}
    assert omitted["article_statements"] == [{"document": "article/how-does-hemgenix-work", "citations": []}]
    again = client.get("/v1/products/hemgenix/label-facts", headers={"If-None-Match": response.headers["ETag"]})
    assert again.status_code == 304


def test_label_facts_of_an_unknown_product_is_a_problem(client):
    response = client.get("/v1/products/nothing-like-this/label-facts")
    assert response.status_code == 404 and response.mimetype == "application/problem+json"


def test_products_without_discrepancies_still_serve_their_label_facts(client):
    view = client.get("/v1/products/alhemo/label-facts").get_json()
    assert view["discrepancies"] == []
    assert {f["inhibitor_status"] for f in view["label_facts"]["indications"]} == {
        "with_or_without_inhibitors", "with_inhibitors", "without_inhibitors"}


def test_delivered_article_and_product_say_they_are_not_medically_reviewed(client):
    article = client.get("/v1/articles/how-does-hemgenix-work").get_json()
    assert article["review_status"] == "not_medically_reviewed"
    assert "medical_reviewer" not in article and "last_reviewed" not in article
    assert any("not been medically reviewed" in text for text in article["disclaimers"])
    assert client.get("/v1/products/hemgenix").get_json()["review_status"] == "not_medically_reviewed"


# --- through a real server -------------------------------------------------------------


@pytest.fixture
def server(content_db):
    with serving(content_db, env={"MEDKB_PUBLIC_BASE_URL": "https://medkb.example"}) as base:
        yield base


def test_real_server_serves_the_product_with_label_facts_and_discrepancies(server):
    session = requests.Session()  # default headers: gzip accepted
    product = session.get(f"{server}/v1/products/hemgenix", timeout=10)
    assert product.status_code == 200 and product.headers["Content-Encoding"] in ("gzip", "br")
    body = product.json()
    assert {f["key"] for f in body["label_facts"]["monitoring"]} == {
        "eu-liver-enzymes", "eu-factor-ix-activity", "eu-liver-cancer-screening"}
    assert {d["key"] for d in body["discrepancies"]} == {
        "liver-test-schedule", "factor-ix-monitoring", "liver-cancer-screening-duration",
        "label-requirements-not-in-article", "liver-disease-before-treatment", "aav5-antibodies", "alcohol"}
    assert {(i["system"], i["value"]) for i in body["identifiers"]} >= {("atc", "B02BD16"), ("ndc", "0053-0300-30")}

    view = session.get(f"{server}/v1/products/hemgenix/label-facts", timeout=10)
    assert view.status_code == 200 and view.headers["Content-Type"].startswith("application/json")
    statements = monitoring_statements(lambda url: session.get(f"{server}{url}", timeout=10).json())
    covered = {(s["document"], s.get("field")) for d in view.json()["discrepancies"] for s in d["article_statements"]}
    assert statements and statements - covered == set()
    assert session.get(f"{server}/v1/products/hemgenix/label-facts", timeout=10,
                       headers={"If-None-Match": view.headers["ETag"]}).status_code == 304

    page = session.get(f"{server}/v1/articles/how-does-hemgenix-work/jsonld", timeout=10).json()
    assert page["url"] == "https://medkb.example/how-does-hemgenix-work"
    assert vocabulary.problems(page) == []


# --- import reports lint and records it in the audit -------------------------------------


def test_import_reports_lint_and_records_what_it_published_with_errors(tmp_path):
    from api.store.store import Store

    db = tmp_path / "db"
    result = subprocess.run([sys.executable, "-m", "api.cli", "import", str(ROOT / "content")], cwd=ROOT,
                            capture_output=True, text=True, timeout=300,
                            env={**os.environ, "PYTHONPATH": str(ROOT), "MEDKB_DB": str(db)})
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    assert ("lint: article/how-does-hemgenix-work: medical_reviewer: error review.no_medical_reviewer: No medical "
            "reviewer is named; a clinician must review patient content before it is published.") in lines
    assert any(line.startswith("lint: product/hemgenix: discrepancies.0: warning discrepancy.open:") for line in lines)
    assert "Traceback" not in result.stderr
    changes = list(Store(db).changes(0))
    change = next(c for c in changes if (c.type, c.id) == ("article", "how-does-hemgenix-work"))
    assert "published with open lint errors: article/how-does-hemgenix-work (review.no_medical_reviewer, " \
           "review.overdue)" in change.message
    # Each change carries its own document's errors only: one note for the whole set on every
    # change made an import of 100,000 documents write gigabytes of the same audit text.
    product = next(c for c in changes if (c.type, c.id) == ("product", "hemgenix"))
    assert product.message == f"import {ROOT / 'content'}"


def test_a_discrepancy_on_the_products_own_text_is_checked_against_the_version_being_written(store):
    from api.knowledge.documents import InvalidDocument
    from api.services.documents import Documents

    head = store.head("product", "drug")
    fact = {"key": "no-donation", "regions": ["EU"], "action": "no_donation", "text": "Do not donate blood.",
            "citations": [{"source": "src", "locator": "p. 1"}], "verification": {"status": "unverified"}}
    label = {**head.content, "label_facts": {"required_actions": [fact]}}
    # src is an article, so give the label fact a label to cite.
    source = store.head("source", "src").content
    Documents(store).write(dict(source, kind="label"), expected_revision=1, actor="test", publish=True)
    discrepancy = {"key": "x", "topic": "Donation", "status": "open", "description": "Differs.",
                   "label_facts": ["no-donation"]}
    pointing_at_nothing = {**label, "discrepancies": [
        {**discrepancy, "article_statements": [{"document": "product/drug", "field": "key_risks.0.description"}]}]}
    with pytest.raises(InvalidDocument, match="product/drug has no text at key_risks.0.description"):
        Documents(store).write(pointing_at_nothing, expected_revision=head.revision, actor="test")
    with_risk = {**pointing_at_nothing, "key_risks": [{"name": "Liver", "description": "Tests monthly.",
                                                        "citations": [{"source": "src", "locator": "p. 1"}]}]}
    assert Documents(store).write(with_risk, expected_revision=head.revision, actor="test").revision == head.revision + 1
