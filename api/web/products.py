import orjson
from flask.views import MethodView
from flask_smorest import Page

from schemas.http import VIEWS, MechanismQuery, ProductQuery, RelatedProductSchema, delivery_query

from api.services.delivery import body_tag
from api.web.caching import send_json
from api.web.context import delivery
from api.web.documents import document_blueprint, send_one, send_page

blp = document_blueprint(
    "product", "products", "Medicines: names, classes, dosing, risks, and how they relate.", list_query=ProductQuery,
    select=lambda delivery, args: delivery.products(args.get("condition"), args.get("drug_class"),
                                                    args.get("product_type")))

FaqListQuery = delivery_query("faq")


@blp.route("/<slug:id>/mechanism")
class ProductMechanism(MethodView):
    @blp.etag
    @blp.arguments(MechanismQuery(), location="query", as_kwargs=True)
    @blp.response(200, VIEWS["mechanism"])
    @blp.problem(404, "no published product, or it has no mechanism")
    @blp.problem(422, "invalid query")
    @blp.doc(operationId="getProductMechanism")
    def get(self, id, **args):
        """How the product works, step by step

        The published mechanism of this product: ordered steps, each cited, and side sections.
        """
        return send_one(blp, delivery().mechanism_of(id), args)


@blp.route("/<slug:id>/faqs")
class ProductFaqs(MethodView):
    @blp.etag
    @blp.arguments(FaqListQuery(), location="query", as_kwargs=True)
    @blp.response(200, VIEWS["faq"](many=True))
    @blp.problem(404, "no published product")
    @blp.problem(422, "invalid query")
    @blp.paginate()
    @blp.doc(operationId="listProductFaqs")
    def get(self, id, pagination_parameters, **args):
        """The product's FAQs, in display order

        Published FAQs about this product, ordered by position; paginated like every list.
        """
        return send_page(blp, delivery().faqs_of(id), args, pagination_parameters)


@blp.route("/<slug:id>/related")
class ProductRelated(MethodView):
    @blp.etag
    @blp.response(200, RelatedProductSchema(many=True))
    @blp.problem(404, "no published product")
    @blp.problem(422, "invalid query")
    # A product has a handful of relations, and clients built before this list paginated read
    # one answer as all of them: the default page holds the most a page may.
    @blp.paginate(page_size=100, max_page_size=100)
    @blp.doc(operationId="listRelatedProducts")
    def get(self, id, pagination_parameters):
        """Products related to this one, with the relation type and its basis

        `also_looked_for` records what people browsed; it never claims the products are equivalent.
        Paginated like every list.
        """
        service = delivery()
        page = Page(service.related_of(id), pagination_parameters)
        body = orjson.dumps([service.relation_view(relation, other.document) for relation, other in page.items])
        # The total is in the X-Pagination header, so in the tag too.
        blp.set_etag_value(body_tag(body + str(page.item_count).encode()))
        return send_json(body=body)
