import orjson
from flask.views import MethodView

from schemas.http import SearchQuery, SearchResponseSchema

from api.services.delivery import body_tag
from api.web.caching import send_json
from api.web.context import delivery
from api.web.smorest import Blueprint

blp = Blueprint("search", __name__, url_prefix="/v1/search", description="Search across published content.")


@blp.route("")
class Search(MethodView):
    @blp.etag
    @blp.arguments(SearchQuery(), location="query", as_kwargs=True)
    @blp.response(200, SearchResponseSchema)
    @blp.problem(422, "empty, blank or overlong query")
    @blp.doc(operationId="search")
    def get(self, q, limit, type=None):
        """Search products, mechanism steps and FAQs

        Ranked; tolerant of typos ("hemgenx"); finds non-proprietary names and words inside answers.
        """
        body = {"query": q, "results": delivery().search(q, types=type, limit=limit)}
        # The tag is the body's own hash: identical bytes, identical tag, on every worker.
        body = orjson.dumps(body)
        blp.set_etag_value(body_tag(body))
        return send_json(body=body)
