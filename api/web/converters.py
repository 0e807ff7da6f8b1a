"""URL converters for the two kinds of path segment, so the routes and the spec agree on them:
`{id}` is a slug (its pattern in the spec) and `{type}` one of the document types (an enum).
A segment that does not fit is a 404 before any view runs."""
from werkzeug.routing import BaseConverter, ValidationError

from schemas import DOCUMENT_TYPES
from schemas.fields import SLUG_MAX_LENGTH, SLUG_PATTERN


class SlugConverter(BaseConverter):
    regex = SLUG_PATTERN.strip("^$")

    def to_python(self, value):
        if len(value) > SLUG_MAX_LENGTH:
            raise ValidationError()  # no route matches: 404
        return value


class DocumentTypeConverter(BaseConverter):
    regex = "|".join(DOCUMENT_TYPES)


def register_converters(app, api):
    app.url_map.converters["slug"] = SlugConverter
    app.url_map.converters["doctype"] = DocumentTypeConverter
    api.register_converter(SlugConverter, lambda converter: {
        "type": "string", "pattern": SLUG_PATTERN, "maxLength": SLUG_MAX_LENGTH})
    # One named enum, so a generated client has one DocumentType for every operation.
    api.spec.components.schema("DocumentType", {"type": "string", "enum": list(DOCUMENT_TYPES),
                                                "description": "The type of a document."})
    api.register_converter(DocumentTypeConverter,
                           lambda converter: {"$ref": "#/components/schemas/DocumentType"})
