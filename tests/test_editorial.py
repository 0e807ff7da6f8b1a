"""The editorial API: keys and roles, drafting, history, workflow, lint, audit, preview."""
import datetime
import json
import os
import subprocess
import sys

import pytest
import yaml

from api.app import create_app
from api.store.keys import KeyStore
from conftest import CONTENT_COUNT, ROOT

ROLES = ("author", "reviewer", "publisher", "admin")


@pytest.fixture
def editorial_app(content_db):
    return create_app({"MEDKB_DB": str(content_db), "MEDKB_CHECK_INTERVAL": 0})


@pytest.fixture
def client(editorial_app):
    return editorial_app.test_client()


@pytest.fixture
def keys(content_db):
    """A key per role, plus a second author and reviewer: {name: secret}."""
    store = KeyStore(content_db)
    made = {}
    for name, role in [("ann", "author"), ("abe", "author"), ("rita", "reviewer"), ("rob", "reviewer"),
                       ("paul", "publisher"), ("ada", "admin")]:
        made[name] = store.create(role, name)[1]
    for role, name in zip(ROLES, ("ann", "rita", "paul", "ada")):
        made[role] = made[name]
    return made


def auth(keys, who, etag=None):
    headers = {"Authorization": f"Bearer {keys[who]}"}
    if etag:
        headers["If-Match"] = etag
    return headers


NEW_FAQ = {"type": "faq", "id": "hemgenix-how-long-does-it-last", "schema_version": 2, "locale": "en-US",
           "product": "hemgenix", "position": 5, "question": "How long does Hemgenix keep working?",
           "answer": "In the HOPE-B trial, factor IX levels stayed stable in most patients over 5 years.",
           "citations": [{"source": "medfinder-how-does-hemgenix-work", "locator": "Step 4: Factor IX Production Begins"}]}
DOC = "/v1/editorial/documents/faq/hemgenix-how-long-does-it-last"


def create_faq(client, keys, who="ann", document=NEW_FAQ):
    response = client.post("/v1/editorial/documents", json=document, headers=auth(keys, who))
    assert response.status_code == 201, response.get_json()
    return response.headers["ETag"]


def step(client, keys, who, action, etag, path=DOC, **body):
    return client.post(f"{path}/transitions", json={"action": action, **body}, headers=auth(keys, who, etag))


# --- keys and authentication --------------------------------------------------

def medkb(db, *args):
    return subprocess.run([sys.executable, "-m", "api.cli", *args], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT), "MEDKB_DB": str(db)}, timeout=120)


def test_keys_cli_creates_lists_and_revokes(content_db, client):
    created = medkb(content_db, "keys", "create", "--role", "reviewer", "--name", "dr-who")
    assert created.returncode == 0, created.stderr
    secret = created.stdout.strip()
    assert secret.startswith("mkb_") and "\n" not in secret, "the key, alone, on standard output"
    headers = {"Authorization": f"Bearer {secret}"}
    assert client.get("/v1/editorial/documents", headers=headers).status_code == 200
    listed = medkb(content_db, "keys", "list").stdout
    assert "dr-who\treviewer" in listed and secret not in listed
    assert secret not in (content_db / "keys.json").read_text()
    assert medkb(content_db, "keys", "revoke", "dr-who").returncode == 0
    assert client.get("/v1/editorial/documents", headers=headers).status_code == 401
    bad = medkb(content_db, "keys", "create", "--role", "editor", "--name", "x")
    assert bad.returncode != 0 and "Traceback" not in bad.stderr


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer mkb_nope"}, {"Authorization": "Basic abc"},
                                     {"Authorization": "Bearer"}, {"Authorization": "Bearer " + "x" * 5000}])
@pytest.mark.parametrize("url", ["/v1/editorial/documents", "/v1/editorial/audit", "/v1/preview/products/hemgenix",
                                 "/v1/preview/products", "/v1/preview/search?q=hemgenix",
                                 "/v1/editorial/documents/product/hemgenix/lint"])
def test_missing_or_unknown_key_is_401_problem(client, keys, headers, url):
    response = client.get(url, headers=headers)
    assert response.status_code == 401 and response.mimetype == "application/problem+json"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


# --- role x action matrix ---------------------------------------------------------

ALLOWED = {
    "create": {"author", "admin"}, "put": {"author", "admin"}, "patch": {"author", "admin"},
    "submit": {"author", "admin"}, "approve": {"reviewer", "admin"}, "request_changes": {"reviewer", "admin"},
    "publish": {"publisher", "admin"}, "unpublish": {"publisher", "admin"}, "archive": {"publisher", "admin"},
    "restore": {"author", "admin"}, "read": set(ROLES), "audit": set(ROLES), "preview": set(ROLES),
    "lint": set(ROLES), "revisions": set(ROLES), "diff": set(ROLES),
}


def attempt(client, keys, role, action):
    path = "/v1/editorial/documents/product/hemgenix"
    etag = client.get(path, headers=auth(keys, "ada")).headers["ETag"]
    head = client.get(path, headers=auth(keys, "ada")).get_json()["document"]
    headers = auth(keys, role, etag)
    if action == "create":
        return client.post("/v1/editorial/documents", json=dict(NEW_FAQ, id=f"matrix-{role}"), headers=headers)
    if action == "put":
        return client.put(path, json=head, headers=headers)
    if action == "patch":
        return client.patch(path, json={"summary": head["summary"]}, headers=headers)
    if action in ("read", "audit", "preview", "lint", "revisions", "diff"):
        url = {"read": path, "audit": "/v1/editorial/audit", "preview": "/v1/preview/products/hemgenix",
               "lint": f"{path}/lint", "revisions": f"{path}/revisions", "diff": f"{path}/diff?from=1&to=1"}[action]
        return client.get(url, headers=headers)
    return client.post(f"{path}/transitions", json={"action": action, "comment": "matrix", "revision": 1},
                       headers=headers)


@pytest.mark.parametrize("action", sorted(ALLOWED))
@pytest.mark.parametrize("role", ROLES)
def test_role_action_matrix(client, keys, role, action):
    response = attempt(client, keys, role, action)
    if role in ALLOWED[action]:
        assert response.status_code != 403, response.get_json()
        assert response.status_code < 500
    else:
        assert response.status_code == 403, response.get_json()
        assert response.mimetype == "application/problem+json"


# --- the whole story ----------------------------------------------------------------

def public_texts(client):
    return {url: client.get(url).get_data() for url in (
        "/v1/faqs", "/v1/products/hemgenix", "/v1/products/hemgenix/faqs", "/v1/search?q=hemgenix%20keep%20working",
        "/v1/products/hemgenix?include=faqs")}


def test_draft_review_publish_story(client, keys):
    before = public_texts(client)
    etag = create_faq(client, keys)
    assert client.get("/v1/faqs/hemgenix-how-long-does-it-last").status_code == 404
    preview = client.get("/v1/preview/faqs/hemgenix-how-long-does-it-last", headers=auth(keys, "rita"))
    assert preview.status_code == 200 and preview.get_json()["revision"] == 1

    submitted = step(client, keys, "ann", "submit", etag)
    assert submitted.status_code == 200, submitted.get_json()
    assert submitted.get_json()["workflow"]["state"] == "in_review"
    no_comment = step(client, keys, "rita", "request_changes", etag)
    assert no_comment.status_code == 422 and "comment" in no_comment.get_json()["errors"]
    sent_back = step(client, keys, "rita", "request_changes", etag, comment="Say what HOPE-B measured.")
    assert sent_back.get_json()["workflow"]["state"] == "draft"

    edited = client.patch(DOC, json={"answer": "In the HOPE-B trial, factor IX activity stayed stable in most "
                                               "patients over 5 years of follow-up."}, headers=auth(keys, "ann", etag))
    assert edited.status_code == 200 and edited.get_json()["document"]["revision"] == 2
    etag = edited.headers["ETag"]
    assert step(client, keys, "ann", "submit", etag).status_code == 200
    approved = step(client, keys, "rita", "approve", etag)
    assert approved.get_json()["workflow"] == {**approved.get_json()["workflow"], "state": "approved",
                                                "approved_revision": 2}
    assert public_texts(client) == before, "nothing is public before publish"
    published = step(client, keys, "paul", "publish", etag)
    assert published.status_code == 200 and published.get_json()["workflow"]["state"] == "published"

    faq = client.get("/v1/faqs/hemgenix-how-long-does-it-last").get_json()
    assert faq["revision"] == 2 and "follow-up" in faq["answer"]
    assert "hemgenix-how-long-does-it-last" in [f["id"] for f in client.get("/v1/products/hemgenix/faqs").get_json()]
    found = client.get("/v1/search?q=hemgenix%20keep%20working").get_json()["results"]
    assert any(r["id"] == "hemgenix-how-long-does-it-last" for r in found)
    feed = client.get("/v1/feed?limit=500").get_json()["changes"]
    assert any(c["id"] == "hemgenix-how-long-does-it-last" and c["revision"] == 2 for c in feed)

    audit = client.get("/v1/editorial/audit?document=faq/hemgenix-how-long-does-it-last&page_size=50",
                       headers=auth(keys, "ada")).get_json()
    assert [(e["actor"], e["role"], e["action"] or e["kind"]) for e in audit] == [
        ("ann", "author", "revision"), ("ann", "author", "submit"), ("rita", "reviewer", "request_changes"),
        ("ann", "author", "revision"), ("ann", "author", "submit"), ("rita", "reviewer", "approve"),
        ("paul", "publisher", "publish")]
    assert audit[2]["comment"] == "Say what HOPE-B measured."
    assert (audit[-1]["from_state"], audit[-1]["to_state"], audit[-1]["to_revision"]) == ("approved", "published", 2)


def test_draft_edit_to_published_hemgenix_stays_invisible_until_published(client, keys):
    path = "/v1/editorial/documents/product/hemgenix"
    before = public_texts(client)
    feed_before = client.get("/v1/feed?limit=500").get_json()["changes"]
    etag = client.get(path, headers=auth(keys, "ann")).headers["ETag"]
    edited = client.patch(path, json={"summary": "Hemgenix, DRAFT XYLOPHONIC, is a one-time gene therapy."},
                          headers=auth(keys, "ann", etag))
    assert edited.status_code == 200
    assert public_texts(client) == before
    assert client.get("/v1/feed?limit=500").get_json()["changes"] == feed_before
    assert client.get("/v1/search?q=xylophonic").get_json()["results"] == []
    preview = client.get("/v1/preview/products/hemgenix", headers=auth(keys, "rita"))
    assert "DRAFT XYLOPHONIC" in preview.get_json()["summary"] and preview.headers["Cache-Control"] == "private, no-store"
    # Preview has every delivery shape: lists, include=, subresources, search, JSON-LD.
    listed = client.get("/v1/preview/products?fields=summary", headers=auth(keys, "rita")).get_json()
    assert any("XYLOPHONIC" in p["summary"] for p in listed)
    embedded = client.get("/v1/preview/articles/how-does-hemgenix-work?include=about", headers=auth(keys, "rita"))
    assert "XYLOPHONIC" in embedded.get_json()["included"]["about"]["summary"]
    found = client.get("/v1/preview/search?q=xylophonic", headers=auth(keys, "rita")).get_json()["results"]
    assert [r["id"] for r in found] == ["hemgenix"]
    jsonld = client.get("/v1/preview/articles/how-does-hemgenix-work/jsonld", headers=auth(keys, "rita")).get_json()
    assert "XYLOPHONIC" in jsonld["about"][0]["description"]
    assert client.get("/v1/preview/products/hemgenix/faqs", headers=auth(keys, "rita")).status_code == 200
    etag = edited.headers["ETag"]
    assert step(client, keys, "ann", "submit", etag, path=path).status_code == 200
    assert step(client, keys, "rita", "approve", etag, path=path).status_code == 200
    assert step(client, keys, "paul", "publish", etag, path=path).status_code == 200
    assert "DRAFT XYLOPHONIC" in client.get("/v1/products/hemgenix").get_json()["summary"]


# --- rules ----------------------------------------------------------------------------

def test_a_reviewer_cannot_approve_their_own_revision(client, keys):
    etag = create_faq(client, keys, who="ada")
    assert step(client, keys, "ada", "submit", etag).status_code == 200
    refused = step(client, keys, "ada", "approve", etag)
    assert refused.status_code == 403 and "wrote" in refused.get_json()["detail"]
    assert step(client, keys, "rita", "approve", etag).status_code == 200


def test_an_edit_after_approval_needs_review_again(client, keys):
    etag = create_faq(client, keys)
    step(client, keys, "ann", "submit", etag)
    step(client, keys, "rita", "approve", etag)
    edited = client.patch(DOC, json={"question": "How long does Hemgenix last?"}, headers=auth(keys, "ann", etag))
    assert edited.get_json()["workflow"]["state"] == "draft"
    assert edited.get_json()["workflow"]["approved_revision"] is None
    refused = step(client, keys, "paul", "publish", edited.headers["ETag"])
    assert refused.status_code == 409
    assert refused.get_json()["allowed"] == ["archive", "restore", "submit"]


def test_illegal_transition_lists_what_is_allowed(client, keys):
    etag = create_faq(client, keys)
    response = step(client, keys, "paul", "unpublish", etag)
    assert response.status_code == 409 and response.mimetype == "application/problem+json"
    assert response.get_json()["allowed"] == ["archive", "restore", "submit"]


def test_lint_errors_block_submit_and_show_on_demand(client, keys):
    etag = create_faq(client, keys, document=dict(NEW_FAQ, answer="Hemgenix is better than BeneFIX for most people."))
    lint = client.get(f"{DOC}/lint", headers=auth(keys, "rita")).get_json()
    assert any(f["rule"] == "claim.comparative" and f["severity"] == "error" and f["field"] == "answer"
               for f in lint["findings"])
    blocked = step(client, keys, "ann", "submit", etag)
    assert blocked.status_code == 422 and any(f["rule"] == "claim.comparative" for f in blocked.get_json()["findings"])
    assert client.get(DOC, headers=auth(keys, "ann")).get_json()["workflow"]["state"] == "draft"


def test_scheduled_publish_fires_without_any_request(client, keys, content_db):
    etag = create_faq(client, keys)
    step(client, keys, "ann", "submit", etag)
    step(client, keys, "rita", "approve", etag)
    due = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=8)  # room for a slow, shared machine
    when = due.isoformat()
    scheduled = step(client, keys, "paul", "publish", etag, publish_at=when)
    assert scheduled.status_code == 200
    assert scheduled.get_json()["workflow"]["state"] == "approved" and scheduled.get_json()["workflow"]["publish_at"]
    assert client.get("/v1/faqs/hemgenix-how-long-does-it-last").status_code == 404
    assert medkb(content_db, "worker", "--once").stdout.strip() == "0 scheduled publish(es) done."
    import time

    time.sleep(max(0.0, (due - datetime.datetime.now(datetime.UTC)).total_seconds()) + 0.2)
    assert medkb(content_db, "worker", "--once").stdout.strip() == "1 scheduled publish(es) done."
    assert client.get("/v1/faqs/hemgenix-how-long-does-it-last").status_code == 200
    audit = client.get("/v1/editorial/audit?actor=scheduler", headers=auth(keys, "ada")).get_json()
    assert [(e["document"], e["action"], e["role"]) for e in audit] == [
        ("faq/hemgenix-how-long-does-it-last", "publish", "publisher")]


def test_unpublish_and_archive_withdraw_from_delivery(client, keys):
    # The article shows the FAQ, so the article goes first (tests/test_published_references.py).
    article = "/v1/editorial/documents/article/how-does-hemgenix-work"
    article_etag = client.get(article, headers=auth(keys, "paul")).headers["ETag"]
    assert step(client, keys, "paul", "unpublish", article_etag, path=article).status_code == 200
    path = "/v1/editorial/documents/faq/hemgenix-what-is-the-padua-variant"
    etag = client.get(path, headers=auth(keys, "paul")).headers["ETag"]
    assert step(client, keys, "paul", "unpublish", etag, path=path).status_code == 200
    assert client.get("/v1/faqs/hemgenix-what-is-the-padua-variant").status_code == 404
    feed = client.get(f"/v1/feed?since={CONTENT_COUNT}").get_json()["changes"]
    assert [(c["op"], c["id"], c["reason"]) for c in feed] == [("delete", "how-does-hemgenix-work", "unpublished"),
                                                                ("delete", "hemgenix-what-is-the-padua-variant",
                                                                 "unpublished")]
    assert step(client, keys, "paul", "archive", etag, path=path).get_json()["workflow"]["state"] == "archived"


# --- history ----------------------------------------------------------------------------

def test_history_diff_and_restore(client, keys):
    etag = create_faq(client, keys)
    etag = client.patch(DOC, json={"question": "Does Hemgenix last?"}, headers=auth(keys, "abe", etag)).headers["ETag"]
    revisions = client.get(f"{DOC}/revisions", headers=auth(keys, "rita")).get_json()
    assert [(r["revision"], r["author"], r["state"]) for r in revisions] == [(1, "ann", "superseded"), (2, "abe", "draft")]
    first = client.get(f"{DOC}/revisions/1", headers=auth(keys, "rita")).get_json()
    assert first["document"]["question"] == NEW_FAQ["question"]
    diff = client.get(f"{DOC}/diff?from=1&to=2", headers=auth(keys, "rita")).get_json()
    assert (diff["from"], diff["to"]) == (1, 2)
    assert {"op": "replace", "path": "/question", "value": "Does Hemgenix last?"} in diff["patch"]
    assert "changed question" in diff["summary"]
    restored = step(client, keys, "ann", "restore", etag, revision=1)
    assert restored.status_code == 200
    assert restored.get_json()["document"]["revision"] == 3
    assert restored.get_json()["document"]["question"] == NEW_FAQ["question"]
    assert client.get(f"{DOC}/revisions/9", headers=auth(keys, "rita")).status_code == 404
    assert client.get(f"{DOC}/diff?from=1&to=9", headers=auth(keys, "rita")).status_code == 404


def test_working_set_filters_by_type_and_status(client, keys):
    create_faq(client, keys)
    drafts = client.get("/v1/editorial/documents?status=draft", headers=auth(keys, "rita")).get_json()
    assert [(d["type"], d["id"]) for d in drafts] == [("faq", "hemgenix-how-long-does-it-last")]
    products = client.get("/v1/editorial/documents?type=product&page_size=50", headers=auth(keys, "rita")).get_json()
    assert {d["state"] for d in products} == {"published"} and len(products) == 5


def test_audit_filters_by_actor_and_time(client, keys):
    create_faq(client, keys)
    everything = client.get("/v1/editorial/audit?page_size=100", headers=auth(keys, "ada")).get_json()
    assert len(everything) == CONTENT_COUNT + 1 and everything[0]["actor"] == "import"
    mine = client.get("/v1/editorial/audit?actor=ann", headers=auth(keys, "ada")).get_json()
    assert [e["document"] for e in mine] == ["faq/hemgenix-how-long-does-it-last"]
    later = (datetime.datetime.now(datetime.UTC) + datetime.timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    assert client.get(f"/v1/editorial/audit?since={later}", headers=auth(keys, "ada")).get_json() == []


# --- preconditions and bad input -------------------------------------------------------------

def test_writes_need_a_current_if_match(client, keys):
    etag = create_faq(client, keys)
    missing = client.patch(DOC, json={"question": "Q?"}, headers=auth(keys, "ann"))
    assert missing.status_code == 428 and missing.mimetype == "application/problem+json"
    assert step(client, keys, "ann", "submit", None).status_code == 428
    client.patch(DOC, json={"question": "First?"}, headers=auth(keys, "ann", etag))
    stale = client.patch(DOC, json={"question": "Second?"}, headers=auth(keys, "abe", etag))
    assert stale.status_code == 412
    assert stale.get_json()["current_etag"] in stale.headers["ETag"]
    assert client.get(DOC, headers=auth(keys, "ann")).get_json()["document"]["question"] == "First?"


def store_bytes(db):
    return {p: p.read_bytes() for p in sorted(db.rglob("*.json")) if p.name != "keys.json"}


BAD_WRITES = [
    ("post", "/v1/editorial/documents", b'{"type": "faq", "id": ', "application/json", 400),
    ("post", "/v1/editorial/documents", b'[1, 2]', "application/json", 422),
    ("post", "/v1/editorial/documents", json.dumps(dict(NEW_FAQ, position="five")).encode(), "application/json", 422),
    ("post", "/v1/editorial/documents", json.dumps(dict(NEW_FAQ, mood="upbeat")).encode(), "application/json", 422),
    ("post", "/v1/editorial/documents", json.dumps(dict(NEW_FAQ, product="nothing")).encode(), "application/json", 422),
    ("post", "/v1/editorial/documents", json.dumps(dict(NEW_FAQ, type="leaflet")).encode(), "application/json", 422),
    ("post", "/v1/editorial/documents", json.dumps(dict(NEW_FAQ, id="hemgenix")).encode().replace(b'"faq"', b'"product"', 1),
     "application/json", 409),
    ("post", "/v1/editorial/documents", b'{"answer": "' + b"x" * (2 * 1024 * 1024) + b'"}', "application/json", 413),
    ("put", "/v1/editorial/documents/faq/hemgenix-what-is-the-padua-variant", b'{"type": "faq"', "application/json", 400),
    ("put", "/v1/editorial/documents/faq/hemgenix-what-is-the-padua-variant",
     json.dumps(dict(NEW_FAQ, id="hemgenix-what-is-the-padua-variant", answer=7)).encode(), "application/json", 422),
    ("put", "/v1/editorial/documents/faq/hemgenix-what-is-the-padua-variant",
     json.dumps(dict(NEW_FAQ, id="another-id")).encode(), "application/json", 422),
    ("put", "/v1/editorial/documents/faq/no-such-faq", json.dumps(dict(NEW_FAQ, id="no-such-faq")).encode(),
     "application/json", 404),
    ("patch", "/v1/editorial/documents/faq/hemgenix-what-is-the-padua-variant", b'{"answer": ', "application/json", 400),
    ("patch", "/v1/editorial/documents/faq/hemgenix-what-is-the-padua-variant", b'{"answer": null}', "application/json", 422),
    ("patch", "/v1/editorial/documents/faq/hemgenix-what-is-the-padua-variant", b'{"position": "1"}', "application/json", 422),
    ("patch", "/v1/editorial/documents/faq/hemgenix-what-is-the-padua-variant", b'{"wingspan": 3}', "application/json", 422),
    ("patch", "/v1/editorial/documents/faq/nope", b'{"answer": "A."}', "application/json", 404),
    ("post", "/v1/editorial/documents/faq/hemgenix-what-is-the-padua-variant/transitions", b'{"action": "fly"}',
     "application/json", 422),
    ("post", "/v1/editorial/documents/faq/hemgenix-what-is-the-padua-variant/transitions", b'{"action": ',
     "application/json", 400),
    ("post", "/v1/editorial/documents/faq/hemgenix-what-is-the-padua-variant/transitions",
     b'{"action": "restore", "revision": "one"}', "application/json", 422),
    ("post", "/v1/editorial/documents/faq/nope/transitions", b'{"action": "submit"}', "application/json", 404),
]


@pytest.mark.parametrize("method,url,body,content_type,status", BAD_WRITES, ids=[f"{b[0]}-{i}" for i, b in enumerate(BAD_WRITES)])
def test_bad_writes_are_clear_4xx_and_store_nothing(client, keys, content_db, method, url, body, content_type, status):
    document_url = url.removesuffix("/transitions")
    current = client.get(document_url, headers=auth(keys, "ada"))
    etag = current.headers.get("ETag", '"rev-1-unknown"')
    before = store_bytes(content_db)
    response = getattr(client, method)(url, data=body, content_type=content_type, headers=auth(keys, "ada", etag))
    assert response.status_code == status, response.get_data(as_text=True)[:500]
    assert response.mimetype == "application/problem+json"
    assert store_bytes(content_db) == before


def _filled(path):
    """An editorial or preview path template with a document of the shipped content in it."""
    product_paths = ("/v1/preview/products/", "/v1/editorial/documents/")
    ids = {"conditions": "hemophilia-b", "articles": "how-does-hemgenix-work", "faqs": "hemgenix-how-does-it-work",
           "sources": "alhemo-eu-smpc", "people": "peter-daggett"}
    id_ = "hemgenix" if path.startswith(product_paths) else ids.get(path.split("/")[3], "")
    return path.replace("{type}", "product").replace("{id}", id_).replace("{number}", "1")


READS = [path for path, operations in yaml.safe_load((ROOT / "openapi.yaml").read_text())["paths"].items()
         if "get" in operations and path.startswith(("/v1/editorial", "/v1/preview")) and "webhooks" not in path]


@pytest.mark.parametrize("path", READS)
def test_every_editorial_and_preview_read_answers_as_documented(client, keys, conforms, path):
    """Each read of a real document, checked against openapi.yaml: generated clients parse these."""
    etag = client.get("/v1/editorial/documents/product/hemgenix", headers=auth(keys, "ann")).headers["ETag"]
    assert client.patch("/v1/editorial/documents/product/hemgenix", json={"summary": "A gene therapy."},
                        headers=auth(keys, "ann", etag)).status_code == 200
    query = {"diff": "?from=1&to=2", "search": "?q=liver"}.get(path.rsplit("/", 1)[1], "")
    response = client.get(_filled(path) + query, headers=auth(keys, "rita"))
    assert response.status_code == 200, response.get_data(as_text=True)
    conforms(response, path)
