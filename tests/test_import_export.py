"""`medkb import`, `medkb export` and `medkb check`, run as real processes on the shipped content."""
import json
import re
import shutil
import subprocess
import time

import pytest
import requests

from api.services.documents import Documents
from api.store.store import Store
from conftest import CONTENT, CONTENT_COUNT
from servers import medkb, serving


@pytest.fixture
def content_copy(tmp_path):
    target = tmp_path / "content"
    shutil.copytree(CONTENT, target)
    return target


def tree_bytes(root):
    return {p.relative_to(root): p.read_bytes() for p in sorted(root.rglob("*.json"))}


def test_import_is_idempotent_and_a_changed_file_adds_one_revision(tmp_path, content_copy):
    db = tmp_path / "db"
    first = medkb(db, "import", content_copy)
    assert first.returncode == 0, first.stderr
    n = CONTENT_COUNT
    assert first.stdout.strip() == f"{n} documents: {n} changed, 0 unchanged; store at change {n}."
    again = medkb(db, "import", content_copy)
    assert again.stdout.strip() == f"{n} documents: 0 changed, {n} unchanged; store at change {n}."

    path = content_copy / "faqs" / "hemgenix-how-does-it-work.json"
    document = json.loads(path.read_text())
    document["question"] = "How does Hemgenix work, in plain English?"
    path.write_text(json.dumps(document))
    changed = medkb(db, "import", content_copy)
    assert changed.stdout.strip() == f"{n} documents: 1 changed, {n - 1} unchanged; store at change {n + 1}."
    store = Store(db)
    assert [r.revision for r in store.revisions("faq", "hemgenix-how-does-it-work")] == [1, 2]
    assert store.published("faq", "hemgenix-how-does-it-work").content["question"].endswith("in plain English?")


def test_import_then_export_gives_back_the_same_bytes(tmp_path, content_copy):
    db = tmp_path / "db"
    assert medkb(db, "import", content_copy).returncode == 0
    exported = medkb(db, "export", "--out", content_copy)
    assert exported.returncode == 0, exported.stderr
    assert exported.stdout.strip() == f"{CONTENT_COUNT} published documents in {content_copy}: 0 written, 0 removed."
    assert tree_bytes(content_copy) == tree_bytes(CONTENT)
    fresh = tmp_path / "fresh"
    assert medkb(db, "export", "--out", fresh).returncode == 0
    assert tree_bytes(fresh) == tree_bytes(CONTENT)


def test_export_removes_documents_no_longer_published(tmp_path, content_copy):
    db = tmp_path / "db"
    medkb(db, "import", content_copy)
    store = Store(db)
    Documents(store).delete("article", "how-does-hemgenix-work",
                            expected_revision=store.head("article", "how-does-hemgenix-work").revision, actor="ann")
    (content_copy / "notes.json").write_text("{}")  # not the store's: left alone
    result = medkb(db, "export", "--out", content_copy)
    assert result.stdout.strip() == f"{CONTENT_COUNT - 1} published documents in {content_copy}: 0 written, 1 removed."
    assert not (content_copy / "articles" / "how-does-hemgenix-work.json").exists()
    assert (content_copy / "notes.json").exists()


def test_export_writes_a_document_as_listed_when_an_editor_deletes_it_meanwhile(tmp_path, content_copy, monkeypatch):
    """A document deleted between export's listing and its write is exported as it was listed: no
    traceback, no half-written folder (the race an audit hit in 7 of 40 exports while editing)."""
    from click.testing import CliRunner

    from api.cli import commands

    db = tmp_path / "db"
    medkb(db, "import", content_copy)
    store = Store(db)
    listed = store.states

    def states_then_a_deletion(type_name=None):
        states = list(listed(type_name))
        Documents(store).delete("article", "how-does-hemgenix-work", actor="ann",
                                expected_revision=store.head("article", "how-does-hemgenix-work").revision)
        return states

    monkeypatch.setattr(store, "states", states_then_a_deletion)
    monkeypatch.setattr(commands, "open_store", lambda: store)
    out = tmp_path / "out"
    result = CliRunner().invoke(commands.main, ["export", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert store.published("article", "how-does-hemgenix-work") is None
    assert tree_bytes(out) == tree_bytes(content_copy)


def test_import_refuses_an_invalid_set_and_writes_nothing(tmp_path, content_copy):
    db = tmp_path / "db"
    path = content_copy / "faqs" / "hemgenix-how-does-it-work.json"
    document = json.loads(path.read_text())
    document["product"] = "hemgenixx"
    path.write_text(json.dumps(document))
    result = medkb(db, "import", content_copy)
    assert result.returncode == 1
    assert f"{path}: product: refers to product/hemgenixx, which does not exist." in result.stdout
    assert "nothing imported" in result.stderr
    assert Store(db).last_seq() == 0


def test_a_folder_of_new_documents_may_refer_to_what_the_store_holds(tmp_path, content_copy):
    db = tmp_path / "db"
    assert medkb(db, "import", content_copy).returncode == 0
    faq = json.loads((content_copy / "faqs" / "hemgenix-how-does-it-work.json").read_text())
    new = tmp_path / "new" / "faqs"
    new.mkdir(parents=True)
    (new / "hemgenix-new-question.json").write_text(json.dumps(dict(faq, id="hemgenix-new-question", position=99)))
    added = medkb(db, "import", tmp_path / "new")
    assert added.returncode == 0, added.stdout + added.stderr
    assert added.stdout.strip().endswith(f"1 documents: 1 changed, 0 unchanged; store at change {CONTENT_COUNT + 1}.")
    assert Store(db).published("faq", "hemgenix-new-question").content["product"] == "hemgenix"
    # Linted against what the store holds too: the product's open discrepancy on the mechanism.
    mechanism = tmp_path / "mechanism-only"
    shutil.copytree(content_copy / "mechanisms", mechanism / "mechanisms")
    relinted = medkb(db, "import", mechanism)
    assert relinted.returncode == 0, relinted.stdout + relinted.stderr
    assert any(line.startswith("lint: mechanism/hemgenix-mechanism: sections.1.body: warning discrepancy.open: "
                               "Differs from the label") for line in relinted.stderr.splitlines()), relinted.stderr

    # What neither the folder nor the store holds is still refused, and nothing is written.
    (new / "hemgenix-other-question.json").write_text(
        json.dumps(dict(faq, id="hemgenix-other-question", position=98, product="hemgenixx")))
    refused = medkb(db, "import", tmp_path / "new")
    assert refused.returncode == 1
    assert (f"{new / 'hemgenix-other-question.json'}: product: refers to product/hemgenixx, which does not exist."
            in refused.stdout)
    assert Store(db).last_seq() == CONTENT_COUNT + 1


def test_a_store_document_that_moved_after_the_files_were_checked_is_checked_again(tmp_path, store, documents):
    """What the store answered for the files' references is looked up again under the writer
    lock: a source edited in between so that it no longer declares the cited locator fails the
    import, which writes nothing."""
    from api.knowledge.documents import InvalidDocument, load_set
    from conftest import write_documents

    faq = next(d for d in documents if d["type"] == "faq")
    write_documents(tmp_path / "new", [dict(faq, id="drug-q9", position=9)])
    service = Documents(store)
    loaded = load_set([tmp_path / "new"], lookup_outside=service.lookup_head)
    assert loaded.problems == [] and loaded.leaning_outside == {"faq/drug-q9"}
    source = store.head("source", "src")
    service.write(dict(source.content, locators=["p. 2"]), expected_revision=source.revision, actor="ed",
                  publish=True)
    edited_at = store.last_seq()
    with pytest.raises(InvalidDocument, match="'p. 1' is not a locator source/src declares"):
        service.import_(loaded.documents.values(), loaded=loaded)
    assert store.last_seq() == edited_at


def test_a_set_that_failed_its_checks_is_never_imported(tmp_path, store, documents):
    from api.knowledge.documents import InvalidDocument, load_set
    from conftest import write_documents

    faq = next(d for d in documents if d["type"] == "faq")
    write_documents(tmp_path / "new", [dict(faq, id="drug-q9", position=9, product="nothing-like-it")])
    loaded = load_set([tmp_path / "new"], lookup_outside=Documents(store).lookup_head)
    before = store.last_seq()
    with pytest.raises(InvalidDocument, match="refers to product/nothing-like-it"):
        Documents(store).import_(loaded.documents.values(), loaded=loaded)
    assert store.last_seq() == before and store.state("faq", "drug-q9") is None


def test_a_stage_announced_early_counts_its_time_from_its_own_start(monkeypatch, capsys):
    # load_set is given its two stages' progress at once; the second starts when the first ends.
    from api.cli import commands

    now = [1000.0]
    monkeypatch.setattr(commands.time, "monotonic", lambda: now[0])
    cross_checking = commands.Progress("cross-checking")
    now[0] += 20  # the files are checked meanwhile
    cross_checking(0, 500)
    now[0] += 3
    cross_checking(500, 500)
    assert capsys.readouterr().err.splitlines() == ["cross-checking 500/500 (3 s)"]


def test_import_shows_progress_on_large_sets(tmp_path, documents):
    from conftest import write_documents

    extra = [dict(documents[6], id=f"drug-q{n}", position=n) for n in range(3, 303)]
    write_documents(tmp_path / "kb", documents + extra)
    result = medkb(tmp_path / "db", "import", tmp_path / "kb")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = [line for line in result.stderr.splitlines() if not line.startswith("lint: ")]
    stages = {stage: [line for line in lines if line.startswith(f"{stage} ")]
              for stage in ("checking", "cross-checking", "linting", "importing")}
    derived = [line for line in lines if re.fullmatch(r"read model, search index and bundle ready \(\d+ s\)", line)]
    # Files checked, then documents against the set, linted, imported; then the derived files.
    assert lines == [*stages["checking"], *stages["cross-checking"], *stages["linting"], *stages["importing"],
                     *derived] and len(derived) == 1
    for stage, stage_lines in stages.items():
        assert re.fullmatch(rf"{stage} 309/309 \(\d+ s\)", stage_lines[-1])
        assert 3 <= len(stage_lines) <= 12


def test_check_passes_on_a_good_store_and_names_a_damaged_file(tmp_path, content_copy):
    db = tmp_path / "db"
    medkb(db, "import", content_copy)
    ok = medkb(db, "check")
    assert ok.returncode == 0
    n = CONTENT_COUNT
    assert ok.stdout.strip() == f"{db}: {n} documents, {n} revisions, change sequence at {n}: OK."
    victim = db / "documents" / "product" / "hemgenix" / "1.json"
    data = json.loads(victim.read_bytes())
    data["content"]["name"] = "Hemgenics"
    victim.write_text(json.dumps(data))
    bad = medkb(db, "check")
    assert bad.returncode == 1
    assert f"{victim}: revision 1: content does not match its hash" in bad.stdout


def test_check_names_an_unreadable_index_file_and_repair_rebuilds_it_in_one_line(tmp_path, content_copy):
    db = tmp_path / "db"
    medkb(db, "import", content_copy)
    (db / "indexes.sqlite").write_bytes(b"not a database " * 300)
    checked = medkb(db, "check")
    assert checked.returncode == 1 and f"{db / 'indexes.sqlite'}: cannot be read (file is not a database)" in checked.stdout
    repaired = medkb(db, "check", "--repair")
    assert repaired.returncode == 0 and "Traceback" not in repaired.stderr, repaired.stderr
    assert repaired.stdout.strip().endswith(f"change sequence at {CONTENT_COUNT}: OK.")


def test_a_corrupt_store_file_is_one_line_and_left_as_it_was(tmp_path, content_copy):
    db = tmp_path / "db"
    medkb(db, "import", content_copy)
    victim = db / "documents" / "faq" / "hemgenix-how-does-it-work" / "pointers.json"
    victim.write_bytes(victim.read_bytes()[:100])
    before = victim.read_bytes()
    checked = medkb(db, "check")  # opening reads no document: check finds it and lists it
    assert checked.returncode == 1 and checked.stdout.startswith(f"{victim}: store file is corrupt")
    for command in (["import", content_copy], ["export", "--out", tmp_path / "out"]):
        result = medkb(db, *command)
        assert result.returncode == 1
        assert result.stderr.startswith(f"{victim}: store file is corrupt")
        assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    assert victim.read_bytes() == before


def test_an_import_that_committed_says_so_when_a_derived_file_is_damaged(tmp_path, content_copy):
    """The read model is derived: damaged, it fails the command in one line, which says the
    import itself was committed (a write that reports failure must not have been)."""
    db = tmp_path / "db"
    medkb(db, "import", content_copy)
    (db / "readmodel.sqlite").write_bytes(b"not a database " * 300)
    path = content_copy / "faqs" / "hemgenix-how-does-it-work.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "question": "How does Hemgenix work, briefly?"}))
    result = medkb(db, "import", content_copy)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert f"Imported: the store is at change {CONTENT_COUNT + 1}" in result.stderr
    assert "the read model (readmodel.sqlite) cannot be used (file is not a database)" in result.stderr
    assert Store(db).published("faq", "hemgenix-how-does-it-work").content["question"].endswith("briefly?")


# --- the store is the source of truth (issue 8.2) ----------------------------------------------

FAQ = "faq/hemgenix-how-does-it-work"
ARTICLE = "article/how-does-hemgenix-work"  # nothing published refers to it, so it can be unpublished


def editor_session(base, secret):
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {secret}"
    return session


def transition(session, base, key, action, **body):
    url = f"{base}/v1/editorial/documents/{key}"
    etag = session.get(url).headers["ETag"]
    response = session.post(f"{url}/transitions", json={"action": action, **body}, headers={"If-Match": etag})
    assert response.status_code == 200, response.text
    return response


def store_view(db):
    store = Store(db)
    return {(s.type, s.id): (s, store.head(s.type, s.id).content) for s in store.states()}, store.changes(0)


def test_import_never_reverts_what_editors_did(tmp_path, content_copy):
    from api.store.keys import KeyStore

    db = tmp_path / "db"
    assert medkb(db, "import", content_copy).returncode == 0
    keys = {name: KeyStore(db).create(role, name)[1]
            for name, role in [("ann", "author"), ("rita", "reviewer"), ("paul", "publisher")]}
    with serving(db) as base:
        ann, rita, paul = (editor_session(base, keys[name]) for name in ("ann", "rita", "paul"))
        url = f"{base}/v1/editorial/documents/{FAQ}"
        edited = ann.patch(url, json={"answer": "An editor's newer answer."},
                           headers={"If-Match": ann.get(url).headers["ETag"]})
        assert edited.status_code == 200, edited.text
        transition(ann, base, FAQ, "submit")
        transition(rita, base, FAQ, "approve")
        transition(paul, base, FAQ, "publish")
        transition(paul, base, ARTICLE, "unpublish")
        product = f"{base}/v1/editorial/documents/product/hemgenix"
        draft = ann.patch(product, json={"summary": "A pending draft nobody has reviewed."},
                          headers={"If-Match": ann.get(product).headers["ETag"]})
        assert draft.status_code == 200, draft.text
        # Every worker catches up within 0.1 s of a publish (DESIGN); wait until all show it.
        deadline = time.monotonic() + 10
        while {requests.get(f"{base}/v1/faqs/hemgenix-how-does-it-work").json()["answer"]
               for _ in range(6)} != {"An editor's newer answer."}:
            assert time.monotonic() < deadline, "the publish never reached every worker"
            time.sleep(0.05)
        public_before = {path: requests.get(base + path).content
                         for path in ("/v1/faqs/hemgenix-how-does-it-work", "/v1/products/hemgenix")}
        before = store_view(db)

        result = medkb(db, "import", content_copy)

        assert result.returncode == 1
        faq_file = content_copy / "faqs" / "hemgenix-how-does-it-work.json"
        article_file = content_copy / "articles" / "how-does-hemgenix-work.json"
        refusals = [line for line in result.stderr.splitlines() if not line.startswith("lint: ")]
        assert sorted(refusals) == sorted([
            f"{faq_file}: file is at revision 1, store is at revision 2 (published 2); export first, or pass "
            f"--force-revert to replace the store's version with the file",
            f"{article_file}: file is at revision 1, store is at revision 1 (not published); export first, or pass "
            f"--force-revert to replace the store's version with the file"])
        assert result.stdout.strip() == f"{CONTENT_COUNT} documents: 0 changed, {CONTENT_COUNT - 2} unchanged, 2 refused; store at change {len(before[1])}."
        assert store_view(db) == before, "nothing an editor did was touched"
        time.sleep(0.3)  # past every worker's check interval: they would have replayed a change by now
        for path, body in public_before.items():
            assert requests.get(base + path).content == body
        assert requests.get(f"{base}/v1/articles/how-does-hemgenix-work").status_code == 404
        feed = requests.get(f"{base}/v1/feed?since={len(before[1])}")
        assert feed.json()["changes"] == []
        assert requests.get(f"{base}/v1/feed?since={len(before[1])}",
                            headers={"If-None-Match": feed.headers["ETag"]}).status_code == 304
        audit = rita.get(f"{base}/v1/editorial/audit?page=2&page_size=10")
        assert [e["seq"] for e in audit.json()] == list(range(11, 21))
        assert json.loads(audit.headers["X-Pagination"])["total"] == len(before[1])

    if_empty = medkb(db, "import", "--if-empty", content_copy)
    assert if_empty.returncode == 0 and "not importing" in if_empty.stdout
    assert store_view(db) == before

    forced = medkb(db, "import", "--force-revert", content_copy)
    assert forced.returncode == 0, forced.stderr
    assert forced.stdout.strip() == f"{CONTENT_COUNT} documents: 2 changed, {CONTENT_COUNT - 2} unchanged; store at change {len(before[1]) + 2}."
    store = Store(db)
    assert store.published(*FAQ.split("/")).content["answer"] == json.loads(faq_file.read_text())["answer"]
    assert store.published(*ARTICLE.split("/")).revision == 1
    assert store.head("product", "hemgenix").revision == 2, "the pending draft, equal to no file, stays"
    overrides = store.changes(len(before[1]))
    assert [(c.actor, c.kind) for c in overrides] == [("import", "publish"), ("import", "publish")]
    assert all("--force-revert: replaced store revision" in c.message for c in overrides)


def test_export_edit_import_round_trip(tmp_path, content_copy):
    from api.services.documents import Documents

    db = tmp_path / "db"
    assert medkb(db, "import", content_copy).returncode == 0
    stale = (content_copy / "faqs" / "hemgenix-how-does-it-work.json").read_bytes()
    store = Store(db)
    head = store.head(*FAQ.split("/"))
    Documents(store).write(dict(head.content, answer="Published from the API."), expected_revision=1, actor="ann",
                           publish=True)
    assert medkb(db, "export", "--out", content_copy).returncode == 0
    path = content_copy / "faqs" / "hemgenix-how-does-it-work.json"
    document = json.loads(path.read_text())
    assert document["revision"] == 2 and document["answer"] == "Published from the API."
    document["question"] = "How does Hemgenix work, step by step?"
    path.write_text(json.dumps(document))
    applied = medkb(db, "import", content_copy)
    assert applied.stdout.strip() == f"{CONTENT_COUNT} documents: 1 changed, {CONTENT_COUNT - 1} unchanged; store at change {CONTENT_COUNT + 2}."
    published = Store(db).published(*FAQ.split("/"))
    assert published.revision == 3 and published.content["question"].endswith("step by step?")
    assert medkb(db, "import", content_copy).stdout.strip() == f"{CONTENT_COUNT} documents: 0 changed, {CONTENT_COUNT} unchanged; store at change {CONTENT_COUNT + 2}."
    path.write_bytes(stale)
    refused = medkb(db, "import", content_copy)
    assert refused.returncode == 1
    assert f"{path}: file is at revision 1, store is at revision 3 (published 3)" in refused.stderr
    assert Store(db).published(*FAQ.split("/")).revision == 3


def test_an_export_imports_back_after_editors_publish_faqs_with_a_gap_and_a_tie_in_positions(tmp_path, content_copy):
    from api.store.keys import KeyStore

    db, exported, copy_db = tmp_path / "db", tmp_path / "exported", tmp_path / "copy"
    assert medkb(db, "import", content_copy).returncode == 0
    keys = {name: KeyStore(db).create(role, name)[1]
            for name, role in [("ann", "author"), ("rita", "reviewer"), ("paul", "publisher")]}
    faq = {"type": "faq", "schema_version": 3, "locale": "en-US", "product": "hemgenix",
           "question": "How long does Hemgenix keep working?",
           "answer": "In the HOPE-B trial, factor IX levels stayed stable in most patients over 5 years.",
           "citations": [{"source": "medfinder-how-does-hemgenix-work",
                          "locator": "Step 4: Factor IX Production Begins"}]}
    with serving(db) as base:
        ann, rita, paul = (editor_session(base, keys[name]) for name in ("ann", "rita", "paul"))
        for id_, position, seen in (("hemgenix-at-six", 6, [1, 2, 3, 4, 6]),  # a gap, then a tie
                                    ("hemgenix-also-at-four", 4, [1, 2, 3, 4, 4, 6])):
            created = ann.post(f"{base}/v1/editorial/documents", json=dict(faq, id=id_, position=position))
            assert created.status_code == 201, created.text
            # Editors see the warning the import gives, against the product's published FAQs (which
            # reach the worker that answers within the second DESIGN allows).
            warning = {"rule": "faq.position", "severity": "warning", "field": "position",
                       "message": f"The FAQs of product/hemgenix are at positions {seen}, not 1 to {len(seen)}: "
                                  f"readers see them by position, then id. Renumber them to make the order explicit."}
            deadline = time.monotonic() + 5
            while warning not in ann.get(f"{base}/v1/editorial/documents/faq/{id_}/lint").json()["findings"]:
                assert time.monotonic() < deadline, "the editorial lint never warned about the positions"
                time.sleep(0.05)
            transition(ann, base, f"faq/{id_}", "submit")
            transition(rita, base, f"faq/{id_}", "approve")
            transition(paul, base, f"faq/{id_}", "publish")
        deadline = time.monotonic() + 10
        while len(faqs := requests.get(f"{base}/v1/products/hemgenix?include=faqs").json()["included"]["faqs"]) < 6:
            assert time.monotonic() < deadline, "the publishes never reached the public read"
            time.sleep(0.05)
        assert [(f["position"], f["id"]) for f in faqs][3:] == [
            (4, "hemgenix-also-at-four"), (4, "hemgenix-what-is-the-padua-variant"), (6, "hemgenix-at-six")]

    assert medkb(db, "export", "--out", exported).returncode == 0
    assert medkb(db, "validate", exported).returncode == 0
    into_new = medkb(copy_db, "import", exported)
    assert into_new.returncode == 0, into_new.stderr
    warned = sorted(line.split(":")[1].strip() for line in into_new.stderr.splitlines() if "faq.position" in line)
    assert warned == sorted(f"faq/{path.stem}" for path in (exported / "faqs").glob("*.json"))
    assert medkb(copy_db, "export", "--out", tmp_path / "again").returncode == 0
    assert tree_bytes(tmp_path / "again") == tree_bytes(exported)
    into_same = medkb(db, "import", exported)
    assert into_same.returncode == 0 and " 0 changed" in into_same.stdout


def test_a_file_exported_from_another_store_is_refused_as_ahead_of_this_one(tmp_path, content_copy):
    """Export from a store where an FAQ is at revision 2, import that into a new store (where it
    starts again at 1), edit the file and import again: refused, saying where the file comes from."""
    source, copy, exported = tmp_path / "source", tmp_path / "copy", tmp_path / "exported"
    assert medkb(source, "import", content_copy).returncode == 0
    store = Store(source)
    head = store.head(*FAQ.split("/"))
    Documents(store).write(dict(head.content, answer="Published from the API."), expected_revision=1, actor="ann",
                           publish=True)
    assert medkb(source, "export", "--out", exported).returncode == 0
    assert medkb(copy, "import", exported).returncode == 0
    path = exported / "faqs" / "hemgenix-how-does-it-work.json"
    path.write_text(path.read_text().replace("Published from the API.", "Edited in the file."))
    refused = medkb(copy, "import", exported)
    assert refused.returncode == 1
    assert f"{path}: file is at revision 2, ahead of the store's revision 1 (published 1): it comes from another " \
           f"store, whose revision numbers this one does not share; export from this store and edit that, or pass " \
           f"--force-revert to replace the store's version with the file" in refused.stderr.splitlines()
    assert Store(copy).published(*FAQ.split("/")).content["answer"] == "Published from the API."


@pytest.fixture
def read_only_store(tmp_path, content_copy):
    """A store with the shipped content, seen through a read-only bind mount (a backup, a
    snapshot), or a skip where mounting is not permitted."""
    written, mounted = tmp_path / "written", tmp_path / "read-only"
    assert medkb(written / "db", "import", content_copy).returncode == 0
    mounted.mkdir()
    for command in (["mount", "--bind", str(written), str(mounted)],
                    ["mount", "-o", "remount,bind,ro", str(mounted)]):
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            subprocess.run(["umount", str(mounted)], capture_output=True)
            pytest.skip(f"cannot make a read-only mount here: {result.stderr.strip()}")
    yield mounted / "db"
    subprocess.run(["umount", "-l", str(mounted)], check=True)


def test_a_store_on_a_read_only_file_system_is_checked_and_exported_and_refuses_writes_in_one_line(
        tmp_path, read_only_store, content_copy):
    exported = medkb(read_only_store, "export", "--out", tmp_path / "exported")
    assert exported.returncode == 0, exported.stderr
    assert tree_bytes(tmp_path / "exported") == tree_bytes(CONTENT)
    checked = medkb(read_only_store, "check")
    assert checked.returncode == 0, checked.stderr + checked.stdout
    assert checked.stdout.strip().endswith(f"change sequence at {CONTENT_COUNT}: OK.")
    repair = medkb(read_only_store, "check", "--repair")
    assert (repair.returncode, repair.stderr) == (
        1, f"{read_only_store}: is on a read-only file system; nothing can be repaired there.\n")
    path = content_copy / "faqs" / "hemgenix-how-does-it-work.json"
    path.write_text(path.read_text().replace("How does Hemgenix work?", "How does it work?"))
    imported = medkb(read_only_store, "import", content_copy)
    assert (imported.returncode, imported.stderr) == (
        1, f"{read_only_store}: on a read-only file system; nothing was saved.\n")
    assert Store(read_only_store).last_seq() == CONTENT_COUNT
