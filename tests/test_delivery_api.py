"""The public delivery API over the shipped content: every endpoint and every HTTP convention."""
import gzip
import json

import brotli
import pytest

from api.store.store import Store
from conftest import CONTENT_COUNT

# (url, path template in openapi.yaml)
ENDPOINTS = [
    ("/v1/products", "/v1/products"),
    ("/v1/products?condition=hemophilia-b&type=recombinant_factor", "/v1/products"),
    ("/v1/products/hemgenix", "/v1/products/{id}"),
    ("/v1/products/hemgenix?include=mechanism,faqs,related,conditions", "/v1/products/{id}"),
    ("/v1/products/hemgenix/mechanism", "/v1/products/{id}/mechanism"),
    ("/v1/products/hemgenix/faqs", "/v1/products/{id}/faqs"),
    ("/v1/products/hemgenix/related", "/v1/products/{id}/related"),
    ("/v1/conditions", "/v1/conditions"),
    ("/v1/conditions/hemophilia-b", "/v1/conditions/{id}"),
    ("/v1/articles", "/v1/articles"),
    ("/v1/articles/how-does-hemgenix-work", "/v1/articles/{id}"),
    ("/v1/articles/how-does-hemgenix-work/jsonld", "/v1/articles/{id}/jsonld"),
    ("/v1/faqs", "/v1/faqs"),
    ("/v1/faqs?product=hemgenix", "/v1/faqs"),
    ("/v1/faqs/hemgenix-what-is-the-padua-variant", "/v1/faqs/{id}"),
    ("/v1/sources", "/v1/sources"),
    ("/v1/sources/medfinder-how-does-hemgenix-work", "/v1/sources/{id}"),
    ("/v1/people", "/v1/people"),
    ("/v1/people/peter-daggett", "/v1/people/{id}"),
    ("/v1/search?q=hemgenix", "/v1/search"),
    ("/v1/feed", "/v1/feed"),
    ("/v1/feed?since=3&limit=2", "/v1/feed"),
]


@pytest.mark.parametrize("url,path", ENDPOINTS, ids=[e[0] for e in ENDPOINTS])
def test_every_endpoint_answers_as_documented(client, conforms, url, path):
    response = client.get(url)
    assert response.status_code == 200, response.get_data(as_text=True)
    conforms(response, path)


@pytest.mark.parametrize("url,path", ENDPOINTS, ids=[e[0] for e in ENDPOINTS])
def test_every_get_has_an_etag_and_revalidates_to_304(client, conforms, url, path):
    first = client.get(url)
    etag = first.headers["ETag"]
    again = client.get(url, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.data == b""
    assert again.headers["ETag"] == etag
    conforms(again, path)
    assert client.get(url, headers={"If-None-Match": '"something-else"'}).status_code == 200


@pytest.mark.parametrize("url,path", ENDPOINTS, ids=[e[0] for e in ENDPOINTS])
def test_public_reads_are_cacheable_and_vary_correctly(client, url, path):
    response = client.get(url)
    assert response.headers["Cache-Control"] == "public, max-age=60, stale-while-revalidate=600"
    vary = {v.strip() for v in response.headers["Vary"].split(",")}
    assert {"Accept-Encoding", "Accept-Language"} <= vary


def test_documents_are_delivered_whole_and_exactly(client, content_db):
    body = client.get("/v1/products/hemgenix").get_json()
    assert body == Store(content_db).published("product", "hemgenix").content
    assert body["non_proprietary_name"] == "etranacogene dezaparvovec-drlb"


def test_products_filter_by_condition_class_and_type(client):
    def ids(url):
        return [p["id"] for p in client.get(url).get_json()]

    assert ids("/v1/products") == ["alhemo", "alprolix", "benefix", "hemgenix", "idelvion"]
    assert ids("/v1/products?class=B02BD04") == ["alprolix", "benefix", "idelvion"]
    assert ids("/v1/products?class=B02BD") == ["alprolix", "benefix", "hemgenix", "idelvion"]
    assert ids("/v1/products?type=gene_therapy") == ["hemgenix"]
    assert ids("/v1/products?condition=hemophilia-b&type=monoclonal_antibody") == ["alhemo"]
    assert ids("/v1/products?condition=nothing-like-this") == []


def test_product_subresources(client):
    mechanism = client.get("/v1/products/hemgenix/mechanism").get_json()
    assert [s["position"] for s in mechanism["steps"]] == [1, 2, 3, 4]
    faqs = client.get("/v1/products/hemgenix/faqs").get_json()
    assert [f["position"] for f in faqs] == [1, 2, 3, 4]
    related = client.get("/v1/products/hemgenix/related").get_json()
    looked_for = sorted(r["product"]["id"] for r in related if r["type"] == "also_looked_for")
    assert looked_for == ["alhemo", "alprolix", "benefix", "idelvion"]
    assert client.get("/v1/products/alhemo/mechanism").status_code == 404


def test_related_products_paginate_and_one_default_page_holds_them_all(client):
    """Clients from before the list paginated read one answer as every relation."""
    whole = client.get("/v1/products/hemgenix/related")
    assert json.loads(whole.headers["X-Pagination"])["total"] == len(whole.get_json()) == 12
    pages = [client.get(f"/v1/products/hemgenix/related?page={n}&page_size=5") for n in (1, 2, 3)]
    assert [json.loads(p.headers["X-Pagination"])["total_pages"] for p in pages] == [3, 3, 3]
    assert [r for p in pages for r in p.get_json()] == whole.get_json()
    assert len({p.headers["ETag"] for p in pages}) == 3
    assert 'rel="next"' in pages[0].headers["Link"]


# --- errors -----------------------------------------------------------------

@pytest.mark.parametrize("url,path", [
    ("/v1/products/no-such-thing", "/v1/products/{id}"),
    ("/v1/products/no-such-thing/mechanism", "/v1/products/{id}/mechanism"),
    ("/v1/products/no-such-thing/faqs", "/v1/products/{id}/faqs"),
    ("/v1/products/no-such-thing/related", "/v1/products/{id}/related"),
    ("/v1/articles/no-such-thing/jsonld", "/v1/articles/{id}/jsonld"),
    ("/v1/faqs/Not%20A%20Slug", "/v1/faqs/{id}"),
    ("/v1/people/hemgenix", "/v1/people/{id}"),
])
def test_unknown_documents_are_404_problems(client, conforms, url, path):
    response = client.get(url)
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"
    body = response.get_json()
    assert body["status"] == 404 and body["title"] == "Not Found" and body["type"] == "about:blank"
    conforms(response, path)


def test_unknown_path_and_wrong_method_are_problems(client):
    missing = client.get("/v1/nothing-here")
    assert missing.status_code == 404 and missing.mimetype == "application/problem+json"
    wrong = client.delete("/v1/products/hemgenix")
    assert wrong.status_code == 405 and wrong.mimetype == "application/problem+json"
    assert wrong.get_json()["status"] == 405
    assert "GET" in wrong.headers["Allow"]


BAD_QUERIES = [
    ("/v1/products?page=0", "page"),
    ("/v1/products?page=-3", "page"),
    ("/v1/products?page=abc", "page"),
    ("/v1/products?page_size=0", "page_size"),
    ("/v1/products?page_size=101", "page_size"),
    ("/v1/products?page_size=99999999999999999999", "page_size"),
    ("/v1/products?fields=name,colour,flavour", "fields"),
    ("/v1/products?fields=,", "fields"),
    ("/v1/products/hemgenix?include=mechanism,manufacturer", "include"),
    ("/v1/faqs?include=related", "include"),
    ("/v1/products?type=pill", "type"),
    ("/v1/products?locale=english", "locale"),
    ("/v1/search", "q"),
    ("/v1/search?q=", "q"),
    ("/v1/search?q=%20%20%20", "q"),
    ("/v1/search?q=" + "a" * 201, "q"),
    ("/v1/search?q=hemgenix&limit=0", "limit"),
    ("/v1/search?q=hemgenix&type=drug", "type"),
    ("/v1/feed?since=abc", "since"),
    ("/v1/feed?since=-1", "since"),
    ("/v1/feed?limit=501", "limit"),
]


@pytest.mark.parametrize("url,field", BAD_QUERIES, ids=[q[0] for q in BAD_QUERIES])
def test_bad_query_is_a_422_problem_naming_the_field(client, url, field):
    response = client.get(url)
    assert response.status_code == 422, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    assert field in response.get_json()["errors"]


def test_unknown_field_names_are_all_named(client):
    message = client.get("/v1/products?fields=name,colour,flavour").get_json()["errors"]["fields"][0]
    assert "colour, flavour" in message and "Allowed:" in message


# --- pagination, fields, include ---------------------------------------------

def test_pagination_metadata_and_bounds(client):
    response = client.get("/v1/faqs?page_size=3&page=2")
    assert [f["position"] for f in response.get_json()] == [4]
    meta = json.loads(response.headers["X-Pagination"])
    assert meta == {"total": 4, "total_pages": 2, "first_page": 1, "last_page": 2, "page": 2, "previous_page": 1}
    beyond = client.get("/v1/faqs?page=40")
    assert beyond.status_code == 200 and beyond.get_json() == []
    assert client.get("/v1/faqs?page_size=3&page=1").headers["ETag"] != response.headers["ETag"]


def test_sparse_fieldsets_keep_type_and_id(client):
    assert client.get("/v1/products/hemgenix?fields=name,route").get_json() == {
        "type": "product", "id": "hemgenix", "name": "Hemgenix", "route": "intravenous"}
    listed = client.get("/v1/products?fields=non_proprietary_name").get_json()
    assert {tuple(sorted(p)) for p in listed} == {("id", "non_proprietary_name", "type")}


def test_include_embeds_published_related_documents(client):
    body = client.get("/v1/products/hemgenix?include=mechanism,faqs,related&fields=name").get_json()
    assert body["included"]["mechanism"]["id"] == "hemgenix-mechanism"
    assert [f["position"] for f in body["included"]["faqs"]] == [1, 2, 3, 4]
    assert {r["product"]["id"] for r in body["included"]["related"]} == {"alprolix", "idelvion", "alhemo", "benefix"}
    article = client.get("/v1/articles/how-does-hemgenix-work?include=author,faqs,about").get_json()
    assert article["included"]["author"]["name"] == "Peter Daggett"
    assert article["included"]["about"]["id"] == "hemgenix"


# --- compression ---------------------------------------------------------------

@pytest.mark.parametrize("encoding,decompress", [("gzip", gzip.decompress), ("br", brotli.decompress)])
def test_compressed_bodies_decode_to_the_same_document(client, encoding, decompress):
    plain = client.get("/v1/products/hemgenix")
    packed = client.get("/v1/products/hemgenix", headers={"Accept-Encoding": encoding})
    assert packed.headers["Content-Encoding"] == encoding
    assert decompress(packed.data) == plain.data
    assert len(packed.data) < len(plain.data) / 2
    # Each encoding is its own representation with its own strong tag; revalidating with it works.
    assert packed.headers["ETag"] == plain.headers["ETag"][:-1] + f'-{encoding}"'
    again = client.get("/v1/products/hemgenix", headers={"Accept-Encoding": encoding,
                                                          "If-None-Match": packed.headers["ETag"]})
    assert again.status_code == 304 and again.headers["ETag"] == packed.headers["ETag"]
    assert client.get("/v1/products/hemgenix", headers={"Accept-Encoding": encoding,
                                                         "If-None-Match": packed.headers["ETag"]}).status_code == 304


def test_no_compression_when_not_accepted_or_not_worth_it(client):
    assert "Content-Encoding" not in client.get("/v1/products/hemgenix", headers={"Accept-Encoding": "identity"}).headers
    small = client.get("/v1/products/hemgenix?fields=name", headers={"Accept-Encoding": "gzip"})
    assert "Content-Encoding" not in small.headers


# --- locale ----------------------------------------------------------------------

@pytest.fixture
def translated_client(tmp_path, documents):
    from api.app import create_app
    from conftest import import_documents

    faq = next(d for d in documents if d["id"] == "drug-q1")
    faq["translations"] = {"es-US": {"question": "¿P1?", "answer": "R1."}}
    db = import_documents(tmp_path / "db", documents)
    return create_app({"MEDKB_DB": str(db)}).test_client()


@pytest.mark.parametrize("query,headers,language,question", [
    ("", {}, "en-US", "Q1?"),
    ("?locale=es-US", {}, "es-US", "¿P1?"),
    ("?locale=es", {}, "es-US", "¿P1?"),
    ("?locale=es-MX", {}, "es-US", "¿P1?"),
    ("?locale=fr-FR", {}, "en-US", "Q1?"),
    ("", {"Accept-Language": "es-MX,es;q=0.9,en;q=0.5"}, "es-US", "¿P1?"),
    ("", {"Accept-Language": "de, fr;q=0.8"}, "en-US", "Q1?"),
    ("?locale=en-US", {"Accept-Language": "es"}, "en-US", "Q1?"),
])
def test_locale_picks_a_translation_or_falls_back(translated_client, query, headers, language, question):
    response = translated_client.get(f"/v1/faqs/drug-q1{query}", headers=headers)
    body = response.get_json()
    assert response.headers["Content-Language"] == language
    assert body["question"] == question and body["locale"] == language
    assert "translations" not in body


def test_each_locale_has_its_own_etag(translated_client):
    english = translated_client.get("/v1/faqs/drug-q1").headers["ETag"]
    spanish = translated_client.get("/v1/faqs/drug-q1?locale=es").headers["ETag"]
    assert english != spanish
    assert translated_client.get("/v1/faqs/drug-q1?locale=es", headers={"If-None-Match": english}).status_code == 200


# --- search ------------------------------------------------------------------------

@pytest.mark.parametrize("query,expected", [
    ("hemgenix", ("product", "hemgenix")),
    ("hemgenx", ("product", "hemgenix")),
    ("etranacogene", ("product", "hemgenix")),
    ("nonacog", ("product", "benefix")),
    ("concizumab", ("product", "alhemo")),
])
def test_search_finds_products_by_name_typo_and_non_proprietary_name(client, query, expected):
    results = client.get(f"/v1/search?q={query}").get_json()["results"]
    assert (results[0]["type"], results[0]["id"]) == expected


@pytest.mark.parametrize("query,type_,id_", [
    ("corticosteroids", "mechanism_section", "hemgenix-mechanism"),
    ("episome", "mechanism_step", "hemgenix-mechanism"),
    ("episome", "faq", "hemgenix-does-it-change-my-dna"),
])
def test_search_finds_words_inside_bodies_and_answers(client, query, type_, id_):
    results = client.get(f"/v1/search?q={query}").get_json()["results"]
    match = [r for r in results if r["type"] == type_ and r["id"] == id_]
    assert match, results
    assert f"<mark>{query}</mark>" in match[0]["snippet"].lower()


def test_search_type_filter_and_limit(client):
    results = client.get("/v1/search?q=factor&type=faq&limit=2").get_json()["results"]
    assert 0 < len(results) <= 2 and {r["type"] for r in results} == {"faq"}


# --- JSON-LD ---------------------------------------------------------------------------

def test_jsonld_describes_the_article_for_search_engines(client):
    response = client.get("/v1/articles/how-does-hemgenix-work/jsonld")
    assert response.mimetype == "application/ld+json"
    page = response.get_json()
    drug, condition = page["about"]
    assert page["@type"] == "MedicalWebPage" and drug["@type"] == "Drug" and condition["@type"] == "MedicalCondition"
    assert drug["nonProprietaryName"] == "etranacogene dezaparvovec-drlb"
    questions = page["mainEntity"]["mainEntity"]
    assert page["mainEntity"]["@type"] == "FAQPage" and len(questions) == 4
    assert all(q["@type"] == "Question" and q["acceptedAnswer"]["@type"] == "Answer" for q in questions)
    steps = page["hasPart"][0]["mainEntity"]
    assert steps["@type"] == "ItemList" and [i["position"] for i in steps["itemListElement"]] == [1, 2, 3, 4]
    assert page["author"]["name"] == "Peter Daggett" and page["dateModified"] >= "2026-04-02"
    # The page's web address (site base + slug), not the API endpoint that serves this JSON.
    assert page["url"] == "http://127.0.0.1:8000/how-does-hemgenix-work", "the configured base URL, not the Host"


# --- operations and docs -------------------------------------------------------------

def test_health_and_readiness(client):
    assert client.get("/healthz").get_json() == {"status": "ok"}
    ready = client.get("/readyz").get_json()
    assert ready == {"status": "ready", "documents": CONTENT_COUNT, "change": CONTENT_COUNT}


def test_docs_page_works_offline(client):
    import re

    page = client.get("/docs")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert assets and all(a.startswith("/docs/assets/") for a in assets if a != "/docs/init.js"), assets
    assert "<script>" not in html, "the start-up script is a file, so the CSP can forbid inline scripts"
    assert '"validatorUrl": null' in client.get("/docs/init.js").get_data(as_text=True)
    for asset in assets:
        with client.get(asset) as served:
            assert served.status_code == 200 and len(served.data) > (100 if asset == "/docs/init.js" else 1000)
            assert b"https://unpkg.com" not in served.data and b"cdn.jsdelivr" not in served.data
    assert client.get("/openapi.json").get_json()["info"]["title"] == "medkb"


def test_every_include_follows_a_reference_one_way_or_the_other():
    """INCLUDES and REFERENCES describe the same relations: an include name is a reference field
    of its type with the same target, or a field of the target type that points back."""
    from schemas import INCLUDES, REFERENCES

    for type_name, names in INCLUDES.items():
        forward = {path.split("[")[0].split(".")[0]: target for path, target in REFERENCES[type_name]}
        for name, (target, _) in names.items():
            backward = {referrer for referrer, paths in REFERENCES.items()
                        for _, pointed in paths if referrer == target and pointed == type_name}
            assert forward.get(name) == target or backward, f"{type_name} include={name}"
