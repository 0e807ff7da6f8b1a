"""Every kind of mistake in a document is refused with a message naming the file and the field."""
import json
import os
import subprocess
import sys

import pytest

from api.knowledge.documents import load_set
from api.knowledge.migrations import migrate
from conftest import CITE, ROOT, write_documents


def doc(documents, key):
    return next(d for d in documents if f"{d['type']}/{d['id']}" == key)


def set_path(document, path, value):
    *parents, last = path
    for part in parents:
        document = document[part]
    document[last] = value


def delete_path(document, path):
    *parents, last = path
    for part in parents:
        document = document[part]
    del document[last]


# (case, document key, change, field reported, words in the message)
BAD_DOCUMENTS = [
    ("missing required field", "faq/drug-q1", lambda d: delete_path(d, ["answer"]), "answer", "Missing data for required field"),
    ("unknown field", "faq/drug-q1", lambda d: set_path(d, ["colour"], "blue"), "colour", "Unknown field"),
    ("wrong value type", "faq/drug-q1", lambda d: set_path(d, ["question"], 42), "question", "Not a valid string"),
    ("updated_at not a date", "faq/drug-q1", lambda d: set_path(d, ["updated_at"], "yesterday"), "updated_at", "ISO 8601 date-time with a time zone"),
    ("updated_at without zone", "faq/drug-q1", lambda d: set_path(d, ["updated_at"], "2026-04-02T00:00:00"), "updated_at", "ISO 8601 date-time with a time zone"),
    ("date in US format", "article/about-drug", lambda d: set_path(d, ["date_modified"], "04/02/2026"), "date_modified", "Not a valid date"),
    ("impossible partial date", "product/drug", lambda d: set_path(d, ["approvals"], [{"authority": "EMA", "region": "EU", "date": "2023-13", "kind": "full", "citations": [{"source": "src"}]}]), "approvals.0.date", "real calendar date"),
    ("url not http", "article/about-drug", lambda d: set_path(d, ["publisher", "url"], "ftp://example.org/x"), "publisher.url", "Not a valid URL"),
    ("url relative", "article/about-drug", lambda d: set_path(d, ["publisher", "url"], "/about"), "publisher.url", "Not a valid URL"),
    ("locale not BCP 47", "faq/drug-q1", lambda d: set_path(d, ["locale"], "english"), "locale", "BCP 47"),
    ("locale with underscore", "faq/drug-q1", lambda d: set_path(d, ["locale"], "en_US"), "locale", "BCP 47"),
    ("step positions repeat", "mechanism/drug-mechanism", lambda d: set_path(d, ["steps", 1, "position"], 1), "steps", "unique and contiguous"),
    ("step positions skip 1", "mechanism/drug-mechanism", lambda d: [set_path(d, ["steps", i, "position"], i + 2) for i in range(2)], "steps", "unique and contiguous"),
    ("faq position zero", "faq/drug-q1", lambda d: set_path(d, ["position"], 0), "position", "greater than or equal to 1"),
    ("schema_version as text", "faq/drug-q1", lambda d: set_path(d, ["schema_version"], "2"), "schema_version", "Not a valid integer"),
    ("schema_version from the future", "faq/drug-q1", lambda d: set_path(d, ["schema_version"], 99), "schema_version", "newer than this medkb understands"),
    ("revision zero", "faq/drug-q1", lambda d: set_path(d, ["revision"], 0), "revision", "greater than or equal to 1"),
    ("unknown type", "faq/drug-q1", lambda d: set_path(d, ["type"], "leaflet"), "type", "Must be one of"),
    ("raw html in markdown", "faq/drug-q1", lambda d: set_path(d, ["answer"], "Take <script>alert(1)</script> daily"), "answer", "Raw HTML"),
    ("clinical statement without citation", "faq/drug-q1", lambda d: set_path(d, ["citations"], []), "citations", "Shorter than minimum length 1"),
    ("dosing without citation", "product/drug", lambda d: delete_path(d, ["dosing", 0, "citations"]), "dosing.0.citations", "Missing data"),
    ("unknown relation type", "product/drug", lambda d: set_path(d, ["related", 0, "type"], "cheaper_than"), "related.0.type", "Must be one of"),
    ("relation repeated", "product/drug", lambda d: d["related"].append(dict(d["related"][0])), "related", "may appear once"),
    ("atc class without code", "product/drug", lambda d: delete_path(d, ["classes", 0, "code"]), "classes.0.code", "needs its code"),
    ("pharmacologic class without name", "product/other", lambda d: delete_path(d, ["classes", 0, "name"]), "classes.0.name", "needs its name"),
    ("id not a slug", "faq/drug-q1", lambda d: set_path(d, ["id"], "Drug_Q1"), "id", "URL-safe slug"),
    ("dangling product reference", "faq/drug-q1", lambda d: set_path(d, ["product"], "nothing"), "product", "product/nothing, which does not exist"),
    ("dangling condition reference", "product/drug", lambda d: set_path(d, ["conditions"], ["cond", "gone"]), "conditions.1", "condition/gone, which does not exist"),
    ("dangling related product", "product/drug", lambda d: set_path(d, ["related", 0, "product"], "ghost"), "related.0.product", "product/ghost, which does not exist"),
    ("dangling citation source", "mechanism/drug-mechanism", lambda d: set_path(d, ["steps", 1, "citations", 0, "source"], "nowhere"), "steps.1.citations.0.source", "source/nowhere, which does not exist"),
    ("dangling article author", "article/about-drug", lambda d: set_path(d, ["author"], "nobody"), "author", "person/nobody, which does not exist"),
    ("article reviewer is not a person", "article/about-drug", lambda d: d.update(medical_reviewer="src", last_reviewed="2026-04-01", review_status="medically_reviewed"), "medical_reviewer", "person/src, which does not exist"),
    ("author reviews their own article", "article/about-drug", lambda d: d.update(medical_reviewer="writer", last_reviewed="2026-04-01", review_status="medically_reviewed"), "medical_reviewer", "author cannot be the medical reviewer"),
    ("review dated in the future", "article/about-drug", lambda d: d.update(medical_reviewer="writer", last_reviewed="2099-01-01", review_status="medically_reviewed"), "last_reviewed", "Cannot be in the future"),
    ("reviewed without a reviewer", "article/about-drug", lambda d: d.update(review_status="medically_reviewed"), "review_status", "needs medical_reviewer and last_reviewed"),
    ("not reviewed yet names a review date", "article/about-drug", lambda d: d.update(last_reviewed="2026-04-01"), "review_status", "names a reviewer or review date"),
    ("no review status", "article/about-drug", lambda d: delete_path(d, ["review_status"]), "review_status", "Missing data"),
    ("full ATC code as a class", "product/drug", lambda d: set_path(d, ["classes", 0, "code"], "B02BD16"), "classes.0.code", "goes in identifiers"),
    ("ATC code malformed", "product/drug", lambda d: set_path(d, ["identifiers", 0, "value"], "B2BD16"), "identifiers.0.value", "Not a well-formed WHO ATC code"),
    ("NDC with the wrong segments", "product/drug", lambda d: d["identifiers"].append(dict(d["identifiers"][0], system="ndc", value="0053-03000-3")), "identifiers.1.value", "Not a well-formed US National Drug Code"),
    ("application number malformed", "product/drug", lambda d: d["identifiers"].append(dict(d["identifiers"][0], system="application_number", value="BLA 125772")), "identifiers.1.value", "Not a well-formed FDA application number"),
    ("condition code for a product", "product/drug", lambda d: set_path(d, ["identifiers", 0, "system"], "omim"), "identifiers.0.system", "Must be one of"),
    ("SNOMED CT check digit wrong", "condition/cond", lambda d: d.update(identifiers=[{"system": "snomedct", "value": "41788009", "citations": CITE, "verification": {"status": "unverified"}}]), "identifiers.0.value", "Not a well-formed SNOMED CT"),
    ("ICD-10-CM in lower case", "condition/cond", lambda d: d.update(identifiers=[{"system": "icd10cm", "value": "d67", "citations": CITE, "verification": {"status": "unverified"}}]), "identifiers.0.value", "Not a well-formed ICD-10-CM"),
    ("Orphanet without prefix", "condition/cond", lambda d: d.update(identifiers=[{"system": "orphanet", "value": "98879", "citations": CITE, "verification": {"status": "unverified"}}]), "identifiers.0.value", "Not a well-formed Orphanet"),
    ("HGNC id without prefix", "condition/cond", lambda d: d.update(gene_identifiers=[{"system": "hgnc", "value": "3551", "citations": CITE, "verification": {"status": "unverified"}}]), "gene_identifiers.0.value", "Not a well-formed HGNC"),
    ("code without citation", "product/drug", lambda d: delete_path(d, ["identifiers", 0, "citations"]), "identifiers.0.citations", "Missing data"),
    ("code without verification", "product/drug", lambda d: delete_path(d, ["identifiers", 0, "verification"]), "identifiers.0.verification", "Missing data"),
    ("verified without saying against what", "product/drug", lambda d: delete_path(d, ["identifiers", 0, "verification", "source"]), "identifiers.0.verification.source", "Required when status is 'verified'"),
    ("verification against a missing source", "product/drug", lambda d: set_path(d, ["identifiers", 0, "verification", "source"], "ghost"), "identifiers.0.verification.source", "source/ghost, which does not exist"),
    ("verification as a bare word", "product/drug", lambda d: set_path(d, ["identifiers", 0, "verification"], "verified"), "identifiers.0.verification._schema", "Invalid input type"),
    ("locator its source does not declare", "faq/drug-q1", lambda d: set_path(d, ["citations", 0, "locator"], "p. 2"), "citations.0.locator", "not a locator source/src declares"),
    ("summary citation locator undeclared", "product/drug", lambda d: d.update(summary_citations=[{"source": "src", "locator": "chapter 9"}]), "summary_citations.0.locator", "not a locator source/src declares"),
    ("label fact citing a non-label source", "product/drug", lambda d: d.update(label_facts={"required_actions": [{"key": "no-donation", "regions": ["EU"], "action": "no_donation", "text": "Do not donate blood.", "citations": CITE, "verification": {"status": "unverified"}}]}), "label_facts.required_actions.0.citations.0.source", "must cite a label"),
    ("discrepancy naming an unknown label fact", "product/drug", lambda d: d.update(discrepancies=[{"key": "x", "topic": "Liver tests", "status": "open", "description": "Differs.", "article_statements": [{"document": "faq/drug-q1", "field": "answer"}], "label_facts": ["nope"]}]), "discrepancies.0.label_facts", "Not a label fact of this product"),
    ("discrepancy pointing at no text", "product/drug", lambda d: d.update(label_facts={"required_actions": [{"key": "no-donation", "regions": ["EU"], "action": "no_donation", "text": "Do not donate blood.", "citations": CITE, "verification": {"status": "unverified"}}]}, discrepancies=[{"key": "x", "topic": "Donation", "status": "open", "description": "Differs.", "article_statements": [{"document": "faq/drug-q1", "field": "question.0"}], "label_facts": ["no-donation"]}]), "discrepancies.0.article_statements.0", "has no text at question.0"),
    ("resolved discrepancy without resolution", "product/drug", lambda d: d.update(label_facts={"required_actions": [{"key": "no-donation", "regions": ["EU"], "action": "no_donation", "text": "Do not donate blood.", "citations": CITE, "verification": {"status": "unverified"}}]}, discrepancies=[{"key": "x", "topic": "Donation", "status": "resolved", "description": "Differs.", "article_statements": [{"document": "faq/drug-q1"}], "label_facts": ["no-donation"]}]), "discrepancies.0.resolution", "records the reviewer's resolution"),
    ("dose range upside down", "product/drug", lambda d: d.update(label_facts={"doses": [{"key": "d", "regions": ["US"], "population": "Adults", "phase": "prophylaxis", "amount": 50, "amount_max": 35, "unit": "IU", "per_kg": True, "interval": "weekly", "text": "Weekly.", "citations": CITE, "verification": {"status": "unverified"}}]}), "label_facts.doses.0.amount_max", "Must not be below amount"),
    ("monitoring that ends before it starts", "product/drug", lambda d: d.update(label_facts={"monitoring": [{"key": "m", "regions": ["EU"], "test": "ALT", "text": "Weekly.", "citations": CITE, "verification": {"status": "unverified"}, "schedule": [{"every": 1, "unit": "week", "from_month": 3, "until_month": 3, "until_at_least": False}]}]}), "label_facts.monitoring.0.schedule.0.until_month", "Must be after from_month"),
    ("article shows another product's mechanism", "mechanism/drug-mechanism", lambda d: set_path(d, ["product"], "other"), "mechanism", "mechanism/drug-mechanism is about product/other, but this article is about product/drug"),
    ("article lists the same faq twice", "article/about-drug", lambda d: d["faqs"].append("drug-q1"), "faqs", "listed once"),
    ("translation of a fixed field", "faq/drug-q1", lambda d: d.update(translations={"es": {"product": "other"}}), "translations.es.product", "Cannot differ"),
    ("translation fails the schema", "faq/drug-q1", lambda d: d.update(translations={"es": {"answer": ""}}), "translations.es.answer", "Length must be between 1 and 5000"),
    ("translation with a bad locale", "faq/drug-q1", lambda d: d.update(translations={"spanish": {"answer": "Hola."}}), "translations.spanish.key", "BCP 47"),
    ("review due before last review", "article/about-drug", lambda d: d.update(last_reviewed="2026-04-02", next_review_due="2025-01-01"), "next_review_due", "after last_reviewed"),
]


# Cross-document problems are reported on the document holding the reference.
REPORTED_ON = {"article shows another product's mechanism": "article/about-drug"}


@pytest.mark.parametrize("case,key,change,field,words", BAD_DOCUMENTS, ids=[c[0] for c in BAD_DOCUMENTS])
def test_bad_document_is_rejected_naming_file_and_field(tmp_path, documents, case, key, change, field, words):
    paths = write_documents(tmp_path, documents)
    document = doc(documents, key)
    change(document)
    paths[key].write_text(json.dumps(document))
    reported_file = str(paths[REPORTED_ON.get(case, key)])
    problems = load_set([tmp_path]).problems
    matches = [p for p in problems if p.where == reported_file and p.field == field]
    assert matches, f"no problem for {reported_file} field {field}; got {[str(p) for p in problems]}"
    assert any(words in p.message for p in matches), [str(p) for p in matches]


def test_the_minimal_set_is_valid(kb_folder):
    loaded = load_set([kb_folder])
    assert loaded.problems == []
    assert len(loaded.documents) == 9


def test_id_must_equal_file_name(kb_folder):
    (kb_folder / "faqs" / "drug-q1.json").rename(kb_folder / "faqs" / "renamed.json")
    problems = load_set([kb_folder]).problems
    assert any(p.where.endswith("faqs/renamed.json") and p.field == "id" and "must match" in p.message for p in problems)


def test_document_in_another_types_folder_is_rejected(kb_folder):
    (kb_folder / "products" / "other.json").rename(kb_folder / "faqs" / "other.json")
    problems = load_set([kb_folder]).problems
    assert any(p.where.endswith("faqs/other.json") and p.field == "type" and "holds faq documents" in p.message
               for p in problems)


def test_same_type_and_id_twice_names_both_files(kb_folder):
    extra = kb_folder / "more" / "faqs"
    extra.mkdir(parents=True)
    (extra / "drug-q1.json").write_bytes((kb_folder / "faqs" / "drug-q1.json").read_bytes())
    problems = [p for p in load_set([kb_folder]).problems if p.field == "id"]
    assert len(problems) == 1
    assert "faq/drug-q1 is already defined in" in problems[0].message
    assert {problems[0].where, problems[0].message.rsplit(" ", 1)[1].rstrip(".")} == {
        str(kb_folder / "faqs" / "drug-q1.json"), str(extra / "drug-q1.json")}


def test_a_broken_document_is_reported_once_not_as_dangling_everywhere(kb_folder):
    path = kb_folder / "sources" / "src.json"
    document = json.loads(path.read_text())
    document["kind"] = "rumour"
    path.write_text(json.dumps(document))
    problems = load_set([kb_folder]).problems
    assert [str(p) for p in problems] == [f"{path}: kind: Must be one of: article, label, trial, regulator_page, "
                                          "registry, compilation, secondary."]


# --- files that are not documents ------------------------------------------

BAD_FILES = [
    ("invalid json", b'{"type": "faq",\n  "id": }', "invalid JSON at line 2 column 9: Expecting value"),
    ("empty", b"", "is empty, expected a JSON object"),
    ("whitespace only", b"  \n", "is empty, expected a JSON object"),
    ("not utf-8", b'{"id": "caf\xe9"}', "is not UTF-8 (byte 11)"),
    ("array", b"[1, 2]", "expected a JSON object, found list"),
    ("string", b'"hello"', "expected a JSON object, found str"),
    ("duplicate key", b'{"type": "faq", "citations": [{"source": "a", "source": "b"}]}',
     "names the key 'source' twice in one object; keep one"),
]


@pytest.mark.parametrize("case,data,message", BAD_FILES, ids=[c[0] for c in BAD_FILES])
def test_unreadable_file_gets_one_line(kb_folder, case, data, message):
    path = kb_folder / "faqs" / "broken.json"
    path.write_bytes(data)
    problems = [str(p) for p in load_set([kb_folder]).problems]
    assert problems == [f"{path}: {message}"]


def test_a_file_name_with_a_newline_is_one_line_when_reported(kb_folder):
    (kb_folder / "faqs" / "two\nlines.json").write_text("{")
    assert [str(p).split(": ", 1)[0] for p in load_set([kb_folder]).problems] == [f"{kb_folder / 'faqs'}/two\\nlines.json"]


def test_a_fifo_is_refused_rather_than_waited_on(kb_folder):
    os.mkfifo(kb_folder / "faqs" / "pipe.json")
    assert [str(p) for p in load_set([kb_folder]).problems] == [
        f"{kb_folder / 'faqs' / 'pipe.json'}: is not a regular file, expected a JSON file"]


@pytest.mark.parametrize("text, line", [
    ('{"type": ["faq"], "id": "drug-q1"}', "type: Must be one of"),
    ('{"\\udfff": 1, "type": "faq", "id": "drug-q1"}', "\\udfff: Contains an unpaired surrogate"),
])
def test_odd_types_and_keys_are_one_line_on_the_command_line(kb_folder, text, line):
    path = kb_folder / "faqs" / "drug-q1.json"
    path.write_text(text)
    result = medkb("validate", path)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert any(printed.startswith(f"{path}: {line}") for printed in result.stdout.splitlines()), result.stdout


def test_folder_where_a_file_was_expected(kb_folder):
    (kb_folder / "faqs" / "folder.json").mkdir()
    assert [str(p) for p in load_set([kb_folder]).problems] == [f"{kb_folder / 'faqs' / 'folder.json'}: is a folder, expected a JSON file"]


# --- the command line, as a real process -----------------------------------

def medkb(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "api.cli", *map(str, args)], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)


def test_cli_validate_counts_valid_documents(kb_folder):
    result = medkb("validate", kb_folder)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "9 valid documents."


def test_cli_validate_prints_one_line_per_problem_and_exits_1(kb_folder):
    faq = kb_folder / "faqs" / "drug-q1.json"
    document = json.loads(faq.read_text())
    del document["answer"]
    faq.write_text(json.dumps(document))
    (kb_folder / "faqs" / "broken.json").write_text("{")
    result = medkb("validate", kb_folder)
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        f"{kb_folder / 'faqs' / 'broken.json'}: invalid JSON at line 1 column 2: Expecting property name enclosed in double quotes",
        f"{faq}: answer: Missing data for required field.",
    ]
    assert "Traceback" not in result.stderr


def test_cli_validate_single_file_checks_its_references(kb_folder):
    result = medkb("validate", kb_folder / "faqs" / "drug-q1.json")
    assert result.returncode == 1
    assert "product: refers to product/drug, which does not exist." in result.stdout


@pytest.mark.parametrize("target", ["missing-folder", "empty-folder"])
def test_cli_validate_with_nothing_to_check_fails_clearly(tmp_path, target):
    path = tmp_path / target
    if target == "empty-folder":
        path.mkdir()
    result = medkb("validate", path)
    assert result.returncode == 1
    assert str(path) in result.stderr
    assert "Traceback" not in result.stderr


# --- format versions -------------------------------------------------------

V1_FIXTURE = ROOT / "tests" / "fixtures" / "v1" / "faqs" / "drug-q1.json"


def test_older_format_is_migrated_forward():
    old = json.loads(V1_FIXTURE.read_text())
    assert old["schema_version"] == 1 and old["citations"] == ["src"]
    new = migrate(old)
    assert new["schema_version"] == 3
    assert new["citations"] == [{"source": "src"}]
    assert old["schema_version"] == 1, "migration must not change its input"


V2_PRODUCT = {
    "type": "product", "id": "drug", "schema_version": 2, "revision": 1, "locale": "en-US",
    "updated_at": "2026-04-02T00:00:00Z", "name": "Drug", "non_proprietary_name": "drugamab",
    "product_type": "gene_therapy", "summary": "A drug.", "route": "intravenous", "conditions": ["cond"],
    "how_it_works": {"text": "It works.", "citations": [{"source": "src", "locator": "p. 1"}], "verification": "unverified"},
    "classes": [{"system": "atc", "code": "B02BD16", "citations": [{"source": "src", "locator": "p. 1"}]}],
    "approvals": [{"region": "EU", "date": "2023-02", "citations": [{"source": "src", "locator": "p. 1"}]}],
}


def test_version_2_product_moves_atc_to_identifiers_and_says_what_is_unverified():
    new = migrate(V2_PRODUCT)
    assert new["schema_version"] == 3
    assert new["classes"] == [{"system": "atc", "code": "B02BD", "citations": [{"source": "src", "locator": "p. 1"}],
                               "verification": {"status": "unverified", "note": new["identifiers"][0]["verification"]["note"]}}]
    assert [(i["system"], i["value"], i["verification"]["status"]) for i in new["identifiers"]] == [("atc", "B02BD16", "unverified")]
    assert new["how_it_works"]["verification"] == {"status": "unverified"}
    assert new["approvals"][0]["verification"]["status"] == "unverified"
    assert new["review_status"] == "not_medically_reviewed"
    assert V2_PRODUCT["classes"][0]["code"] == "B02BD16", "migration must not change its input"


def test_version_2_verified_word_is_not_turned_into_an_invented_source(kb_folder):
    path = kb_folder / "products" / "drug.json"
    document = json.loads(path.read_text())
    document.update(schema_version=2, dosing=[dict(document["dosing"][0], verification="verified")])
    document.pop("review_status")
    path.write_text(json.dumps(document))
    problems = [str(p) for p in load_set([kb_folder]).problems]
    assert problems == [f"{path}: dosing.0.verification.date: Required when status is 'verified'.",
                        f"{path}: dosing.0.verification.source: Required when status is 'verified'."]


def test_version_2_article_gets_its_slug_and_an_honest_review_status():
    article = {"type": "article", "id": "about-drug", "schema_version": 2, "medical_reviewer": "doc",
               "last_reviewed": "2026-03-01"}
    assert migrate(article)["slug"] == "about-drug"
    assert migrate(article)["review_status"] == "medically_reviewed"
    assert migrate({**article, "last_reviewed": None})["review_status"] == "not_medically_reviewed"


def test_older_format_validates_in_a_set(kb_folder):
    (kb_folder / "faqs" / "drug-q1.json").write_bytes(V1_FIXTURE.read_bytes())
    loaded = load_set([kb_folder])
    assert loaded.problems == []
    assert loaded.documents["faq/drug-q1"]["citations"] == [{"source": "src"}]


def test_cli_migrate_rewrites_older_files_in_place(kb_folder):
    target = kb_folder / "faqs" / "drug-q1.json"
    target.write_bytes(V1_FIXTURE.read_bytes())
    untouched = (kb_folder / "faqs" / "drug-q2.json").read_bytes()
    result = medkb("migrate", kb_folder)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{target}: migrated to schema_version 3" in result.stdout
    rewritten = json.loads(target.read_text())
    assert rewritten["schema_version"] == 3 and rewritten["citations"] == [{"source": "src"}]
    assert (kb_folder / "faqs" / "drug-q2.json").read_bytes() == untouched
    assert medkb("validate", kb_folder).returncode == 0


def test_newer_unknown_format_is_refused_and_not_rewritten(kb_folder):
    target = kb_folder / "faqs" / "drug-q1.json"
    document = json.loads(target.read_text())
    document["schema_version"] = 4
    target.write_text(json.dumps(document))
    before = target.read_bytes()
    result = medkb("migrate", kb_folder)
    assert result.returncode == 1
    assert result.stdout.strip() == (f"{target}: schema_version: schema_version 4 is newer than this medkb "
                                     "understands (up to 3); upgrade medkb.")
    assert target.read_bytes() == before


# --- JSON Schema for editors -----------------------------------------------

def test_cli_schema_writes_json_schemas_that_agree_with_marshmallow(tmp_path, documents):
    import jsonschema

    result = medkb("schema", "--out", tmp_path / "out")
    assert result.returncode == 0, result.stderr
    for document in documents:
        schema = json.loads((tmp_path / "out" / f"{document['type']}.schema.json").read_text())
        jsonschema.Draft202012Validator(schema).validate(document)
        bad = dict(document, surprise=1)
        assert not jsonschema.Draft202012Validator(schema).is_valid(bad)
        wrong_type = dict(document, type="leaflet")
        assert not jsonschema.Draft202012Validator(schema).is_valid(wrong_type)


def test_committed_json_schemas_match_the_code(tmp_path):
    result = medkb("schema", "--out", tmp_path)
    assert result.returncode == 0, result.stderr
    written = {p.name: p.read_bytes() for p in tmp_path.glob("*.json")}
    committed = {p.name: p.read_bytes() for p in (ROOT / "schemas" / "json").glob("*.json")}
    assert written == committed, "schemas/json is stale: run `medkb schema`"


# --- large sets, checked over several processes ---------------------------------

def test_checking_over_several_processes_reports_exactly_what_one_process_does(kb_folder, documents):
    """Forked workers inherit the set and send back each file's result: the same documents and
    the same problems, in the same order, as checking in this process."""
    extra = [dict(doc(documents, "faq/drug-q1"), id=f"drug-q{n}", position=n) for n in range(3, 150)]
    write_documents(kb_folder, extra)
    (kb_folder / "faqs" / "drug-q7.json").write_bytes(b'{"type": "faq",\n  "id": }')
    (kb_folder / "faqs" / "drug-q8.json").write_text(json.dumps(dict(extra[5], colour="blue")))
    (kb_folder / "faqs" / "drug-q9.json").write_text(json.dumps(dict(extra[6], product="nothing")))
    (kb_folder / "faqs" / "renamed.json").write_text(json.dumps(extra[10]))
    (kb_folder / "more" / "faqs").mkdir(parents=True)
    (kb_folder / "more" / "faqs" / "drug-q20.json").write_text(json.dumps(extra[17]))
    alone, spread = load_set([kb_folder], processes=1), load_set([kb_folder], processes=2)
    reported = [str(p) for p in alone.problems]
    for words in ("invalid JSON", "Unknown field", "product/nothing", "already defined", "must match"):
        assert any(words in line for line in reported), words
    assert [str(p) for p in spread.problems] == reported
    assert spread.documents == alone.documents and list(spread.documents) == list(alone.documents)
    assert spread.files_seen == alone.files_seen == 9 + 147 + 2


def test_fork_map_runs_closures_in_other_processes_in_order():
    from api.knowledge.parallel import fork_map

    table = {n: n * n for n in range(500)}  # in memory only: the workers inherit it
    seen = []
    results = fork_map(lambda n: (table[n], os.getpid()), range(500), processes=2,
                       progress=lambda done, total: seen.append((done, total)))
    assert [square for square, _ in results] == [n * n for n in range(500)]
    assert os.getpid() not in {pid for _, pid in results}
    assert seen[0] == (0, 500) and seen[-1] == (500, 500) and seen == sorted(seen)
    with pytest.raises(ZeroDivisionError):
        fork_map(lambda n: 1 // (n - 250), range(500), processes=2)


def test_fork_map_runs_a_few_long_tasks_side_by_side():
    # The derived files' two builds: each must get its own worker, not queue behind the other.
    import multiprocessing

    from api.knowledge.parallel import fork_map

    both_running = multiprocessing.get_context("fork").Barrier(2, timeout=10)
    assert fork_map(lambda n: (both_running.wait(), n)[1], range(2), processes=2) == [0, 1]


def test_a_whole_set_command_runs_without_the_cycle_collector_and_restores_it_even_when_it_fails():
    import gc

    from api.knowledge.parallel import fork_map, without_cycle_collection

    @without_cycle_collection()
    def command(fail):
        # The processes it forks inherit the setting, so they do not traverse the set either.
        states = fork_map(lambda _: gc.isenabled(), range(4), processes=2) + [gc.isenabled()]
        if fail:
            raise SystemExit(1)
        return states

    assert gc.isenabled()
    assert command(False) == [False] * 5 and gc.isenabled()
    with pytest.raises(SystemExit):
        command(True)
    assert gc.isenabled()


def test_references_the_set_lacks_may_resolve_outside_it_and_those_documents_are_named(tmp_path, documents):
    faq = doc(documents, "faq/drug-q1")
    write_documents(tmp_path, [dict(faq, id="drug-q9", position=9)])
    held = {"product/drug": doc(documents, "product/drug"), "source/src": doc(documents, "source/src")}
    assert sorted(p.message for p in load_set([tmp_path]).problems) == [
        "refers to product/drug, which does not exist.", "refers to source/src, which does not exist."]
    asked = []

    def store(type_name, id_):
        asked.append(f"{type_name}/{id_}")
        return held.get(f"{type_name}/{id_}")

    loaded = load_set([tmp_path], lookup_outside=store)
    assert loaded.problems == [] and loaded.leaning_outside == {"faq/drug-q9"} and loaded.outside == held
    assert asked == ["product/drug", "source/src"]  # only what the set missed, once each
    del held["source/src"]
    assert [p.message for p in load_set([tmp_path], lookup_outside=store).problems] == [
        "refers to source/src, which does not exist."]


@pytest.mark.parametrize("arguments", [["export", "--out", ""], ["schema", "--out", ""], ["openapi", "--out", ""],
                                       ["validate", ""], ["import", ""], ["migrate", ""]])
def test_an_empty_path_is_refused_not_taken_for_the_current_folder(tmp_path, arguments):
    result = subprocess.run([sys.executable, "-m", "api.cli", *arguments], cwd=tmp_path, capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT), "MEDKB_DB": str(tmp_path / "db")}, timeout=120)
    assert result.returncode == 2 and "an empty path names no file or folder" in result.stderr
    assert list(tmp_path.iterdir()) == []
