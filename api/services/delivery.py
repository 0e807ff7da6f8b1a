"""Delivery service: what the public API serves, built only from the read model (published content).

No Flask here: resources turn requests into calls on `Delivery` and its answers into responses.
"""
import hashlib
from dataclasses import dataclass

import orjson

from schemas import DEFAULT_LOCALE, INCLUDES

from api.knowledge.integrity import resolve_field
from api.services.errors import CursorAhead, NotPublished


@dataclass(frozen=True)
class Rendered:
    body: bytes
    etag: str
    locale: str


def body_tag(body: bytes):
    """The entity tag of response bytes: identical bytes get an identical tag in every process."""
    return hashlib.sha256(body).hexdigest()[:32]


def pick_locale(document, preferences):
    """The best of the document's locales for the caller's preferences (in order), else its own."""
    own = document.get("locale", DEFAULT_LOCALE)
    available = [own, *(document.get("translations") or {})]
    lowered = {locale.lower(): locale for locale in available}
    for wanted in preferences:
        wanted = wanted.lower()
        if wanted in lowered:
            return lowered[wanted]
        language = wanted.split("-")[0]
        for locale in available:  # "es" or "es-MX" falls back to any Spanish the document has
            if locale.lower().split("-")[0] == language:
                return locale
    return own


def localized(document, locale):
    """The document as delivered in `locale`: translation laid over it, translations removed."""
    delivered = {key: value for key, value in document.items() if key != "translations"}
    if locale != delivered.get("locale"):
        delivered.update(document["translations"][locale])
        delivered["locale"] = locale
    return delivered


def sparse(document, names):
    if not names:
        return document
    keep = {"type", "id", *names}
    return {key: value for key, value in document.items() if key in keep}


class Delivery:
    def __init__(self, model, search=None):
        """search: what answers `search()` (api/services/search.py StoreSearch, for the same view)."""
        self.model = model
        self._search = search

    # --- freshness ---------------------------------------------------------

    def refresh(self, force=False):
        self.model.refresh(force=force)

    # --- lookups by reference: indexed in the model, per change ------------------

    def _products_treating(self, condition_id):
        return self.model.matching("product", [[("condition", condition_id.lower(), False)]])

    def _faqs_about(self, product_id):
        faqs = self.model.referring("product", product_id, "faq", "product")
        return sorted(faqs, key=lambda entry: (entry.document["position"], entry.document["id"]))

    def _mechanism_of(self, product_id):
        found = self.model.referring("product", product_id, "mechanism", "product")
        return found[0] if found else None

    # --- single documents and lists ---------------------------------------

    def get(self, type_name, id_):
        entry = self.model.get(type_name, id_)
        if entry is None:
            raise NotPublished(f"No published {type_name} '{id_}'.")
        return entry

    def all(self, type_name):
        return self.model.all(type_name)

    def products(self, condition=None, drug_class=None, product_type=None):
        """Published products, by id, filtered through the model's index of LIST_FILTERS terms: a
        lazy sequence however many match."""
        clauses = []
        if condition:
            clauses.append([("condition", condition.lower(), False)])
        if product_type:
            clauses.append([("product_type", product_type.lower(), False)])
        if drug_class:
            wanted = drug_class.lower()
            # ATC groups are classes; a full ATC code is an identifier, and matches by prefix too.
            clauses.append([("class_code", wanted, True), ("class_name", wanted, False), ("atc", wanted, True)])
        return self.model.matching("product", clauses) if clauses else self.model.all("product")

    def faqs(self, product=None):
        if product:
            return self._faqs_about(product)
        return self.model.all("faq")

    def mechanism_of(self, product_id):
        self.get("product", product_id)
        entry = self._mechanism_of(product_id)
        if entry is None:
            raise NotPublished(f"Product '{product_id}' has no published mechanism.")
        return entry

    def faqs_of(self, product_id):
        self.get("product", product_id)
        return self._faqs_about(product_id)

    def related_of(self, product_id):
        """The product's relations whose other product is published, with that product."""
        product = self.get("product", product_id).document
        related = []
        for relation in product.get("related", []):
            other = self.model.get("product", relation["product"])
            if other is not None:
                related.append((relation, other))
        return related

    def label_facts_of(self, product_id):
        """The product's label facts and its discrepancies, each discrepancy with the article's
        statements (text and citations, from published documents only) beside the label facts it
        is checked against."""
        entry = self.get("product", product_id)
        product = entry.document
        facts = product.get("label_facts") or {}
        by_key = {fact["key"]: fact for group in facts.values() for fact in group}
        discrepancies = []
        for discrepancy in product.get("discrepancies", []):
            statements = []
            for ref in discrepancy["article_statements"]:
                type_name, id_ = ref["document"].split("/", 1)
                found = self.model.get(type_name, id_)
                if found is None:
                    continue  # a draft's words never reach the public API
                field = ref.get("field")
                holder = resolve_field(found.document, field.rpartition(".")[0]) if field and "." in field \
                    else found.document
                statements.append({"document": ref["document"], **({"field": field} if field else {}),
                                   **({"text": resolve_field(found.document, field)} if field else {}),
                                   "citations": holder.get("citations", []) if isinstance(holder, dict) else []})
            discrepancies.append({**discrepancy, "article_statements": statements,
                                  "label_facts": [by_key[key] for key in discrepancy["label_facts"] if key in by_key]})
        return {"product": product_id, "review_status": product["review_status"], "label_facts": facts,
                "discrepancies": discrepancies}

    # --- rendering -----------------------------------------------------------

    def included(self, entry, names, preferences=()):
        """Embedded published documents for `include=`, by name, each in the caller's locale.
        Never an unpublished one."""
        document = entry.document

        def deliver(found):
            return localized(found.document, pick_locale(found.document, preferences)) if found else None

        result = {}
        for name in names:
            if document["type"] == "product" and name == "mechanism":
                result[name] = deliver(self._mechanism_of(document["id"]))
            elif document["type"] == "product" and name == "faqs":
                result[name] = [deliver(e) for e in self._faqs_about(document["id"])]
            elif document["type"] == "product" and name == "related":
                result[name] = [self.relation_view(relation, deliver(other))
                                for relation, other in self.related_of(document["id"])]
            elif document["type"] == "condition" and name == "products":
                result[name] = [deliver(e) for e in self._products_treating(document["id"])]
            else:
                target_type, _ = INCLUDES[document["type"]][name]
                value = document.get(name)
                if isinstance(value, list):
                    result[name] = [deliver(found) for found in (self.model.get(target_type, id_) for id_ in value)
                                    if found is not None]
                else:
                    result[name] = deliver(self.model.get(target_type, value)) if value else None
        return result

    @staticmethod
    def relation_view(relation, product):
        return {"type": relation["type"], "basis": relation["basis"],
                **({"citations": relation["citations"]} if relation.get("citations") else {}),
                "product": product}

    def view(self, entry, fields=None, include=None, preferences=()):
        """(document as a dict, chosen locale)."""
        locale = pick_locale(entry.document, preferences)
        document = sparse(localized(entry.document, locale), fields)
        if include:
            document = dict(document, included=self.included(entry, include, preferences))
        return document, locale

    def render(self, entry, fields=None, include=None, preferences=()):
        """One document as response bytes. The common case (no options, own locale) is the
        pre-serialized body: no work per request. Otherwise the tag is the bytes' own hash, so it
        moves only when what is delivered moves."""
        if not fields and not include and pick_locale(entry.document, preferences) == entry.document["locale"] \
                and "translations" not in entry.document:
            return Rendered(entry.body, entry.etag, entry.document["locale"])
        document, locale = self.view(entry, fields, include, preferences)
        body = orjson.dumps(document)
        return Rendered(body, body_tag(body), locale)

    def render_list(self, entries, fields=None, include=None, preferences=(), extra=None):
        views, locales = [], set()
        for entry in entries:
            document, locale = self.view(entry, fields, include, preferences)
            views.append(document)
            locales.add(locale)
        body = orjson.dumps(views)
        return Rendered(body, body_tag(body + repr(extra).encode()), ", ".join(sorted(locales)) or DEFAULT_LOCALE)

    # --- search ----------------------------------------------------------------

    def search(self, query, types=None, limit=10):
        return self._search.search(query, types=types, limit=limit)

    # --- change feed -----------------------------------------------------------

    def feed(self, since, limit):
        """Publication changes after cursor `since`, compacted: a change superseded by a later
        one for the same document is skipped, so replaying from the start ends with exactly the
        published set and never carries a superseded version. Documents come from the read
        model, so the feed shows what delivery shows; the read model indexes each document's
        latest publication change, so a page costs the same at 100 or 100,000 changes."""
        if since > self.model.seq:
            # Issued by another worker, which has applied a publish this one has not looked for
            # yet (each looks every CHECK_INTERVAL): catch up now. Only a cursor past everything
            # the store committed is ahead of it (a store reset or restored from a backup).
            self.model.refresh(force=True)
        if since > self.model.seq:
            raise CursorAhead(f"Cursor {since} is ahead of this store (at {self.model.seq}); sync again from the start.")
        # Cursors stop at publication changes only, so a draft edit moves no cursor and no tag.
        head = self.model.published_seq
        entries, cursor = [], max(since, head)
        for seq, type_name, id_, kind in self.model.publications_after(since):
            if seq > head:
                break
            published = self.model.get(type_name, id_)
            if published is not None:
                entries.append({"seq": seq, "op": "upsert", "type": type_name, "id": id_,
                                "revision": published.revision, "document": orjson.Fragment(published.body)})
            elif since > 0:  # a first sync has nothing to delete
                entries.append({"seq": seq, "op": "delete", "type": type_name, "id": id_,
                                "reason": "deleted" if kind == "delete" else "unpublished"})
            if len(entries) == limit:
                cursor = seq
                break
        return {"changes": entries, "next_cursor": str(cursor), "has_more": cursor < head}
