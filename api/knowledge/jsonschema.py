"""JSON Schema for each document type, generated from the marshmallow classes by apispec."""
from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin

from schemas import DOCUMENT_SCHEMAS

DIALECT = "https://json-schema.org/draft/2020-12/schema"


def _rewrite_refs(node):
    if isinstance(node, dict):
        return {key: (value.replace("#/components/schemas/", "#/$defs/") if key == "$ref" else _rewrite_refs(value))
                for key, value in node.items()}
    if isinstance(node, list):
        return [_rewrite_refs(item) for item in node]
    return node


def document_json_schemas():
    """{type: standalone JSON Schema (2020-12)}; nested definitions go under $defs."""
    result = {}
    for type_name, schema_class in DOCUMENT_SCHEMAS.items():
        spec = APISpec("medkb", "1", "3.1.0", plugins=[MarshmallowPlugin()])
        name = schema_class.__name__.removesuffix("Schema")
        spec.components.schema(name, schema=schema_class)
        components = _rewrite_refs(spec.to_dict()["components"]["schemas"])
        root = components.pop(name)
        root["properties"]["type"]["enum"] = [type_name]
        result[type_name] = {"$schema": DIALECT, "$id": f"urn:medkb:schema:{type_name}", "title": type_name,
                             **root, **({"$defs": components} if components else {})}
    return result
