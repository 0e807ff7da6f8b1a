"""The API as its real clients use it, through `medkb serve`: a Python client generated from
openapi.yaml by openapi-python-client (httpx underneath, gzip and br accepted), and `requests`
with its default headers. Both read, search, sync the feed, and run the editorial story."""
import contextlib
import copy
import importlib
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from conftest import CONTENT, CONTENT_COUNT, ROOT
from servers import create_key

NEW_FAQ = json.loads((CONTENT / "faqs" / "hemgenix-how-does-it-work.json").read_text())
NEW_FAQ.update(id="hemgenix-who-can-get-it", position=5, question="Who can get Hemgenix?")
NEW_FAQ.pop("revision", None)


@pytest.fixture(scope="module")
def generated_client(tmp_path_factory):
    """The client package generated from the committed openapi.yaml, importable."""
    out = tmp_path_factory.mktemp("generated")
    config = out / "config.yaml"
    config.write_text("post_hooks: []\nproject_name_override: medkb-client\npackage_name_override: medkb_client\n")
    generator = Path(sys.executable).with_name("openapi-python-client")
    result = subprocess.run([str(generator), "generate", "--path", str(ROOT / "openapi.yaml"), "--config", str(config),
                             "--meta", "none", "--output-path", str(out / "medkb_client")],
                            capture_output=True, text=True, timeout=300, cwd=out)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "warning" not in (result.stdout + result.stderr).lower(), result.stdout + result.stderr
    sys.path.insert(0, str(out))
    try:
        yield importlib.import_module("medkb_client")
    finally:
        sys.path.remove(str(out))
        for name in [name for name in sys.modules if name.startswith("medkb_client")]:
            del sys.modules[name]


@pytest.fixture
def people(live_server):
    base, db = live_server
    return {role: create_key(db, role, f"{role}-1") for role in ("author", "reviewer", "publisher")}


def eventually(check, seconds=5.0):
    """What another worker shows: each worker catches up with a commit within 0.1 s (DESIGN)."""
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "not visible on every worker in time"
        time.sleep(0.05)


def api(package, module):
    return importlib.import_module(f"medkb_client.api.{module}")


def model(package, name):
    return getattr(importlib.import_module("medkb_client.models"), name)


def test_generated_client_reads_searches_syncs_and_runs_the_editorial_story(generated_client, live_server, people):
    with contextlib.ExitStack() as clients:  # closed at the end: keep-alive holds their connections
        story_with_the_generated_client(generated_client, live_server, people, clients)


def story_with_the_generated_client(generated_client, live_server, people, clients):
    base, _ = live_server
    client_module = importlib.import_module("medkb_client")
    public = clients.enter_context(client_module.Client(base_url=base, raise_on_unexpected_status=True))

    product = api(generated_client, "products.get_product").sync(id="hemgenix", client=public,
                                                               include="mechanism,faqs")
    assert product.id == "hemgenix"
    assert product.included.mechanism.product == "hemgenix"  # typed models, not dictionaries
    assert len(product.included.faqs) == 4 and product.included.faqs[0].product == "hemgenix"

    found = api(generated_client, "search.search").sync(client=public, q="hemgenx")
    assert found.results and found.results[0].product == "hemgenix"

    synced, cursor = {}, None
    while True:
        page = api(generated_client, "feed.get_feed").sync(client=public, **({"since": cursor} if cursor else {}))
        for change in page.changes:
            synced[(change.type_, change.id)] = change.op
        cursor = page.next_cursor
        if not page.has_more:
            break
    assert len(synced) == CONTENT_COUNT and set(synced.values()) == {"upsert"}

    def editor(role):
        return clients.enter_context(client_module.AuthenticatedClient(base_url=base, token=people[role],
                                                                        raise_on_unexpected_status=True))

    editorial = "editorial"
    created = api(generated_client, f"{editorial}.create_document").sync_detailed(
        client=editor("author"), body=model(generated_client, "FaqInput").from_dict(copy.deepcopy(NEW_FAQ)))
    assert created.status_code == 201, created.content
    etag = created.headers["etag"]
    patched = api(generated_client, f"{editorial}.patch_document").sync_detailed(
        type_=model(generated_client, "DocumentType")("faq"), id=NEW_FAQ["id"], client=editor("author"),
        body=model(generated_client, "MergePatch").from_dict({"question": "Who is Hemgenix for?"}), if_match=etag)
    assert patched.status_code == 200, patched.content
    assert patched.parsed.document["question"] == "Who is Hemgenix for?"
    etag = patched.headers["etag"]
    diff = api(generated_client, f"{editorial}.diff_revisions").sync(
        type_=model(generated_client, "DocumentType")("faq"), id=NEW_FAQ["id"], client=editor("reviewer"),
        from_=1, to=2)
    assert (diff.from_, diff.to) == (1, 2) and "changed question" in diff.summary

    transition_type = model(generated_client, "DocumentType")("faq")
    for role, action in (("author", "submit"), ("reviewer", "approve"), ("publisher", "publish")):
        body = model(generated_client, "Transition").from_dict({"action": action})
        moved = api(generated_client, f"{editorial}.transition_document").sync_detailed(
            type_=transition_type, id=NEW_FAQ["id"], client=editor(role), body=body, if_match=etag)
        assert moved.status_code == 200, (action, moved.content)
        etag = moved.headers["etag"]
    get_faq = api(generated_client, "faqs.get_faq")
    eventually(lambda: get_faq.sync_detailed(id=NEW_FAQ["id"], client=public).status_code == 200)
    assert get_faq.sync(id=NEW_FAQ["id"], client=public).question == "Who is Hemgenix for?"

    withdrawn = api(generated_client, f"{editorial}.transition_document").sync_detailed(
        type_=transition_type, id=NEW_FAQ["id"], client=editor("publisher"),
        body=model(generated_client, "Transition").from_dict({"action": "unpublish"}), if_match=etag)
    assert withdrawn.status_code == 200, withdrawn.content
    eventually(lambda: get_faq.sync_detailed(id=NEW_FAQ["id"], client=public).status_code == 404)


@pytest.fixture
def session():
    """requests with its defaults: Accept-Encoding gzip, deflate (br when brotli is there), keep-alive."""
    with requests.Session() as opened:
        yield opened


def test_requests_with_default_headers_runs_the_editorial_story(live_server, people, session):
    base, _ = live_server
    product = session.get(f"{base}/v1/products/hemgenix", params={"include": "mechanism,faqs"})
    assert product.status_code == 200 and product.headers["Content-Encoding"] in ("gzip", "br")
    assert session.get(f"{base}/v1/products/hemgenix", params={"include": "mechanism,faqs"},
                       headers={"If-None-Match": product.headers["ETag"]}).status_code == 304

    def as_(role, etag=None):
        headers = {"Authorization": f"Bearer {people[role]}"}
        if etag:
            headers["If-Match"] = etag
        return headers

    document = f"{base}/v1/editorial/documents/faq/{NEW_FAQ['id']}"
    created = session.post(f"{base}/v1/editorial/documents", json=NEW_FAQ, headers=as_("author"))
    assert created.status_code == 201, created.text
    read = session.get(document, headers=as_("author"))
    assert read.headers.get("Content-Encoding") in ("gzip", "br"), "a compressed read, as browsers get"
    patched = session.patch(document, json={"question": "Who is Hemgenix for?"},
                            headers=as_("author", read.headers["ETag"]))
    assert patched.status_code == 200, patched.text
    assert patched.json()["document"]["question"] == "Who is Hemgenix for?"
    assert session.patch(document, json={"question": "Lost update?"},
                         headers=as_("author", read.headers["ETag"])).status_code == 412
    assert session.patch(document, json={"question": "Lost update?"}, headers=as_("author", "*")).status_code == 428

    etag = patched.headers["ETag"]
    for role, action in (("author", "submit"), ("reviewer", "approve"), ("publisher", "publish")):
        moved = session.post(f"{document}/transitions", json={"action": action}, headers=as_(role, etag))
        assert moved.status_code == 200, (action, moved.text)
        etag = moved.headers["ETag"]
    # The same revision, now published: every worker says so, compressed or not (a cache of
    # compressed bodies keyed by the revision's tag once served the state it had before).
    states = {session.get(document, headers=as_("author")).json()["workflow"]["state"] for _ in range(8)}
    assert states == {"published"}
    eventually(lambda: session.get(f"{base}/v1/faqs/{NEW_FAQ['id']}").status_code == 200)
    assert session.get(f"{base}/v1/faqs/{NEW_FAQ['id']}").json()["question"] == "Who is Hemgenix for?"
    moved = session.post(f"{document}/transitions", json={"action": "unpublish"}, headers=as_("publisher", etag))
    assert moved.status_code == 200, moved.text
    eventually(lambda: session.get(f"{base}/v1/faqs/{NEW_FAQ['id']}").status_code == 404)
