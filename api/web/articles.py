import orjson
from flask import current_app
from flask.views import MethodView

from api.services.delivery import body_tag
from api.services.jsonld import article_jsonld
from api.web.caching import send_json
from api.web.context import delivery
from api.web.documents import document_blueprint

blp = document_blueprint("article", "articles", "Explainer pages, with their mechanism, FAQs and sources.")


@blp.route("/<slug:id>/jsonld")
class ArticleJsonLd(MethodView):
    @blp.etag
    @blp.response(200, {"type": "object"}, content_type="application/ld+json",
                  description="schema.org MedicalWebPage about a Drug, with its FAQPage and mechanism ItemList")
    @blp.problem(404, "no published article")
    @blp.doc(operationId="getArticleJsonLd")
    def get(self, id):
        """The article as schema.org JSON-LD, for search engines

        A MedicalWebPage about the product, with its FAQPage and mechanism, ready to embed in a
        `<script type="application/ld+json">` tag.
        """
        service = delivery()
        entry = service.get("article", id)

        def lookup(type_name, id_):
            found = service.model.get(type_name, id_)
            return found.document if found else None

        base_url = current_app.config["PUBLIC_BASE_URL"].rstrip("/")  # configured, never the request's Host
        body = article_jsonld(entry.document, lookup, base_url)
        # The tag is the body's own hash: identical bytes, identical tag, on every worker.
        body = orjson.dumps(body)
        blp.set_etag_value(body_tag(body))
        return send_json(body=body, mimetype="application/ld+json", language=entry.document["locale"])
