"""GET /v1/bundle: the whole published set in one cacheable, compressed response."""
from functools import wraps

from flask import current_app, request
from flask.views import MethodView

from schemas.webhooks import BundleSchema

from api.services.bundle import Bundles
from api.web.caching import add_vary, encoding_for, send_json
from api.web.smorest import Blueprint

blp = Blueprint("bundle", __name__, url_prefix="/v1/bundle",
                description="Every published document in one response, for apps that start offline.")


@blp.record_once
def build_on_registration(state):
    state.app.extensions["medkb.bundles"] = Bundles(state.app.extensions["medkb"].model)


def current_bundle():
    return current_app.extensions["medkb.bundles"].current()


def precompressed(view):
    """Compress with the bundle, not in finish_response: its cache keeps every recent ETag's
    compressed body, and past bundles of a large store would pile up there."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        response = view(*args, **kwargs)
        encoding = encoding_for(request)
        if response.status_code == 200 and encoding:
            bundle = current_bundle()
            response.set_data(bundle.encoded(encoding))
            response.headers["Content-Encoding"] = encoding
            response.set_etag(f"{bundle.etag}-{encoding}")  # each encoding its own tag (api/web/caching.py)
            add_vary(response, "Accept-Encoding")
        return response

    return wrapper


@blp.route("")
class Bundle(MethodView):
    @precompressed
    @blp.etag
    @blp.response(200, BundleSchema)
    @blp.doc(operationId="getBundle")
    def get(self):
        """Every published document, with the feed cursor it corresponds to

        Fill a local store from `documents`, then follow `/v1/feed?since=<cursor>` for what changed
        since. The body is built once per change of the published set and compressed once per
        encoding; send If-None-Match to skip the download when nothing changed.
        """
        bundle = current_bundle()
        blp.set_etag_value(bundle.etag)
        return send_json(body=bundle.body)
