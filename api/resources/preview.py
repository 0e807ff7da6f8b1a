"""Preview: drafts (head revisions) in the delivery shapes, for authenticated editors only."""
import orjson
from flask import current_app
from flask.views import MethodView
from flask_smorest import abort

from schemas import TYPE_FOLDERS
from schemas.http import VIEWS, preview_query

from ..delivery import localized, pick_locale, sparse
from ..http import Blueprint, public_response
from ..workflow import content_etag
from .auth import BEARER, require_key
from .common import preferences

blp = Blueprint("preview", __name__, url_prefix="/v1/preview",
                description="What a document will look like once published: the head revision, draft included.")
blp.before_request(require_key)


def preview_route(type_name, folder):
    query = preview_query(type_name)()

    class Preview(MethodView):
        @blp.etag
        @blp.arguments(query, location="query", as_kwargs=True)
        @blp.response(200, VIEWS[type_name])
        @blp.problem(401, "no valid API key")
        @blp.problem(404, "no such document")
        @blp.doc(security=[BEARER], summary=f"Preview a {type_name}: its head revision, in the delivery shape")
        def get(self, id_, **args):
            head = current_app.extensions["medkb"].store.head(type_name, id_) if type_name in TYPE_FOLDERS else None
            if head is None or head.deleted:
                abort(404, message=f"No {type_name} '{id_}'.")
            locale = pick_locale(head.content, preferences(args))
            blp.set_etag_value(f"{content_etag(head)}-{locale}-{','.join(args.get('fields') or [])}")
            return public_response(orjson.dumps(sparse(localized(head.content, locale), args.get("fields"))),
                                   language=locale)

    Preview.__name__ = f"Preview{type_name.title()}"
    blp.route(f"/{folder}/<string:id_>")(Preview)


for _type, _folder in TYPE_FOLDERS.items():
    preview_route(_type, _folder)
