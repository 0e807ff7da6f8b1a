from schemas.http import FaqQuery

from api.web.documents import document_blueprint

blp = document_blueprint("faq", "faqs", "Questions patients ask, one answer each.", list_query=FaqQuery,
                         select=lambda delivery, args: delivery.faqs(args.get("product")))
