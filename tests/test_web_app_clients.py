"""Public reads as a web app and the caches in front of it see them, against a real `medkb serve`:
Chromium on a page from another origin calling fetch(), and the headers shared caches obey. A
browser refuses any response whose CORS headers it cannot read as one value, so revalidations
(304) and errors must carry them exactly once."""
import http.client
import subprocess
import sys

import pytest
import requests

from servers import free_port, serving

FAQ = "/v1/faqs/hemgenix-how-does-it-work"


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    from servers import medkb

    db = tmp_path_factory.mktemp("cors") / "db"
    assert medkb(db, "import", "content").returncode == 0
    with serving(db) as base:
        yield base


@pytest.fixture(scope="module")
def other_origin(tmp_path_factory):
    """A page served from another origin (another port), as a web app's own site would be."""
    folder = tmp_path_factory.mktemp("site")
    (folder / "index.html").write_text("<!doctype html><title>A web app</title>")
    port = free_port()
    site = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "-d", str(folder)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        site.terminate()
        site.wait(timeout=10)


def allow_origin_headers(base, path, headers):
    """Every Access-Control-Allow-Origin line of one answer, as sent (requests would join them)."""
    host, port = base.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        connection.request("GET", path, headers={"Origin": "https://app.example", **headers})
        response = connection.getresponse()
        response.read()
        return response.status, [value for name, value in response.getheaders()
                                 if name.lower() == "access-control-allow-origin"]
    finally:
        connection.close()


def test_public_answers_carry_one_allow_origin_whatever_their_status(api):
    etag = requests.get(api + FAQ).headers["ETag"]
    assert allow_origin_headers(api, FAQ, {}) == (200, ["*"])
    assert allow_origin_headers(api, FAQ, {"If-None-Match": etag, "Accept-Encoding": "gzip"}) == (304, ["*"])
    assert allow_origin_headers(api, "/v1/faqs/no-such-faq", {}) == (404, ["*"])
    assert allow_origin_headers(api, "/v1/products?page=abc", {})[1] == ["*"]


def test_a_web_app_on_another_origin_revalidates_and_reads_errors(api, other_origin, browser):
    page = browser.new_page()
    try:
        page.goto(other_origin)
        seen = page.evaluate("""async (base) => {
            const first = await fetch(base + "/v1/faqs/hemgenix-how-does-it-work", {cache: "no-store"});
            const etag = first.headers.get("ETag");
            const answer = (await first.json()).answer;
            const conditional = await fetch(base + "/v1/faqs/hemgenix-how-does-it-work",
                                            {headers: {"If-None-Match": etag}, cache: "no-store"});
            // The browser's own cache: filled once, then revalidated with the If-None-Match it sends.
            await (await fetch(base + "/v1/faqs/hemgenix-what-is-the-padua-variant")).text();
            const revalidated = await fetch(base + "/v1/faqs/hemgenix-what-is-the-padua-variant", {cache: "no-cache"});
            const missing = await fetch(base + "/v1/faqs/no-such-faq");
            return {etag: etag, answer: answer, conditional: conditional.status,
                    revalidated: [revalidated.status, (await revalidated.json()).id],
                    missing: [missing.status, (await missing.json()).status]};
        }""", api)
    finally:
        page.close()
    assert seen["etag"] and seen["answer"]
    assert seen["conditional"] == 304
    assert seen["revalidated"] == [200, "hemgenix-what-is-the-padua-variant"]
    assert seen["missing"] == [404, 404]


def test_public_errors_are_never_stored_by_a_cache(api):
    """A cache may keep a 404 unless told otherwise, and would then hide a document published a
    moment later; a 429 or a 422 is about this request alone."""
    for path in ("/v1/faqs/not-published-yet", "/v1/products?page=abc", "/v1/feed?since=999999"):
        response = requests.get(api + path)
        assert response.status_code >= 400 and response.headers["Cache-Control"] == "no-store", path
    assert requests.get(api + FAQ).headers["Cache-Control"].startswith("public")


def test_the_api_description_is_tagged_and_a_client_holding_it_gets_304(api):
    first = requests.get(api + "/openapi.json")
    assert first.status_code == 200 and first.json()["info"]["title"] == "medkb"
    assert first.headers["Content-Encoding"] in ("gzip", "br") and first.headers["Cache-Control"] == "no-cache"
    again = requests.get(api + "/openapi.json", headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304 and again.headers["ETag"] == first.headers["ETag"] and not again.content
    plain = requests.get(api + "/openapi.json", headers={"Accept-Encoding": "identity",
                                                         "If-None-Match": first.headers["ETag"]})
    assert plain.status_code == 304, "any encoding's tag names the same description"
    assert requests.get(api + "/openapi.json", headers={"If-None-Match": '"another"'}).status_code == 200


def test_with_listed_origins_every_public_answer_varies_by_origin(tmp_path):
    """With MEDKB_CORS_ORIGINS listing sites, an answer to an unlisted origin carries no
    Access-Control-Allow-Origin: a shared cache must not hand that answer to a listed site."""
    from servers import medkb

    db = tmp_path / "db"
    assert medkb(db, "import", "content").returncode == 0
    with serving(db, workers=1, env={"MEDKB_CORS_ORIGINS": "https://site.example"}) as base:
        for origin, allowed in (("https://site.example", ["https://site.example"]), ("https://other.example", [])):
            for path, status in ((FAQ, 200), ("/v1/faqs/no-such-faq", 404)):
                response = requests.get(base + path, headers={"Origin": origin})
                assert response.status_code == status
                assert response.raw.headers.getlist("Access-Control-Allow-Origin") == allowed, (origin, path)
                assert "origin" in {name.strip().lower() for name in response.headers["Vary"].split(",")}, path


@pytest.mark.parametrize("path", [FAQ, "/v1/faqs", "/v1/bundle", "/v1/feed"])
@pytest.mark.parametrize("encoding", ["gzip", "identity"])
def test_if_none_match_any_is_304_with_the_tag_the_200_carries(api, path, encoding):
    """RFC 9110 §13.1.2: "*" matches any current representation."""
    whole = requests.get(api + path, headers={"Accept-Encoding": encoding})
    held = requests.get(api + path, headers={"Accept-Encoding": encoding, "If-None-Match": "*"})
    assert (held.status_code, held.headers["ETag"], held.content) == (304, whole.headers["ETag"], b"")
    assert held.headers["Cache-Control"] == whole.headers["Cache-Control"]
    assert requests.get(api + "/v1/faqs/no-such-faq", headers={"If-None-Match": "*"}).status_code == 404
