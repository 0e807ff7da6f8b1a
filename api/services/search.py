"""Full-text search over products, mechanism steps and sections, and FAQs.

A `SearchIndex` is built once from the published documents and answers many
queries. Each mechanism step and section is its own result, so a reader lands
on the passage that answers them rather than on a whole mechanism.

Scoring is BM25 with field weights (BM25F-like): every field of a result has a
weight, and term frequency saturates per field. Query words are expanded
against the index vocabulary (exact, prefix, and a small edit distance) before
the postings are read, so a typo costs one vocabulary lookup, not a scan of
the documents.
"""
import html
import math
import re
import unicodedata
from bisect import bisect_left
from collections import Counter, defaultdict

from rapidfuzz import process
from rapidfuzz.distance import Levenshtein

# field -> (weight, b). Name-like fields have a weight above K1 + 1, the most
# any number of repetitions in a body can earn, so one hit in a name or title
# always outranks a term that appears only in body text. They skip length
# normalisation (b = 0): a long title is not a weaker title.
FIELDS = {
    "name": (5.0, 0.0),
    "non_proprietary_name": (4.0, 0.0),
    "development_code": (3.0, 0.0),
    "title": (3.0, 0.0),
    "question": (3.0, 0.0),
    "label": (2.0, 0.0),  # product class names/codes and key risk names
    "text": (1.0, 0.75),
}
K1 = 1.2

# What a hit is worth when the query word only approximates the indexed term.
EXACT, PREFIX, PER_EDIT = 1.0, 0.8, 0.25
MIN_APPROXIMATE = 4  # shorter words match exactly: "fc" must not find "fcrn" or "for"
TWO_EDITS_FROM = 8

# The API caps queries at 200 characters; this keeps the cost bounded for any
# caller that does not.
MAX_QUERY_WORDS = 32

SNIPPET_CHARS = 200
SNIPPET_LEAD = 40  # context kept before the first highlighted word
ELLIPSIS = "…"

# A word starts with a letter or digit and may carry combining accents, so a
# decomposed "é" (e + U+0301) stays inside its word.
_WORD = re.compile(r"[^\W_](?:[^\W_]|[\u0300-\u036f])*")
_TERM = re.compile(r"[^\W_]+")
_MARKDOWN_EMPHASIS = re.compile(r"\*\*|__|`")
_SPACE = re.compile(r"\s+")


def fold(text):
    """Case- and accent-insensitive form of `text`."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def words(text):
    """(start, end, term) for every word; start/end index `text` itself so snippets can mark the original."""
    for match in _WORD.finditer(text):
        # Folding can turn one character into several, some of them
        # separators (NFKD of "½" is "1⁄2"): every part is a term of this word.
        for term in _TERM.findall(fold(match.group())):
            yield match.start(), match.end(), term


def _plain(value):
    """Markdown source as one line of readable text, for indexing and snippets alike."""
    if not isinstance(value, str):
        return ""
    return _SPACE.sub(" ", _MARKDOWN_EMPHASIS.sub("", value)).strip()


def _items(value):
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _product_passages(product):
    yield "name", product.get("name")
    yield "non_proprietary_name", product.get("non_proprietary_name")
    yield "development_code", product.get("development_code")
    yield "text", product.get("summary")
    how = product.get("how_it_works")
    yield "text", how.get("text") if isinstance(how, dict) else None
    for item in _items(product.get("classes")):
        yield "label", " ".join(_plain(item.get(key)) for key in ("code", "name"))
    for item in _items(product.get("identifiers")):
        yield "label", _plain(item.get("value"))
    for item in _items(product.get("dosing")):
        yield "text", item.get("text")
    for item in _items(product.get("key_risks")):
        yield "label", item.get("name")
        yield "text", item.get("description")


def _units(document):
    """(result head, [(field, plain text)]) for every searchable unit of one document."""
    kind, id_ = document.get("type"), document.get("id")
    if not isinstance(id_, str) or not id_:
        return
    if kind == "product":
        head = {"type": "product", "id": id_, "product": id_, "title": _plain(document.get("name")),
                "href": f"/v1/products/{id_}"}
        yield head, list(_product_passages(document))
    elif kind == "mechanism":
        product = document.get("product") if isinstance(document.get("product"), str) else ""
        href = f"/v1/products/{product}/mechanism"
        for step in _items(document.get("steps")):
            head = {"type": "mechanism_step", "id": id_, "product": product, "position": step.get("position"),
                    "title": _plain(step.get("title")), "href": href}
            yield head, [("title", step.get("title")), ("text", step.get("body"))]
        for section in _items(document.get("sections")):
            head = {"type": "mechanism_section", "id": id_, "product": product, "section": section.get("key"),
                    "title": _plain(section.get("title")), "href": href}
            yield head, [("title", section.get("title")), ("text", section.get("body"))]
    elif kind == "faq":
        product = document.get("product") if isinstance(document.get("product"), str) else ""
        head = {"type": "faq", "id": id_, "product": product, "title": _plain(document.get("question")),
                "href": f"/v1/faqs/{id_}"}
        yield head, [("question", document.get("question")), ("text", document.get("answer"))]


class SearchIndex:
    TYPES = ("product", "mechanism_step", "mechanism_section", "faq")

    def __init__(self, documents):
        self._heads = []     # unit -> result fields known before any query
        self._passages = []  # unit -> [(field, plain text)], kept for snippets
        unit_terms = []      # unit -> term -> field -> count; dropped after build
        unit_lengths = []    # unit -> field -> words
        field_words, field_units = Counter(), Counter()
        for document in documents:
            if not isinstance(document, dict):
                continue
            for head, passages in _units(document):
                passages = [(field, text) for field, text in ((f, _plain(t)) for f, t in passages) if text]
                terms, lengths = defaultdict(Counter), Counter()
                for field, text in passages:
                    for _, _, term in words(text):
                        terms[term][field] += 1
                        lengths[field] += 1
                for field, length in lengths.items():
                    field_words[field] += length
                    field_units[field] += 1
                self._heads.append(head)
                self._passages.append(passages)
                unit_terms.append(terms)
                unit_lengths.append(lengths)

        average = {field: field_words[field] / field_units[field] for field in field_units}
        # term -> unit -> field-weighted, saturated term frequency. Computed once
        # here so a query only multiplies by idf and sums.
        postings = defaultdict(dict)
        for unit, (terms, lengths) in enumerate(zip(unit_terms, unit_lengths)):
            for term, counts in terms.items():
                weight = 0.0
                for field, tf in counts.items():
                    field_weight, b = FIELDS[field]
                    norm = 1 - b + b * lengths[field] / average[field]
                    weight += field_weight * tf * (K1 + 1) / (tf + K1 * norm)
                postings[term][unit] = weight
        self._postings = dict(postings)

        count = len(self._heads)
        self._idf = {term: math.log(1 + (count - len(units) + 0.5) / (len(units) + 0.5))
                     for term, units in self._postings.items()}
        self._vocabulary = sorted(self._postings)
        # Edit distance can only be within d if lengths differ by at most d, so
        # fuzzy matching reads a few length buckets, not the whole vocabulary.
        # Terms with digits are codes and numbers: a typo there is another value.
        self._by_length = defaultdict(list)
        for term in self._vocabulary:
            if len(term) >= MIN_APPROXIMATE and not any(c.isdigit() for c in term):
                self._by_length[len(term)].append(term)

    def expand(self, word):
        """{indexed term: worth} for one folded query word."""
        found = {}
        if word in self._postings:
            found[word] = EXACT
        if len(word) < MIN_APPROXIMATE:
            return found
        at = bisect_left(self._vocabulary, word)
        while at < len(self._vocabulary) and self._vocabulary[at].startswith(word):
            found.setdefault(self._vocabulary[at], PREFIX)
            at += 1
        if not any(c.isdigit() for c in word):
            edits = 1 if len(word) < TWO_EDITS_FROM else 2
            candidates = [term for length in range(len(word) - edits, len(word) + edits + 1)
                          for term in self._by_length.get(length, ())]
            for term, distance, _ in process.extract(word, candidates, scorer=Levenshtein.distance,
                                                     score_cutoff=edits, limit=None):
                found[term] = max(found.get(term, 0.0), EXACT - PER_EDIT * distance)
        return found

    def search(self, query, types=None, limit=10):
        """Results best first; see the module docstring for how they are scored.

        A result matching more distinct query words always ranks above one
        matching fewer, so `score` is that count plus a relevance fraction in
        [0, 1): comparable within one answer, not across queries.
        """
        if not isinstance(query, str) or not self._heads or not isinstance(limit, int) or limit < 1:
            return []
        wanted = {types} if isinstance(types, str) else set(self.TYPES if types is None else types)
        query_words = list(dict.fromkeys(term for _, _, term in words(query)))[:MAX_QUERY_WORDS]

        relevance, matched = defaultdict(float), Counter()
        term_words = defaultdict(set)  # indexed term -> query words it stands for, for snippets
        for index, word in enumerate(query_words):
            best = {}
            for term, worth in self.expand(word).items():
                term_words[term].add(index)
                idf = self._idf[term]
                for unit, weight in self._postings[term].items():
                    if self._heads[unit]["type"] in wanted:
                        # A word expanding to several terms ("factor", "factors")
                        # counts once, by its best hit.
                        best[unit] = max(best.get(unit, 0.0), worth * idf * weight)
            for unit, score in best.items():
                relevance[unit] += score
                matched[unit] += 1

        ranked = sorted(relevance, key=lambda unit: (-matched[unit], -relevance[unit], unit))[:limit]
        return [self._result(unit, matched[unit], relevance[unit], term_words) for unit in ranked]

    def _result(self, unit, matched, relevance, term_words):
        head = self._heads[unit]
        # Relevance per matched word keeps the fraction spread out for long
        # queries; r / (r + 1) maps it onto (0, 1), capped so that rounding
        # never lifts a result into the next matched-words tier.
        per_word = relevance / matched
        score = matched + min(per_word / (per_word + 1), 0.9999)
        result = {"type": head["type"], "id": head["id"], "product": head["product"]}
        if "position" in head:
            result["position"] = head["position"]
        if "section" in head:
            result["section"] = head["section"]
        result["title"] = head["title"]
        result["snippet"] = self._snippet(unit, term_words)
        result["score"] = round(score, 4)
        result["href"] = head["href"]
        return result

    def _snippet(self, unit, term_words):
        """An escaped excerpt of the passage showing the most query words, with those words marked."""
        best = None
        for order, (field, text) in enumerate(self._passages[unit]):
            hits = []  # (start, end, query words)
            for start, end, term in words(text):
                if term in term_words:
                    if hits and hits[-1][0] == start:  # one word folded into several terms
                        hits[-1] = (start, end, hits[-1][2] | term_words[term])
                    else:
                        hits.append((start, end, term_words[term]))
            shown = set().union(*(found for _, _, found in hits))
            # Body text reads better than repeating the title shown beside it.
            key = (len(shown), field == "text", -order)
            if best is None or key > best[0]:
                best = (key, text, hits)
        return excerpt(best[1], best[2]) if best else ""


def excerpt(text, hits):
    """At most SNIPPET_CHARS of `text` around the hits that show the most query words, HTML-escaped."""
    start, end = 0, len(text)
    if len(text) > SNIPPET_CHARS:
        def window(hit_start):
            return max(0, min(hit_start - SNIPPET_LEAD, len(text) - SNIPPET_CHARS))

        def shown(at):
            return len(set().union(*(found for s, e, found in hits if s >= at and e <= at + SNIPPET_CHARS)))

        # The opening is tried first so that, when it shows as much, the
        # snippet reads from the start of the passage.
        start = max([0] + [window(s) for s, _, _ in hits], key=shown)
        end = start + SNIPPET_CHARS
        inside = [(s, e) for s, e, _ in hits if s >= start and e <= end]
        # Cut between words, but never cut away a highlighted one.
        if start > 0 and not text[start - 1].isspace():
            space = text.find(" ", start, inside[0][0] if inside else end)
            start = space + 1 if space != -1 else start
        if end < len(text) and not text[end].isspace():
            space = text.rfind(" ", inside[-1][1] if inside else start, end)
            end = space if space != -1 else end

    parts, at = [ELLIPSIS] if start > 0 else [], start
    for s, e, _ in hits:
        if s >= start and e <= end:
            parts += [html.escape(text[at:s]), "<mark>", html.escape(text[s:e]), "</mark>"]
            at = e
    parts.append(html.escape(text[at:end]))
    if end < len(text):
        parts.append(ELLIPSIS)
    return "".join(parts)
