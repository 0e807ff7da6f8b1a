import orjson
from flask import current_app
from flask.views import MethodView

from api.services.delivery import fingerprint
from api.web.smorest import public_response
from api.services.jsonld import article_jsonld
from api.web.common import delivery, published
from api.web.documents import document_blueprint

blp = document_blueprint("article", "articles", "Explainer pages, with their mechanism, FAQs and sources.")


@blp.route("/<string:id_>/jsonld")
class ArticleJsonLd(MethodView):
    @blp.etag
    @blp.response(200, {"type": "object"}, content_type="application/ld+json",
                  description="schema.org MedicalWebPage about a Drug, with its FAQPage and mechanism ItemList")
    @blp.problem(404, "no published article")
    def get(self, id_):
        """The article as schema.org JSON-LD, for search engines"""
        service = delivery()
        entry = published(service.get, "article", id_)

        def lookup(type_name, id_):
            found = service.model.get(type_name, id_)
            return found.document if found else None

        base_url = current_app.config["PUBLIC_BASE_URL"].rstrip("/")
        blp.set_etag_value(fingerprint(entry.etag, service.model.version, base_url))
        return public_response(orjson.dumps(article_jsonld(entry.document, lookup, base_url)),
                               mimetype="application/ld+json", language=entry.document["locale"])
