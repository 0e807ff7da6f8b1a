from api.web.documents import document_blueprint

blp = document_blueprint("person", "people", "Authors and medical reviewers.")
