import orjson
from flask.views import MethodView

from schemas.http import FeedQuery, FeedResponseSchema

from api.services.delivery import body_tag
from api.web.caching import send_json
from api.web.context import delivery
from api.web.smorest import Blueprint

blp = Blueprint("feed", __name__, url_prefix="/v1/feed", description="Changes to published content, in order.")


@blp.route("")
class Feed(MethodView):
    @blp.etag
    @blp.arguments(FeedQuery(), location="query", as_kwargs=True)
    @blp.response(200, FeedResponseSchema)
    @blp.problem(409, "cursor ahead of this store (it was reset or restored): sync again without `since`")
    @blp.problem(422, "malformed cursor or limit")
    @blp.doc(operationId="getFeed")
    def get(self, limit, since=None):
        """Changes to published content since a cursor

        Without `since`, a full initial sync (every published document as an upsert). Keep calling with
        `next_cursor` until `has_more` is false; later calls bring upserts (with the document) and
        tombstones (`op: delete`) in change order. Cursors survive restarts.
        """
        page = delivery().feed(int(since or 0), limit)
        body = orjson.dumps(page)
        blp.set_etag_value(body_tag(body))
        return send_json(body=body)
