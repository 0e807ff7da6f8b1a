from api.web.documents import document_blueprint

blp = document_blueprint("source", "sources", "Citable references behind every clinical statement.")
