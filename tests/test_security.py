"""Security headers, CORS configuration and non-HTML answers, through the Flask test client."""
import pytest

from api.services.documents import Documents
from api.app import create_app


def make_client(content_db, **config):
    return create_app({"MEDKB_DB": str(content_db), "TESTING": True, **config}).test_client()


PREFLIGHT = {"Origin": "https://site.example", "Access-Control-Request-Method": "GET"}


def test_configured_origins_are_the_only_ones_allowed(content_db):
    client = make_client(content_db, MEDKB_CORS_ORIGINS="https://site.example, https://app.example")
    allowed = client.get("/v1/products", headers={"Origin": "https://app.example"})
    assert allowed.headers["Access-Control-Allow-Origin"] == "https://app.example"
    assert "Origin" in allowed.headers["Vary"]
    refused = client.get("/v1/products", headers={"Origin": "https://other.example"})
    assert "Access-Control-Allow-Origin" not in refused.headers and refused.status_code == 200


def test_editorial_answers_cors_only_for_origins_configured_for_it(content_db):
    closed = make_client(content_db).options("/v1/editorial/audit", headers=PREFLIGHT)
    assert "Access-Control-Allow-Origin" not in closed.headers
    opened = make_client(content_db, MEDKB_CORS_EDITORIAL_ORIGINS="https://site.example").options(
        "/v1/editorial/audit", headers=PREFLIGHT)
    assert opened.headers["Access-Control-Allow-Origin"] == "https://site.example"


def test_public_cors_never_allows_writes(content_db):
    preflight = make_client(content_db).options("/v1/products", headers={**PREFLIGHT,
                                                                          "Access-Control-Request-Method": "POST"})
    assert "POST" not in preflight.headers.get("Access-Control-Allow-Methods", "")


@pytest.mark.parametrize("path", ["/v1/products", "/healthz", "/v1/editorial/documents", "/docs"])
def test_options_answers_no_content_rather_than_html(client, path):
    response = client.options(path)
    assert response.status_code == 204 and response.data == b"" and "Content-Type" not in response.headers
    assert "GET" in response.headers["Allow"]


def test_merged_slashes_redirect_relatively_with_a_problem_body(client):
    response = client.get("/v1//products", headers={"Host": "evil.example"})
    assert response.status_code == 308 and response.headers["Location"] == "/v1/products"
    assert response.mimetype == "application/problem+json" and response.get_json()["status"] == 308


def test_the_public_base_url_is_configuration(content_db):
    client = make_client(content_db, PUBLIC_BASE_URL="https://medkb.example/")
    page = client.get("/v1/articles/how-does-hemgenix-work/jsonld", headers={"Host": "evil.example"}).get_json()
    assert page["url"] == "https://medkb.example/how-does-hemgenix-work"  # the page on the site, not the API


def test_public_reads_over_the_limit_get_429_problem_with_retry_after(content_db):
    client = make_client(content_db, MEDKB_RATE_LIMIT_PUBLIC="3 per minute")
    assert [client.get("/v1/products").status_code for _ in range(3)] == [200, 200, 200]
    refused = client.get("/v1/faqs")
    assert refused.status_code == 429 and refused.mimetype == "application/problem+json"
    assert refused.get_json()["status"] == 429 and 1 <= int(refused.headers["Retry-After"]) <= 60
    assert client.get("/healthz").status_code == 200, "operations are not counted"
    other = client.get("/v1/products", environ_overrides={"REMOTE_ADDR": "192.0.2.7"})
    assert other.status_code == 200, "each address has its own allowance"


def test_editorial_limits_count_per_key(content_db):
    from api.store.keys import KeyStore

    keys = KeyStore(content_db)
    ann, bob = (keys.create("author", name)[1] for name in ("ann", "bob"))
    client = make_client(content_db, MEDKB_RATE_LIMIT_EDITORIAL="2 per minute")
    as_ann = {"Authorization": f"Bearer {ann}"}
    assert [client.get("/v1/editorial/audit", headers=as_ann).status_code for _ in range(2)] == [200, 200]
    assert client.get("/v1/preview/products/hemgenix", headers=as_ann).status_code == 429
    assert client.get("/v1/editorial/audit", headers={"Authorization": f"Bearer {bob}"}).status_code == 200
    assert client.get("/v1/products").status_code == 200, "public reads have their own limit"


def test_the_sqlite_storage_counts_across_connections(tmp_path):
    from limits.storage import storage_from_string

    uri = f"medkb-sqlite://{tmp_path / 'limits.sqlite'}"
    first, second = storage_from_string(uri), storage_from_string(uri)
    assert [first.incr("k", 60), second.incr("k", 60), first.incr("k", 60)] == [1, 2, 3]
    assert second.get("k") == 3 and time_left(second, "k") <= 60
    assert first.incr("short", 0) == 1 and second.incr("short", 60) == 1, "an expired window starts again"
    second.clear("k")
    assert first.get("k") == 0


def time_left(storage, key):
    import time

    return storage.get_expiry(key) - time.time()


def test_metrics_need_an_admin_key_unless_configured_public(content_db):
    from api.store.keys import KeyStore

    keys = KeyStore(content_db)
    admin, author = keys.create("admin", "ops")[1], keys.create("author", "ann")[1]
    client = make_client(content_db)
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": f"Bearer {author}"}).status_code == 403
    scraped = client.get("/metrics", headers={"Authorization": f"Bearer {admin}"})
    assert scraped.status_code == 200 and scraped.mimetype == "text/plain"
    assert b"medkb_http_requests_total" in scraped.data
    assert make_client(content_db, MEDKB_METRICS_PUBLIC=True).get("/metrics").status_code == 200


def test_store_commits_are_timed(content_db):
    app = create_app({"MEDKB_DB": str(content_db), "TESTING": True, "MEDKB_METRICS_PUBLIC": True})
    store = app.extensions["medkb"].store
    before = app.test_client().get("/metrics").get_data(as_text=True)
    head = store.head("faq", "hemgenix-how-does-it-work")
    Documents(store).write(dict(head.content, question="Timed?"), expected_revision=head.revision, actor="test")
    after = app.test_client().get("/metrics").get_data(as_text=True)

    def commits(text):
        line = next((line for line in text.splitlines()
                     if line.startswith('medkb_store_commit_duration_seconds_count{kind="revision"}')), " 0")
        return float(line.rsplit(" ", 1)[1])

    assert commits(after) == commits(before) + 1


@pytest.mark.parametrize("name, value", [
    ("MEDKB_RATE_LIMIT_PUBLIC", "lots"),
    ("MEDKB_RATE_LIMIT_EDITORIAL", "10 per fortnight"),
    ("MEDKB_PUBLIC_BASE_URL", "medkb.example.org"),
    ("MEDKB_RESPONSE_CACHE_BYTES", "16 MiB"),
])
def test_serve_refuses_bad_settings_in_one_line(content_db, name, value):
    import os
    import subprocess
    import sys

    from conftest import ROOT

    result = subprocess.run([sys.executable, "-m", "api.cli", "serve", "--port", "9"], cwd=ROOT, capture_output=True,
                            text=True, timeout=60,
                            env={**os.environ, "PYTHONPATH": str(ROOT), "MEDKB_DB": str(content_db), name: value})
    assert result.returncode == 1 and result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith(f"{name}: {value!r}") and "Traceback" not in result.stderr


def test_serve_on_a_busy_port_says_so_in_one_line(content_db):
    import os
    import socket
    import subprocess
    import sys

    from conftest import ROOT

    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        result = subprocess.run([sys.executable, "-m", "api.cli", "serve", "--port", str(port)], cwd=ROOT, text=True,
                                capture_output=True, timeout=60,
                                env={**os.environ, "PYTHONPATH": str(ROOT), "MEDKB_DB": str(content_db)})
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr == f"medkb serve: cannot listen on 127.0.0.1:{port}: Address already in use\n"


def test_html_pages_other_than_the_docs_get_a_page_csp(content_db):
    from flask import Response

    app = create_app({"MEDKB_DB": str(content_db), "TESTING": True})
    app.add_url_rule("/a/page", "page", lambda: Response("<p>hi</p>", mimetype="text/html"))
    csp = app.test_client().get("/a/page").headers["Content-Security-Policy"]
    assert "script-src" not in csp and "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp
    assert "default-src 'none'" in app.test_client().get("/v1/products").headers["Content-Security-Policy"]
