"""A published document shows only published documents: publishing one that refers to an
unpublished document is refused (409, listing them), and so is withdrawing a document that
published documents refer to (409, listing the referrers)."""
import json

from conftest import CONTENT
# The editorial fixtures (a test client with keys for every role) are test_editorial's own.
from test_editorial import auth, client, editorial_app, keys, step  # noqa: F401

PRODUCT = "/v1/editorial/documents/product/testdrug"
FAQ = "/v1/editorial/documents/faq/testdrug-what-is-it"


def new_product():
    product = json.loads((CONTENT / "products" / "benefix.json").read_text())
    product.update(id="testdrug", related=[])
    product.pop("revision", None)
    return product


def new_faq():
    faq = json.loads((CONTENT / "faqs" / "hemgenix-how-does-it-work.json").read_text())
    faq.update(id="testdrug-what-is-it", product="testdrug", position=1)
    faq.pop("revision", None)
    return faq


def approved(client, keys, path, document):
    created = client.post("/v1/editorial/documents", json=document, headers=auth(keys, "ann"))
    assert created.status_code == 201, created.get_json()
    etag = created.headers["ETag"]
    for who, action in (("ann", "submit"), ("rita", "approve")):
        response = step(client, keys, who, action, etag, path=path)
        assert response.status_code == 200, response.get_json()
    return etag


def test_publishing_a_document_that_refers_to_a_draft_is_refused(client, keys):
    product_etag = approved(client, keys, PRODUCT, new_product())
    faq_etag = approved(client, keys, FAQ, new_faq())

    refused = step(client, keys, "paul", "publish", faq_etag, path=FAQ)
    assert refused.status_code == 409 and refused.mimetype == "application/problem+json"
    assert refused.get_json()["unpublished"] == ["product/testdrug"]
    assert client.get("/v1/faqs/testdrug-what-is-it").status_code == 404
    assert "testdrug" not in client.get("/v1/feed").get_data(as_text=True)

    assert step(client, keys, "paul", "publish", product_etag, path=PRODUCT).status_code == 200
    assert step(client, keys, "paul", "publish", faq_etag, path=FAQ).status_code == 200
    assert client.get("/v1/faqs/testdrug-what-is-it").status_code == 200


def test_withdrawing_a_document_that_published_documents_show_is_refused(client, keys):
    product_etag = approved(client, keys, PRODUCT, new_product())
    faq_etag = approved(client, keys, FAQ, new_faq())
    step(client, keys, "paul", "publish", product_etag, path=PRODUCT)
    step(client, keys, "paul", "publish", faq_etag, path=FAQ)

    for action in ("unpublish", "archive"):
        refused = step(client, keys, "paul", action, product_etag, path=PRODUCT)
        assert refused.status_code == 409, refused.get_json()
        assert refused.get_json()["referrers"] == ["faq/testdrug-what-is-it"]
    assert client.get("/v1/products/testdrug").status_code == 200

    assert step(client, keys, "paul", "unpublish", faq_etag, path=FAQ).status_code == 200
    assert step(client, keys, "paul", "unpublish", product_etag, path=PRODUCT).status_code == 200
    assert client.get("/v1/products/testdrug").status_code == 404


def test_shipped_documents_that_others_show_cannot_be_withdrawn(client, keys):
    faq = "/v1/editorial/documents/faq/hemgenix-how-does-it-work"
    etag = client.get(faq, headers=auth(keys, "paul")).headers["ETag"]
    refused = step(client, keys, "paul", "unpublish", etag, path=faq)
    assert refused.status_code == 409
    assert refused.get_json()["referrers"] == ["article/how-does-hemgenix-work"]
    assert client.get("/v1/faqs/hemgenix-how-does-it-work").status_code == 200
