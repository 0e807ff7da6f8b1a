"""The two endpoints every published document type has: a paginated list and one by id, plus
the helpers every delivery view ends with."""
from flask.views import MethodView
from flask_smorest import Page

from schemas.http import VIEWS, delivery_query

from api.web.caching import send_json
from api.web.context import delivery, preferences
from api.web.smorest import Blueprint


def send_one(blp, entry, args):
    rendered = delivery().render(entry, args.get("fields"), args.get("include"), preferences(args))
    blp.set_etag_value(rendered.etag)
    return send_json(body=rendered.body, language=rendered.locale)


def send_page(blp, entries, args, pagination_parameters):
    """One page of `entries`; the total goes in the X-Pagination and Link headers. A page past
    the end is empty."""
    page = Page(entries, pagination_parameters)
    rendered = delivery().render_list(page.items, args.get("fields"), args.get("include"), preferences(args),
                                      extra=(pagination_parameters.page, pagination_parameters.page_size,
                                             page.item_count))
    blp.set_etag_value(rendered.etag)
    return send_json(body=rendered.body, language=rendered.locale)


def document_blueprint(type_name, folder, description, list_query=None, select=None):
    """A blueprint at /v1/<folder> serving published documents of `type_name`.

    select(delivery, args) picks the list's documents from the query's filters.
    """
    blp = Blueprint(folder, __name__ + "." + folder, url_prefix=f"/v1/{folder}", description=description)
    one_query = delivery_query(type_name)
    list_query = list_query or one_query
    view = VIEWS[type_name]
    noun = type_name.title().replace("_", "")

    @blp.route("")
    class Collection(MethodView):
        @blp.etag
        @blp.arguments(list_query(), location="query", as_kwargs=True)
        @blp.response(200, view(many=True))
        @blp.problem(422, "invalid query")
        @blp.paginate()
        @blp.doc(operationId=f"list{folder.title()}", summary=f"List published {folder}",
                 description="Ordered by id; `page`/`page_size` paginate, metadata in X-Pagination and Link.")
        def get(self, pagination_parameters, **args):
            entries = select(delivery(), args) if select else delivery().all(type_name)
            return send_page(blp, entries, args, pagination_parameters)

    @blp.route("/<slug:id>")
    class One(MethodView):
        @blp.etag
        @blp.arguments(one_query(), location="query", as_kwargs=True)
        @blp.response(200, view)
        @blp.problem(404, "no published document with this id")
        @blp.problem(422, "invalid query")
        @blp.doc(operationId=f"get{noun}", summary=f"Get one published {type_name}",
                 description=f"The published {type_name} with this id; `fields=` keeps only the named fields, "
                             "`include=` embeds related published documents under `included`.")
        def get(self, id, **args):
            return send_one(blp, delivery().get(type_name, id), args)

    return blp
