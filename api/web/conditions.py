from api.web.documents import document_blueprint

blp = document_blueprint("condition", "conditions", "Conditions the products treat.")
