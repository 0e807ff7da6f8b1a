"""What the labels say about a product, beside the article, with the discrepancies between them."""
import orjson
from flask.views import MethodView

from schemas.facts import ProductLabelFactsSchema

from api.services.delivery import body_tag
from api.web.caching import send_json
from api.web.context import delivery
from api.web.smorest import Blueprint

blp = Blueprint("label-facts", __name__, url_prefix="/v1/products",
                description="Label facts by region, and where the article and a label differ.")


@blp.route("/<slug:id>/label-facts")
class ProductLabelFacts(MethodView):
    @blp.etag
    @blp.response(200, ProductLabelFactsSchema)
    @blp.problem(404, "no published product")
    @blp.doc(operationId="getProductLabelFacts")
    def get(self, id):
        """The product's label facts and its article-versus-label discrepancies

        Indication, dose, monitoring and required actions as each label states them, cited and
        with their verification; each discrepancy carries the article's published statement
        and the label facts it differs from, so an app can show the label's version beside it.
        """
        body = orjson.dumps(delivery().label_facts_of(id))
        blp.set_etag_value(body_tag(body))
        return send_json(body=body)
