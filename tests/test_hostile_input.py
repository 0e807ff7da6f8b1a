"""Hostile input never causes a 500 and never changes the store (issues 8.3 and 8.4).

Write bodies are JSON of the media type the operation takes (415 otherwise, with Accept-Patch on
PATCH), at most 1 MiB (413), nested at most 64 levels and valid Unicode (400), with numbers
within ±(2^53 - 1) (422 naming the field). Path segments that cannot name a document are 404s.
A refused request leaves every file of the store byte for byte as it was.
"""
import json
import subprocess
import sys

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.services.documents import Documents
from api.app import create_app
from api.store.keys import KeyStore
from api.knowledge.documents import InvalidDocument
from api.store.store import Store
from conftest import ROOT
from servers import fingerprint, serving

FAQ_ID = "hemgenix-how-does-it-work"
DOC = f"/v1/editorial/documents/faq/{FAQ_ID}"
CREATE = "/v1/editorial/documents"
MERGE_PATCH = "application/merge-patch+json"
NEW_FAQ = {"type": "faq", "id": "hemgenix-new-question", "schema_version": 3, "locale": "en-US",
           "product": "hemgenix", "position": 5, "question": "A new question?", "answer": "An answer.",
           "citations": [{"source": "medfinder-how-does-hemgenix-work", "locator": "Step 4: Factor IX Production Begins"}]}


@pytest.fixture
def app(content_db):
    return create_app({"MEDKB_DB": str(content_db), "MEDKB_CHECK_INTERVAL": 0})


@pytest.fixture
def admin(content_db):
    return {"Authorization": f"Bearer {KeyStore(content_db).create('admin', 'ada')[1]}"}


class Api:
    """The editorial API through Flask's test client, with a key and the current If-Match."""

    def __init__(self, client, admin):
        self.client, self.admin = client, admin

    def etag(self):
        return self.client.get(DOC, headers=self.admin).headers["ETag"]

    def send(self, method, path, body=b"", content_type="application/json", headers=None):
        headers = {**self.admin, "If-Match": self.etag(), **(headers or {})}
        if content_type:
            headers["Content-Type"] = content_type
        return self.client.open(path, method=method, data=body, headers=headers)


@pytest.fixture
def api(app, admin):
    return Api(app.test_client(), admin)


def no_pending_commit(db):
    return json.loads((db / "head.json").read_text())["pending"] is None


def assert_refused_unchanged(response, status, db, before):
    assert response.status_code == status, response.data[:500]
    assert response.mimetype == "application/problem+json"
    assert response.get_json()["status"] == status
    assert fingerprint(db) == before, "a refused request changed the store"
    assert no_pending_commit(db)


# --- media types (issue 8.3) ------------------------------------------------------------------

WRITES = [("POST", CREATE, NEW_FAQ), ("PUT", DOC, None), ("POST", f"{DOC}/transitions", {"action": "submit"}),
          ("PATCH", DOC, {"answer": "Changed."})]


def body_of(api, method, document):
    if document is None:  # PUT: the current document, changed
        document = dict(api.client.get(DOC, headers=api.admin).get_json()["document"], answer="Changed.")
    return json.dumps(document).encode()


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded",
                                          "multipart/form-data; boundary=x", "application/json-patch+json",
                                          "application/xml", "application/json; charset=latin-1"])
@pytest.mark.parametrize("method,path,document", WRITES, ids=["create", "replace", "transition", "patch"])
def test_a_body_of_another_media_type_is_a_415_and_changes_nothing(api, content_db, method, path, document,
                                                                  content_type):
    before = fingerprint(content_db)
    response = api.send(method, path, body_of(api, method, document), content_type)
    assert_refused_unchanged(response, 415, content_db, before)
    detail = response.get_json()["detail"]
    if method == "PATCH":
        assert response.headers["Accept-Patch"] == f"{MERGE_PATCH}, application/json"
        assert MERGE_PATCH in detail
    else:
        assert "Accept-Patch" not in response.headers and "application/json" in detail


@pytest.mark.parametrize("method,path,document", WRITES[:3], ids=["create", "replace", "transition"])
def test_merge_patch_type_is_only_for_patch(api, content_db, method, path, document):
    before = fingerprint(content_db)
    assert_refused_unchanged(api.send(method, path, body_of(api, method, document), MERGE_PATCH), 415, content_db,
                             before)


@pytest.mark.parametrize("content_type", [MERGE_PATCH, "application/json", "application/merge-patch+json; charset=utf-8"])
def test_patch_takes_merge_patch_and_json(api, content_type):
    response = api.send("PATCH", DOC, b'{"answer": "Changed."}', content_type)
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["document"]["answer"] == "Changed."


def test_json_writes_still_work(api, content_db):
    assert api.send("POST", CREATE, json.dumps(NEW_FAQ).encode()).status_code == 201
    assert api.send("PUT", DOC, body_of(api, "PUT", None)).status_code == 200
    assert api.send("POST", f"{DOC}/transitions", b'{"action": "submit"}').status_code == 200


def test_spec_declares_merge_patch_for_patch_and_how_bodies_are_refused(openapi_spec):
    operations = openapi_spec["paths"]["/v1/editorial/documents/{type}/{id}"]
    assert list(operations["patch"]["requestBody"]["content"]) == [MERGE_PATCH]
    for method in ("put", "patch"):
        assert {"400", "413", "415"} <= set(operations[method]["responses"])
    for status in ("BAD_REQUEST", "REQUEST_ENTITY_TOO_LARGE", "UNSUPPORTED_MEDIA_TYPE"):
        assert "application/problem+json" in openapi_spec["components"]["responses"][status]["content"]


@pytest.mark.parametrize("method,path,document", WRITES, ids=["create", "replace", "transition", "patch"])
def test_a_body_over_one_mebibyte_is_a_413(api, content_db, method, path, document):
    before = fingerprint(content_db)
    body = b'{"answer": "' + b"x" * (1024 * 1024) + b'"}'
    content_type = MERGE_PATCH if method == "PATCH" else "application/json"
    response = api.send(method, path, body, content_type)
    assert_refused_unchanged(response, 413, content_db, before)
    assert "1,048,576 bytes" in response.get_json()["detail"]


# --- malformed and out-of-range JSON (issue 8.4) -------------------------------------------------

def deep(levels):
    return b'{"answer": ' + b"[" * levels + b"]" * levels + b"}"


BAD_BODIES = [
    ("integer-2^64", b'{"position": 18446744073709551616}', 422, "position"),
    ("integer-2^53+1", b'{"position": 9007199254740993}', 422, "position"),
    ("negative-2^63", b'{"position": -9223372036854775809}', 422, "position"),
    ("4301-digits", b'{"position": 1' + b"0" * 4300 + b"}", 422, "position"),
    ("float-overflow", b'{"position": 1e400}', 422, "position"),
    ("nested-number", b'{"steps": [{"x": {"y": 1e300}}]}', 422, "steps.0.x.y"),
    ("lone-surrogate", b'{"answer": "\\ud800"}', 400, None),
    ("lone-low-surrogate-key", b'{"\\udc00": "x"}', 400, None),
    ("invalid-utf8", b'{"answer": "\xff\xfe"}', 400, None),
    ("encoded-surrogate", b'{"answer": "\xed\xa0\x80"}', 400, None),
    ("nested-1000", deep(1000), 400, None),
    ("nested-65", deep(64), 400, None),
    ("nan", b'{"position": NaN}', 400, None),
    ("infinity", b'{"position": Infinity}', 400, None),
    ("truncated", b'{"answer": "x"', 400, None),
    ("empty", b"", 400, None),
    ("whitespace", b" \n ", 400, None),
    ("trailing-garbage", b'{"answer": "x"} x', 400, None),
]


@pytest.mark.parametrize("method,path", [("POST", CREATE), ("PUT", DOC), ("PATCH", DOC),
                                         ("POST", f"{DOC}/transitions")])
@pytest.mark.parametrize("name,body,status,field", BAD_BODIES, ids=[case[0] for case in BAD_BODIES])
def test_malformed_or_out_of_range_json_is_refused_and_changes_nothing(api, content_db, method, path, name, body,
                                                                      status, field):
    before = fingerprint(content_db)
    response = api.send(method, path, body, MERGE_PATCH if method == "PATCH" else "application/json")
    assert_refused_unchanged(response, status, content_db, before)
    if field:
        assert list(response.get_json()["errors"]) == [field]


def test_nesting_within_the_limit_reaches_the_schema(api, content_db):
    response = api.send("PATCH", DOC, deep(63), MERGE_PATCH)
    assert response.status_code == 422 and "answer" in response.get_json()["errors"]


@pytest.mark.parametrize("document", [
    dict(NEW_FAQ, id="hemgenix-new-question\n"),
    dict(NEW_FAQ, locale="en-US\n"),
    dict(NEW_FAQ, question="</script><script>alert(1)</script>"),
])
def test_values_that_only_look_valid_are_422(api, content_db, document):
    before = fingerprint(content_db)
    assert_refused_unchanged(api.send("POST", CREATE, json.dumps(document).encode()), 422, content_db, before)


@pytest.mark.parametrize("path", [
    "/v1/editorial/documents/faq/" + "a" * 300, "/v1/editorial/documents/faq/a%00b",
    "/v1/editorial/documents/faq/" + "a" * 101, "/v1/editorial/documents/" + "f" * 300 + "/x",
    "/v1/editorial/documents/faq%00/x", "/v1/editorial/documents/faq/%2e%2e", "/v1/editorial/documents/faq/A",
    f"/v1/editorial/documents/faq/{'a' * 300}/revisions", f"/v1/editorial/documents/faq/{'a' * 300}/lint",
    "/v1/preview/faqs/" + "a" * 300, "/v1/preview/faqs/a%00", "/v1/faqs/" + "a" * 300, "/v1/products/a%00/faqs",
    "/v1/articles/%ff%fe/jsonld",
])
def test_a_path_segment_no_document_could_have_is_a_404(api, content_db, path):
    before = fingerprint(content_db)
    for method, body in (("GET", b""), ("PUT", b"{}"), ("PATCH", b"{}"), ("POST", b"{}")):
        response = api.client.open(path, method=method, data=body, headers={**api.admin, "If-Match": '"x"',
                                                                           "Content-Type": "application/json"})
        assert response.status_code in (404, 405), (method, response.status_code, response.data[:300])
        assert response.mimetype == "application/problem+json"
    assert fingerprint(content_db) == before


def test_the_store_refuses_what_it_cannot_serialize_before_the_commit_starts(content_db):
    store = Store(content_db, durable=False)
    head = store.head("faq", FAQ_ID)
    before = fingerprint(content_db)
    for bad in (2**64, 2**53, float("inf")):
        with pytest.raises(InvalidDocument) as refused:
            Documents(store).write(dict(head.content, position=bad), expected_revision=head.revision, actor="test")
        assert ("position", refused.value.errors[0][1]) == refused.value.errors[0]
    with pytest.raises(InvalidDocument):
        Documents(store).write(dict(head.content, answer="\ud800"), expected_revision=head.revision, actor="test")
    assert fingerprint(content_db) == before and no_pending_commit(content_db)


# --- generated hostile JSON for every write route --------------------------------------------------

NASTY_STRINGS = ["\ud800", "\udfff", "<script>alert(1)</script>", "</script><script>", "x < 5", "\x00", "a" * 5000,
                 "[x](javascript:alert(1))", "<!--", "hemgenix\n", "", " ", "é", "\u2028", "1e400"]
scalars = st.one_of(
    st.none(), st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([2**53 - 1, 2**53, -(2**53), 2**63, 2**64, 0, -1, 1]),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=30), st.text(st.characters(codec=None, categories=["Cs", "Cc", "Sm", "Po"]), max_size=5),
    st.sampled_from(NASTY_STRINGS),
)
KEYS = st.one_of(st.sampled_from(sorted(NEW_FAQ) + ["translations", "steps", "comment", "action", "publish_at",
                                                     "revision", "es-ES"]),
                 st.text(max_size=8), st.sampled_from(["\ud800", "<b>"]))
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=4),
                           max_leaves=12)


def encoded(value):
    """JSON text for any generated value; lone surrogates go out as \\u escapes, as JSON allows."""
    return json.dumps(value).encode()


raw_bodies = st.one_of(
    st.integers(min_value=60, max_value=1500).map(lambda n: b'{"answer": ' + b"[" * n + b"]" * n + b"}"),
    st.integers(min_value=17, max_value=5000).map(lambda n: b'{"position": ' + b"9" * n + b"}"),
    st.binary(max_size=40).map(lambda raw: b'{"answer": "' + raw + b'"}'),
    st.binary(max_size=40),
)


def write_bodies(route, base):
    """Bodies for one write route: hostile values in the places the route reads, and raw bytes."""
    if route == "transitions":
        changed = st.fixed_dictionaries({"action": st.sampled_from(["submit", "approve", "restore", "x"]) | scalars},
                                        optional={"comment": json_values, "publish_at": json_values,
                                                  "revision": json_values})
    elif route == "patch":
        changed = st.dictionaries(KEYS, json_values, max_size=3)
    else:
        changed = st.builds(lambda key, value: {**base, key: value}, KEYS, json_values)
    return st.one_of(changed.map(encoded), json_values.map(encoded), raw_bodies)


@pytest.mark.parametrize("route", ["create", "replace", "patch", "transitions"])
def test_generated_hostile_json_never_5xx_and_refusals_change_nothing(api, content_db, route):
    method, path, content_type = {"create": ("POST", CREATE, "application/json"), "replace": ("PUT", DOC,
                                  "application/json"), "patch": ("PATCH", DOC, MERGE_PATCH),
                                  "transitions": ("POST", f"{DOC}/transitions", "application/json")}[route]
    base = NEW_FAQ if route == "create" else api.client.get(DOC, headers=api.admin).get_json()["document"]

    @given(body=write_bodies(route, base))
    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True,
              database=None)
    def check(body):
        before = fingerprint(content_db)
        response = api.send(method, path, body, content_type)
        assert response.status_code < 500, (body[:200], response.data[:500])
        if response.status_code >= 400:
            assert response.mimetype == "application/problem+json"
            assert fingerprint(content_db) == before, (body[:200], response.status_code)
        assert no_pending_commit(content_db)

    check()


# --- through a real server with a real client ---------------------------------------------------

def test_hostile_requests_through_a_real_server(content_db, admin):
    with serving(content_db, workers=1) as base, requests.Session() as session:
        session.headers.update(admin)

        def etag():
            return session.get(base + DOC, timeout=30).headers["ETag"].removeprefix("W/")

        def send(method, path, body, content_type=MERGE_PATCH, **headers):
            headers = {"If-Match": etag(), **headers}
            if content_type:
                headers["Content-Type"] = content_type
            return session.request(method, base + path, data=body, headers=headers, timeout=30)

        before = fingerprint(content_db)
        cases = [
            (send("PATCH", DOC, '{"answer": "x"}', "text/plain"), 415),
            (send("PATCH", DOC, b'{"answer": "x"}', None), 415),
            (send("PATCH", DOC, b"[]", "application/json-patch+json"), 415),
            (send("PATCH", DOC, b'{"position": 18446744073709551616}'), 422),
            (send("PATCH", DOC, b'{"position": 1' + b"0" * 4400 + b"}"), 422),
            (send("PATCH", DOC, b'{"answer": "\\ud800"}'), 400),
            (send("PATCH", DOC, deep(1000)), 400),
            (send("POST", f"{DOC}/transitions", b'{"action": "submit", "comment": "\\udfff"}', "application/json"),
             400),
            (send("PUT", DOC, b"x" * (1024 * 1024 + 1), "application/json"), 413),
            # chunked: no Content-Length, so only the byte count read can stop it
            (send("PATCH", DOC, (b"x" * 65536 for _ in range(24))), 413),
            (session.get(base + "/v1/editorial/documents/faq/" + "a" * 300, timeout=30), 404),
            (session.get(base + "/v1/editorial/documents/faq/a%00b", timeout=30), 404),
            (session.get(base + "/v1/preview/faqs/" + "a" * 255, timeout=30), 404),
        ]
        for response, status in cases:
            assert response.status_code == status, (response.request.method, response.request.url[:120],
                                                    response.text[:300])
            assert response.headers["Content-Type"] == "application/problem+json"
        assert cases[0][0].headers["Accept-Patch"] == f"{MERGE_PATCH}, application/json"
        assert fingerprint(content_db) == before and no_pending_commit(content_db)
        accepted = send("PATCH", DOC, b'{"answer": "Changed through a real server."}')
        assert accepted.status_code == 200 and accepted.json()["document"]["answer"].startswith("Changed")


# --- files on the command line ------------------------------------------------------------------

def test_validate_names_the_file_of_deep_or_out_of_range_documents(kb_folder):
    faqs = kb_folder / "faqs"
    document = json.loads((faqs / "drug-q1.json").read_text())
    text = json.dumps(dict(document, answer="PLACE"))
    (faqs / "drug-q1.json").write_text(text.replace('"PLACE"', "[" * 5000 + "]" * 5000))
    (faqs / "drug-q2.json").write_text(json.dumps(dict(document, id="drug-q2")).replace('"position": 1',
                                                                                       '"position": ' + "9" * 5000))
    result = subprocess.run([sys.executable, "-m", "api.cli", "validate", str(kb_folder)], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    lines = result.stdout.splitlines()
    assert f"{faqs / 'drug-q1.json'}: is nested more than 64 levels deep" in lines
    assert any(line.startswith(f"{faqs / 'drug-q2.json'}: position: Numbers must be finite") for line in lines)


@pytest.mark.parametrize("publish_at", ["9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+23:59"])
def test_a_schedule_with_no_time_in_utc_is_a_422(api, content_db, publish_at):
    """The workflow keeps schedules in UTC; an offset that pushes a time past year 9999 or
    before year 1 used to be an OverflowError."""
    assert api.send("PATCH", DOC, b'{"answer": "Changed."}', MERGE_PATCH).status_code == 200
    assert api.send("POST", f"{DOC}/transitions", b'{"action": "submit"}').status_code == 200
    reviewer = {"Authorization": f"Bearer {KeyStore(content_db).create('reviewer', 'rita')[1]}"}
    assert api.send("POST", f"{DOC}/transitions", b'{"action": "approve"}', headers=reviewer).status_code == 200
    before = fingerprint(content_db)
    response = api.send("POST", f"{DOC}/transitions", json.dumps({"action": "publish", "publish_at": publish_at}).encode())
    assert_refused_unchanged(response, 422, content_db, before)
    assert list(response.get_json()["errors"]) == ["publish_at"]
