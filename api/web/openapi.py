"""apispec plugins that make openapi.yaml say what a generated client needs to know: who may
call what, a description for every operation, parameter and schema, one typed body per document
type for create and replace (with an example from content/), and the paging headers."""
import inspect
from pathlib import Path

import orjson
from apispec import BasePlugin

from schemas import DOCUMENT_SCHEMAS, TYPE_FOLDERS
from schemas.http import INPUTS, SERVER_SET

CONTENT = Path(__file__).resolve().parents[2] / "content"

PATH_PARAMETERS = {
    "id": "The document's id: a URL-safe slug (lowercase letters, digits, single hyphens).",
    "type": "The document type, as in the document's own `type` field (singular: product, faq, ...).",
    "number": "A revision number, counting from 1.",
    "delivery_id": "A delivery's webhook-id (msg_<change number>), as its receiver saw it.",
}
PAGING_PARAMETERS = {
    "page": "The page to return, counting from 1. A page past the end is empty.",
    "page_size": "How many items a page holds.",
}
LINK_HEADER = {
    "description": "RFC 8288 links to the first, previous, next and last pages (rel first, prev, next, last).",
    "schema": {"type": "string"},
}
DOCUMENT_BODIES = ("createDocument", "replaceDocument")


def document_component(type_name):
    return f"{type_name.title()}Input"


def example(type_name):
    """The first shipped document of a type, as written in content/: a real, valid example."""
    folder = CONTENT / TYPE_FOLDERS[type_name]
    files = sorted(folder.glob("*.json")) if folder.is_dir() else []
    if not files:
        return None
    document = orjson.loads(files[0].read_bytes())
    return {name: value for name, value in document.items() if name not in SERVER_SET}


class ContractDocs(BasePlugin):
    PREFIXES = ("/v1/editorial", "/v1/preview")

    def init_spec(self, spec):
        super().init_spec(spec)
        self.spec = spec

    def schema_helper(self, name, definition, **kwargs):
        # A schema's own docstring (not one it inherits) describes it.
        schema = kwargs.get("schema")
        if definition.get("description") or schema is None:
            return None
        cls = schema if isinstance(schema, type) else type(schema)
        own = cls.__dict__.get("__doc__")
        if own:
            return {"description": inspect.cleandoc(own).split("\n\n")[0].replace("\n", " ")}
        return None

    def path_helper(self, path=None, operations=None, parameters=None, **kwargs):
        for parameter in parameters or []:
            if isinstance(parameter, dict) and parameter.get("in") == "path" and not parameter.get("description"):
                webhook = path.startswith("/v1/editorial/webhooks") and parameter["name"] == "id"
                parameter["description"] = "A subscription's id (wh_…)." if webhook else \
                    PATH_PARAMETERS.get(parameter["name"], "")

    def operation_helper(self, path=None, operations=None, **kwargs):
        for operation in (operations or {}).values():
            self._keys(path, operation)
            self._paging(operation)
            if operation.get("operationId") in DOCUMENT_BODIES:
                operation["requestBody"] = self._document_body()

    def _keys(self, path, operation):
        """Every editorial and preview operation needs an API key and may answer 401; preview
        operations reuse delivery's views, so their ids are prefixed to stay unique."""
        if not path.startswith(self.PREFIXES):
            return
        operation["security"] = [{"bearerAuth": []}]
        operation.setdefault("responses", {})["401"] = "UNAUTHORIZED"
        operation_id = operation.get("operationId", "")
        if path.startswith("/v1/preview") and not operation_id.startswith("preview"):
            operation["operationId"] = "preview" + operation_id[:1].upper() + operation_id[1:]

    @staticmethod
    def _paging(operation):
        for parameter in operation.get("parameters", []):
            if isinstance(parameter, dict) and parameter.get("name") in PAGING_PARAMETERS:
                parameter.setdefault("description", PAGING_PARAMETERS[parameter["name"]])
        ok = operation.get("responses", {}).get("200")
        if isinstance(ok, dict) and "X-Pagination" in ok.get("headers", {}):
            ok["headers"]["Link"] = LINK_HEADER

    def _document_body(self):
        """One schema per document type, told apart by `type`, so a generated client has a typed
        model for each."""
        for type_name, schema in INPUTS.items():
            name = document_component(type_name)
            if name not in self.spec.components.schemas:
                found = example(type_name)
                self.spec.components.schema(name, schema=schema, **({"example": found} if found else {}))
        refs = {type_name: f"#/components/schemas/{document_component(type_name)}" for type_name in DOCUMENT_SCHEMAS}
        return {"required": True, "description": "A whole document of one of the types, as in content/; "
                                                  "the server sets `revision` and `updated_at`.",
                "content": {"application/json": {"schema": {
                    "oneOf": [{"$ref": ref} for ref in refs.values()],
                    "discriminator": {"propertyName": "type", "mapping": refs}}}}}
