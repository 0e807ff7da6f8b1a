"""Security headers, CORS configuration and non-HTML answers, through the Flask test client."""
import pytest

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
    assert page["url"] == "https://medkb.example/v1/articles/how-does-hemgenix-work"
