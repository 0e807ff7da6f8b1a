"""GET /v1/bundle: the whole published set in one cacheable, compressed response."""
from flask import current_app
from flask.views import MethodView

from schemas.webhooks import BundleSchema

from api.services.bundle import Bundles
from api.web.smorest import Blueprint, public_response

blp = Blueprint("bundle", __name__, url_prefix="/v1/bundle",
                description="Every published document in one response, for apps that start offline.")


@blp.record_once
def build_on_registration(state):
    state.app.extensions["medkb.bundles"] = Bundles(state.app.extensions["medkb"].model)


@blp.route("")
class Bundle(MethodView):
    @blp.etag
    @blp.response(200, BundleSchema)
    def get(self):
        """Every published document, with the feed cursor it corresponds to

        Fill a local store from `documents`, then follow `/v1/feed?since=<cursor>` for what changed
        since. The body is built once per change of the published set and compressed once per
        encoding; send If-None-Match to skip the download when nothing changed.
        """
        bundle = current_app.extensions["medkb.bundles"].current()
        blp.set_etag_value(bundle.etag)
        return public_response(bundle.body)
