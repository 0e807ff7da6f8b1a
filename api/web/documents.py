"""The two endpoints every published document type has: a paginated list and one by id."""
from flask.views import MethodView

from schemas.http import VIEWS, delivery_query

from api.web.smorest import Blueprint
from api.web.common import delivery, published, send_one, send_page



def described(text):
    """Set a docstring built at run time; innermost, so flask-smorest's wrappers copy it."""
    def apply(function):
        function.__doc__ = text
        return function
    return apply


def document_blueprint(type_name, folder, description, list_query=None, select=None):
    """A blueprint at /v1/<folder> serving published documents of `type_name`.

    select(delivery, args) picks the list's documents from the query's filters.
    """
    blp = Blueprint(folder, __name__ + "." + folder, url_prefix=f"/v1/{folder}", description=description)
    one_query = delivery_query(type_name)
    list_query = list_query or one_query
    view = VIEWS[type_name]

    @blp.route("")
    class Collection(MethodView):
        @blp.etag
        @blp.arguments(list_query(), location="query", as_kwargs=True)
        @blp.response(200, view(many=True))
        @blp.problem(422, "invalid query")
        @blp.paginate()
        @described(f"List published {folder}\n\nOrdered by id; `page`/`page_size` paginate, metadata in X-Pagination.")
        def get(self, pagination_parameters, **args):
            entries = select(delivery(), args) if select else delivery().all(type_name)
            return send_page(blp, entries, args, pagination_parameters)

    @blp.route("/<string:id_>")
    class One(MethodView):
        @blp.etag
        @blp.arguments(one_query(), location="query", as_kwargs=True)
        @blp.response(200, view)
        @blp.problem(404, "no published document with this id")
        @blp.problem(422, "invalid query")
        @described(f"Get one published {type_name}")
        def get(self, id_, **args):
            return send_one(blp, published(delivery().get, type_name, id_), args)

    return blp
