import orjson
from flask.views import MethodView

from schemas.http import VIEWS, MechanismQuery, ProductQuery, RelatedProductSchema, delivery_query

from api.services.delivery import fingerprint
from api.web.smorest import public_response
from api.web.common import delivery, published, send_one, send_page
from api.web.documents import document_blueprint

blp = document_blueprint(
    "product", "products", "Medicines: names, classes, dosing, risks, and how they relate.", list_query=ProductQuery,
    select=lambda delivery, args: delivery.products(args.get("condition"), args.get("drug_class"),
                                                    args.get("product_type")))

FaqListQuery = delivery_query("faq")


@blp.route("/<string:id_>/mechanism")
class ProductMechanism(MethodView):
    @blp.etag
    @blp.arguments(MechanismQuery(), location="query", as_kwargs=True)
    @blp.response(200, VIEWS["mechanism"])
    @blp.problem(404, "no published product, or it has no mechanism")
    @blp.problem(422, "invalid query")
    def get(self, id_, **args):
        """How the product works, step by step"""
        return send_one(blp, published(delivery().mechanism_of, id_), args)


@blp.route("/<string:id_>/faqs")
class ProductFaqs(MethodView):
    @blp.etag
    @blp.arguments(FaqListQuery(), location="query", as_kwargs=True)
    @blp.response(200, VIEWS["faq"](many=True))
    @blp.problem(404, "no published product")
    @blp.problem(422, "invalid query")
    @blp.paginate()
    def get(self, id_, pagination_parameters, **args):
        """The product's FAQs, in display order"""
        return send_page(blp, published(delivery().faqs_of, id_), args, pagination_parameters)


@blp.route("/<string:id_>/related")
class ProductRelated(MethodView):
    @blp.etag
    @blp.response(200, RelatedProductSchema(many=True))
    @blp.problem(404, "no published product")
    def get(self, id_):
        """Products related to this one, with the relation type and its basis

        `also_looked_for` records what people browsed; it never claims the products are equivalent.
        """
        service = delivery()
        related = published(service.related_of, id_)
        # The product's own hash covers its relations; the others' cover what is embedded.
        blp.set_etag_value(fingerprint(service.get("product", id_).etag, [other.etag for _, other in related]))
        return public_response(orjson.dumps([service.relation_view(relation, other.document)
                                             for relation, other in related]))
