import orjson
from flask.views import MethodView

from schemas.http import SearchQuery, SearchResponseSchema

from api.services.delivery import fingerprint
from api.web.smorest import Blueprint, public_response
from api.web.common import delivery

blp = Blueprint("search", __name__, url_prefix="/v1/search", description="Search across published content.")


@blp.route("")
class Search(MethodView):
    @blp.etag
    @blp.arguments(SearchQuery(), location="query", as_kwargs=True)
    @blp.response(200, SearchResponseSchema)
    @blp.problem(422, "empty, blank or overlong query")
    def get(self, q, limit, type=None):
        """Search products, mechanism steps and FAQs

        Ranked; tolerant of typos ("hemgenx"); finds non-proprietary names and words inside answers.
        """
        service = delivery()
        results = service.search(q, types=type, limit=limit)
        body = {"query": q, "results": results}
        blp.set_etag_value(fingerprint(service.model.version, q, type, limit))
        return public_response(orjson.dumps(body))
