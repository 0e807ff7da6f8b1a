"""GET /v1/bundle: the whole published set in one cacheable, compressed response, streamed from
the bundle files every worker shares (api/services/bundle.py)."""
import os
from functools import wraps

from flask import Response, current_app, request
from flask.views import MethodView
from werkzeug.wsgi import wrap_file

from schemas.webhooks import BundleSchema

from api.services.bundle import Bundles
from api.web.caching import add_vary, encoding_for
from api.web.responsecache import NOT_OF_VERSION
from api.web.smorest import Blueprint

blp = Blueprint("bundle", __name__, url_prefix="/v1/bundle",
                description="Every published document in one response, for apps that start offline.")

STREAM_CHUNK = 256 * 1024  # read from the file per write to the socket


@blp.record_once
def build_on_registration(state):
    state.app.extensions["medkb.bundles"] = Bundles(state.app.extensions["medkb"].model)


def encoding_tag(view):
    """Each encoding is its own representation with its own tag (api/web/caching.py); flask-smorest
    sets the base tag after the view, so the encoding's suffix is added here, outside it."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        response = view(*args, **kwargs)
        encoding = response.headers.get("Content-Encoding")
        if response.status_code == 200 and encoding:
            tag, _ = response.get_etag()
            response.set_etag(f"{tag}-{encoding}")
        return response

    return wrapper


@blp.route("")
class Bundle(MethodView):
    @encoding_tag
    @blp.etag
    @blp.response(200, BundleSchema)
    @blp.doc(operationId="getBundle")
    def get(self):
        """Every published document, with the feed cursor it corresponds to

        Fill a local store from `documents`, then follow `/v1/feed?since=<cursor>` for what changed
        since. The body is built once per change of the published set and compressed once per
        encoding; send If-None-Match to skip the download when nothing changed.
        """
        bundles = current_app.extensions["medkb.bundles"]
        encoding = encoding_for(request)
        bundle, body = bundles.open(bundles.current(), encoding)
        if not bundles.is_current(bundle):
            request.environ[NOT_OF_VERSION] = True
        try:
            blp.set_etag_value(bundle.etag)  # a 304 needs no body: close the file at once
        except BaseException:
            body.close()
            raise
        # Streamed, never read into memory: a file of a large store is tens of megabytes. Compressed
        # already, so finish_response leaves it alone (direct_passthrough, Content-Encoding).
        response = Response(wrap_file(request.environ, body, STREAM_CHUNK), mimetype="application/json",
                            direct_passthrough=True)
        response.content_length = os.fstat(body.fileno()).st_size
        if encoding:
            response.headers["Content-Encoding"] = encoding
        add_vary(response, "Accept-Encoding")
        return response
