"""The offline bundle: every published document in one body, with the feed cursor it matches. No Flask here.

Built from the read model once per change of the published set (the model's `version`), never per
request. The cursor is the last publication change the bundle reflects, so every process serving
the same published set answers with the same bytes and the same ETag, and a client following
/v1/feed from that cursor misses nothing and replays nothing the bundle already holds.
"""
import gzip
from dataclasses import dataclass, field

import orjson

from schemas import DOCUMENT_TYPES

from api.knowledge.jsontext import script_safe


@dataclass(frozen=True)
class Bundle:
    body: bytes
    cursor: int
    count: int
    _encoded: dict = field(default_factory=dict, compare=False, repr=False)

    @property
    def etag(self):
        return f"bundle-{self.cursor}"

    def encoded(self, encoding):
        """The body compressed with `encoding` (gzip or br), once per bundle. Kept here, with the one
        current bundle, so that a past version's megabytes go when it does."""
        if encoding not in self._encoded:
            if encoding == "br":
                import brotli

                self._encoded[encoding] = brotli.compress(self.body, quality=5)
            else:
                self._encoded[encoding] = gzip.compress(self.body, compresslevel=6, mtime=0)
        return self._encoded[encoding]


class Bundles:
    def __init__(self, model):
        self.model = model
        self._bundle = None
        self._version = None

    def current(self):
        """The bundle of the published set as the read model holds it now (refresh the model first)."""
        version = self.model.version
        if self._bundle is None or self._version != version:
            self._bundle, self._version = self._build(), version
        return self._bundle

    def _build(self):
        bodies = [entry.body for type_name in DOCUMENT_TYPES for entry in self.model.all(type_name)]
        cursor = self.model.published_seq
        head = orjson.dumps({"cursor": str(cursor), "count": len(bodies)})[:-1]
        # Escaped here, not per response: the compressed variants are made from these bytes too.
        return Bundle(script_safe(head + b',"documents":[' + b",".join(bodies) + b"]}"), cursor, len(bodies))
