"""`medkb import`, `medkb export` and `medkb check`, run as real processes on the shipped content."""
import json
import os
import shutil
import subprocess
import sys

import pytest

from api.store.store import Store
from conftest import CONTENT, CONTENT_COUNT, ROOT


def medkb(db, *args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "api.cli", *map(str, args)], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT), "MEDKB_DB": str(db)}, timeout=300)


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
    store.delete("article", "how-does-hemgenix-work",
                 expected_revision=store.head("article", "how-does-hemgenix-work").revision, actor="ann")
    (content_copy / "notes.json").write_text("{}")  # not the store's: left alone
    result = medkb(db, "export", "--out", content_copy)
    assert result.stdout.strip() == f"{CONTENT_COUNT - 1} published documents in {content_copy}: 0 written, 1 removed."
    assert not (content_copy / "articles" / "how-does-hemgenix-work.json").exists()
    assert (content_copy / "notes.json").exists()


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


def test_import_shows_progress_on_large_sets(tmp_path, documents):
    from conftest import write_documents

    extra = [dict(documents[6], id=f"drug-q{n}", position=n) for n in range(3, 303)]
    write_documents(tmp_path / "kb", documents + extra)
    result = medkb(tmp_path / "db", "import", tmp_path / "kb")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = [line for line in result.stderr.splitlines() if not line.startswith("lint: ")]
    assert lines[0].startswith("importing ") and lines[-1] == "importing 309/309"
    assert 5 <= len(lines) <= 12


def test_check_passes_on_a_good_store_and_names_a_damaged_file(tmp_path, content_copy):
    db = tmp_path / "db"
    medkb(db, "import", content_copy)
    ok = medkb(db, "check")
    assert ok.returncode == 0
    n = CONTENT_COUNT
    assert ok.stdout.strip() == f"{db}: {n} documents, {n} revisions, change sequence at {n}: OK."
    victim = db / "documents" / "product" / "hemgenix.json"
    data = json.loads(victim.read_bytes())
    data["revisions"]["1"]["content"]["name"] = "Hemgenics"
    victim.write_text(json.dumps(data))
    bad = medkb(db, "check")
    assert bad.returncode == 1
    assert f"{victim}: revision 1: content does not match its hash" in bad.stdout


def test_a_corrupt_store_file_is_one_line_and_left_as_it_was(tmp_path, content_copy):
    db = tmp_path / "db"
    medkb(db, "import", content_copy)
    victim = db / "documents" / "faq" / "hemgenix-how-does-it-work.json"
    victim.write_bytes(victim.read_bytes()[:100])
    before = victim.read_bytes()
    for command in (["check"], ["import", content_copy], ["export", "--out", tmp_path / "out"]):
        result = medkb(db, *command)
        assert result.returncode == 1
        assert result.stderr.startswith(f"{victim}: store file is corrupt")
        assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    assert victim.read_bytes() == before
