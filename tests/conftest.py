import copy
import json
import os
from pathlib import Path

import pytest

from schemas import TYPE_FOLDERS

ROOT = Path(__file__).resolve().parents[1]
CONTENT = ROOT / "content"
STAMP = "2026-04-02T00:00:00Z"
# How many documents the shipped content holds: an import makes one change per document.
CONTENT_COUNT = sum(1 for _ in CONTENT.rglob("*.json"))


def envelope(type_name, id_):
    return {"type": type_name, "id": id_, "schema_version": 3, "revision": 1, "locale": "en-US", "updated_at": STAMP}


CITE = [{"source": "src", "locator": "p. 1"}]


def minimal_documents():
    """A small, valid knowledge base touching every type and every kind of reference."""
    return [
        {**envelope("source", "src"), "title": "A source", "kind": "article", "verification": "verified",
         "locators": ["p. 1"]},
        {**envelope("person", "writer"), "name": "A Writer", "roles": ["author"]},
        {**envelope("condition", "cond"), "name": "A condition", "summary": "About it.",
         "cause": {"text": "A gene.", "citations": CITE}, "gene": "F9", "inheritance": "x_linked_recessive"},
        {**envelope("product", "drug"), "name": "Drug", "non_proprietary_name": "drugamab", "product_type": "gene_therapy",
         "summary": "A drug.", "how_it_works": {"text": "It works.", "citations": CITE},
         "classes": [{"system": "atc", "code": "B02BD", "name": "blood coagulation factors"}],
         "identifiers": [{"system": "atc", "value": "B02BD16", "citations": CITE,
                          "verification": {"status": "verified", "source": "src", "date": "2026-04-02"}}],
         "route": "intravenous", "conditions": ["cond"], "review_status": "not_medically_reviewed",
         "dosing": [{"text": "Once.", "citations": CITE}],
         "related": [{"product": "other", "type": "also_looked_for", "basis": "Browsing."}]},
        {**envelope("product", "other"), "name": "Other", "non_proprietary_name": "otherase", "product_type": "recombinant_factor",
         "summary": "Another.", "how_it_works": {"text": "Replaces.", "citations": CITE},
         "classes": [{"system": "pharmacologic", "name": "factor IX"}], "route": "intravenous", "conditions": ["cond"],
         "review_status": "not_medically_reviewed"},
        {**envelope("mechanism", "drug-mechanism"), "product": "drug", "title": "How it works", "summary": "Steps.",
         "steps": [{"position": 1, "title": "First", "body": "One.", "citations": CITE},
                   {"position": 2, "title": "Second", "body": "Two.", "citations": CITE}],
         "sections": [{"key": "root-cause", "title": "Why", "placement": "before_steps", "body": "Cause.", "citations": CITE}]},
        {**envelope("faq", "drug-q1"), "product": "drug", "position": 1, "question": "Q1?", "answer": "A1.", "citations": CITE},
        {**envelope("faq", "drug-q2"), "product": "drug", "position": 2, "question": "Q2?", "answer": "A2.", "citations": CITE},
        {**envelope("article", "about-drug"), "headline": "About Drug", "summary": "Summary.", "about": "drug",
         "slug": "about-drug", "review_status": "not_medically_reviewed",
         "author": "writer", "publisher": {"name": "Pub", "url": "https://example.org"}, "date_modified": "2026-04-02",
         "mechanism": "drug-mechanism", "faqs": ["drug-q1", "drug-q2"], "sources": ["src"]},
    ]


def write_documents(root, documents):
    paths = {}
    for document in documents:
        path = Path(root) / TYPE_FOLDERS[document["type"]] / f"{document['id']}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(document, indent=2))
        paths[f"{document['type']}/{document['id']}"] = path
    return paths


@pytest.fixture
def documents():
    return copy.deepcopy(minimal_documents())


@pytest.fixture
def kb_folder(tmp_path, documents):
    """A folder holding the minimal knowledge base, one file per document."""
    root = tmp_path / "kb"
    write_documents(root, documents)
    return root


@pytest.fixture
def store(tmp_path, documents):
    """A real store on disk holding the minimal knowledge base, published."""
    from api.services.documents import Documents
    from api.store.store import Store

    store = Store(tmp_path / "db")
    Documents(store).import_(documents, actor="import", message="import")
    return store


def import_documents(db, documents):
    from api.services.documents import Documents
    from api.store.store import Store

    Documents(Store(db, durable=False)).import_(documents, actor="import", message="import")
    return db


@pytest.fixture
def content_db(tmp_path):
    """A store holding the shipped content set, published."""
    from api.knowledge.documents import load_set

    return import_documents(tmp_path / "content-db", load_set([CONTENT]).documents.values())


@pytest.fixture
def app(content_db):
    from api.app import create_app

    return create_app({"MEDKB_DB": str(content_db), "TESTING": True})


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture(scope="session")
def openapi_spec():
    import yaml

    return yaml.safe_load((ROOT / "openapi.yaml").read_text())


@pytest.fixture
def conforms(openapi_spec):
    """conforms(response, "/v1/products/{id}") asserts the response matches the committed OpenAPI document."""
    from openapi_schema_validator import OAS30Validator

    def check(response, path, method="get"):
        operation = openapi_spec["paths"][path][method]
        documented = operation["responses"].get(str(response.status_code))
        assert documented is not None, f"{response.status_code} is not documented for {method.upper()} {path}"
        if "$ref" in documented:
            documented = openapi_spec["components"]["responses"][documented["$ref"].rsplit("/", 1)[1]]
        if response.status_code == 304:
            assert response.data == b""
            return
        content = documented.get("content", {})
        assert response.mimetype in content, f"{response.mimetype} not documented ({list(content)})"
        schema = content[response.mimetype]["schema"]
        OAS30Validator({**schema, "components": openapi_spec["components"]}).validate(response.get_json(force=True))

    return check


# --- real servers -------------------------------------------------------------

@pytest.fixture
def live_server(content_db):
    """`medkb serve` with two workers on the shipped content, on a free loopback port.
    Yields (base URL, store folder)."""
    from servers import serving

    with serving(content_db) as base:
        yield base, content_db


# --- both store backends ---------------------------------------------------------

@pytest.fixture(scope="session")
def postgres_cluster():
    """A throwaway PostgreSQL server for the session (tests/pgcluster.py), with a migrated, empty
    template database that each test's database is copied from."""
    from pgcluster import Cluster

    from api.store.postgres import migrate

    cluster = Cluster().start()
    try:
        cluster.template = cluster.create_database()
        migrate(cluster.url(cluster.template))
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def database_url(postgres_cluster):
    """The URL of a new database of this test's own, at the current schema, holding nothing."""
    return postgres_cluster.url(postgres_cluster.create_database(postgres_cluster.template))


class Backend:
    """One store backend, for tests that run on both: opens its stores (closed at teardown) and
    names the store to subprocesses as a deployment would (MEDKB_DB, MEDKB_DATABASE_URL)."""

    def __init__(self, name, root, url=None):
        self.name, self.root, self.url = name, Path(root), url
        self._opened = []

    def open(self, durable=True):
        from api.store import open_store

        store = open_store(self.root, self.url, durable=durable)
        self._opened.append(store)
        return store

    def env(self):
        return {"MEDKB_DB": str(self.root), **({"MEDKB_DATABASE_URL": self.url} if self.url else {})}

    def opener(self):
        """Python source that binds `store` to this store, for a subprocess's -c script."""
        return f"from api.store import open_store; store = open_store({str(self.root)!r}, {self.url!r})"

    def snapshot(self, store):
        """Everything the store holds, to compare before and after: its files (not its lock, nor the
        index file, derived data any reader may touch), or its tables' rows."""
        if self.url is None:
            return {p.relative_to(self.root): p.read_bytes() for p in sorted(self.root.rglob("*"))
                    if p.is_file() and p.name != "store.lock" and not p.name.startswith("indexes.sqlite")}
        import psycopg

        with psycopg.connect(self.url) as connection:
            return {table: connection.execute(f"SELECT * FROM {table} ORDER BY 1, 2").fetchall()
                    for table in ("medkb_head", "medkb_documents", "medkb_revisions", "medkb_changes")}

    def close(self):
        for store in self._opened:
            store.close()


@pytest.fixture(params=["files", "postgres"])
def backend(request, tmp_path):
    url = request.getfixturevalue("database_url") if request.param == "postgres" else None
    chosen = Backend(request.param, tmp_path / "db", url)
    yield chosen
    chosen.close()


@pytest.fixture
def postgres_backend(tmp_path, database_url):
    chosen = Backend("postgres", tmp_path / "db", database_url)
    yield chosen
    chosen.close()


def imported_store(backend, documents):
    from api.services.documents import Documents

    store = backend.open()
    Documents(store).import_(documents, actor="import", message="import")
    return store


@pytest.fixture
def any_store(backend, documents):
    """The minimal knowledge base, imported and published, in a store of each backend."""
    return imported_store(backend, documents)


@pytest.fixture
def pg_store(postgres_backend, documents):
    """The minimal knowledge base, imported and published, in PostgreSQL."""
    return imported_store(postgres_backend, documents)


CHROMIUM = "/usr/bin/chromium"  # Debian's build; Playwright never downloads its own
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run"]


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium through Playwright, or a skip where either is missing (make test installs both)."""
    os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
    sync_api = pytest.importorskip("playwright.sync_api")
    if not os.path.exists(CHROMIUM):
        pytest.skip("needs Debian's chromium (make test installs it)")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()
