"""marshmallow schemas: the one definition of every document and every HTTP body."""
from .documents import (
    CURRENT_SCHEMA_VERSION,
    DEFAULT_LOCALE,
    DOCUMENT_SCHEMAS,
    DOCUMENT_TYPES,
    FOLDER_TYPES,
    INCLUDES,
    LIST_FILTERS,
    REFERENCES,
    TYPE_FOLDERS,
)

__all__ = ["CURRENT_SCHEMA_VERSION", "DEFAULT_LOCALE", "DOCUMENT_SCHEMAS", "DOCUMENT_TYPES",
           "FOLDER_TYPES", "INCLUDES", "LIST_FILTERS", "REFERENCES", "TYPE_FOLDERS"]
