"""Full-text search over products, mechanism steps and sections, and FAQs.

Each mechanism step and section is its own result, so a reader lands on the passage that answers
them rather than on a whole mechanism. The engine is tantivy (BM25 per field, with field boosts).
Its index is a folder in the store (api/store/searchindex.py) that every worker process
memory-maps, serving public search and preview alike, kept current by applying each change once,
under the index's own write lock, in whichever process first needs it. No request ever builds
the whole index: `medkb import`, `medkb serve` (before its workers start), the app at start-up
and `medkb search rebuild` do.

Text is split into folded terms here (case, accents and compatibility forms folded), and the
index receives those terms as they are: indexing, querying and snippet marking agree on what a
word is. Query words are expanded against the vocabulary (exact, prefix, a small edit distance)
before the index is read, so a typo costs one lookup in a list of terms, not a scan.
"""
import html
import re
import threading
import unicodedata
from bisect import bisect_left, insort
from collections import defaultdict

import orjson
import tantivy
from rapidfuzz import process
from rapidfuzz.distance import Levenshtein

from api.store.searchindex import HIDDEN, KIND, PAYLOAD, Rows, SearchFiles, SearchIndexUnavailable, schema

# field -> boost. A name-like field's boost outweighs what any number of repetitions of a term
# in body text can earn (BM25 saturates at K1 + 1 = 2.2 times a field's boost), so one hit in a
# name or title outranks a term that appears only in body text.
FIELDS = {
    "name": 5.0,
    "non_proprietary_name": 4.0,
    "development_code": 3.0,
    "title": 3.0,
    "question": 3.0,
    "label": 2.0,  # product class names/codes and key risk names
    "text": 1.0,
}
SEARCHED = ("product", "mechanism", "faq")  # document types with searchable units

# What a hit is worth when the query word only approximates the indexed term.
EXACT, PREFIX, PER_EDIT = 1.0, 0.8, 0.25
MIN_APPROXIMATE = 4  # shorter words match exactly: "fc" must not find "fcrn" or "for"
TWO_EDITS_FROM = 8
MAX_PREFIX_TERMS = 64  # a short prefix of a large vocabulary stops at this many terms
MAX_TERM = 64  # longer "words" are not language: not indexed, and no query word can match one

# The API caps queries at 200 characters; this keeps the cost bounded for any
# caller that does not.
MAX_QUERY_WORDS = 32

# Each query word a result matches adds TIER to its score, on top of relevance (a few units per
# word), so results matching more distinct words always rank first. Scores are 32-bit floats:
# TIER keeps relevance's fractions visible well past the 32 words a query may hold.
TIER = 1000.0

SNIPPET_CHARS = 200
SNIPPET_LEAD = 40  # context kept before the first highlighted word
ELLIPSIS = "…"

# A word starts with a letter or digit and may carry combining accents, so a
# decomposed "é" (e + U+0301) stays inside its word.
_WORD = re.compile(r"[^\W_](?:[^\W_]|[\u0300-\u036f])*")
_TERM = re.compile(r"[^\W_]+")
_MARKDOWN_EMPHASIS = re.compile(r"\*\*|__|`")


def fold(text):
    """Case- and accent-insensitive form of `text`."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def words(text):
    """(start, end, term) for every word; start/end index `text` itself so snippets can mark the original."""
    for match in _WORD.finditer(text):
        word = match.group()
        if word.isascii():  # most words: folding is lowering (and 40 times cheaper)
            yield match.start(), match.end(), word.lower()
            continue
        # Folding can turn one character into several, some of them
        # separators (NFKD of "½" is "1⁄2"): every part is a term of this word.
        for term in _TERM.findall(fold(word)):
            yield match.start(), match.end(), term


_ASCII_TERM = re.compile(r"[a-z0-9]+")


def _terms(text):
    """The terms of `words(text)`, without their places: what indexing needs."""
    if text.isascii():
        return _ASCII_TERM.findall(text.lower())
    return [term for _, _, term in words(text)]


def _plain(value):
    """Markdown source as one line of readable text, for indexing and snippets alike."""
    if not isinstance(value, str):
        return ""
    if "**" in value or "__" in value or "`" in value:
        value = _MARKDOWN_EMPHASIS.sub("", value)
    return " ".join(value.split())  # str.split() splits on what \s matches, and faster


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


def _key(type_name, id_):
    return f"{type_name}/{id_}"


def _rows(document):
    """(kind, payload, {field: terms joined by spaces}, terms) for every searchable unit."""
    for head, passages in _units(document):
        passages = [(field, text) for field, text in ((f, _plain(t)) for f, t in passages) if text]
        texts, terms = defaultdict(list), set()
        for field, text in passages:
            found = [term for term in _terms(text) if len(term) <= MAX_TERM]
            texts[field] += found
            terms.update(found)
        payload = orjson.dumps({"head": head, "passages": passages})
        yield head["type"], payload, {field: " ".join(found) for field, found in texts.items()}, terms


def _add_document(rows: Rows, document, hidden=()):
    if isinstance(document, dict) and document.get("type") in SEARCHED:
        key = _key(document["type"], document.get("id"))
        for kind, payload, texts, terms in _rows(document):
            rows.add(key, kind, payload, texts, terms, hidden)


class Vocabulary:
    """Every indexed term, sorted (for prefixes) and by length (for edit distance). Terms of
    documents since withdrawn may stay: a lookup of one finds no rows, which costs nothing."""

    def __init__(self):
        self._known = set()
        self._sorted = []
        # Edit distance can only be within d if lengths differ by at most d, so fuzzy matching
        # reads a few length buckets, not the whole vocabulary. Terms with digits are codes and
        # numbers: a typo there is another value.
        self._by_length = defaultdict(list)

    def add(self, terms):
        new = [term for term in dict.fromkeys(terms) if term and term not in self._known]
        if not new:
            return
        self._known.update(new)
        if len(new) > 100:
            self._sorted = sorted(self._known)
        else:
            for term in new:
                insort(self._sorted, term)
        for term in new:
            if len(term) >= MIN_APPROXIMATE and not any(c.isdigit() for c in term):
                self._by_length[len(term)].append(term)

    def expand(self, word):
        """{indexed term: worth} for one folded query word."""
        if len(word) > MAX_TERM:
            return {}
        # The word itself, known or not: the index says whether it holds it, so exact matches
        # never depend on the vocabulary.
        found = {word: EXACT}
        if len(word) < MIN_APPROXIMATE:
            return found
        at = bisect_left(self._sorted, word)
        end = min(len(self._sorted), at + MAX_PREFIX_TERMS)
        while at < end and self._sorted[at].startswith(word):
            found.setdefault(self._sorted[at], PREFIX)
            at += 1
        if not any(c.isdigit() for c in word):
            edits = 1 if len(word) < TWO_EDITS_FROM else 2
            candidates = [term for length in range(len(word) - edits, len(word) + edits + 1)
                          for term in self._by_length.get(length, ())]
            for term, distance, _ in process.extract(word, candidates, scorer=Levenshtein.distance,
                                                     score_cutoff=edits, limit=None):
                found[term] = max(found.get(term, 0.0), EXACT - PER_EDIT * distance)
        return found


class _Searching:
    """Queries over one tantivy index and its vocabulary."""

    TYPES = ("product", "mechanism_step", "mechanism_section", "faq")

    def __init__(self):
        self.schema = schema(FIELDS)

    def _answer(self, searcher, vocabulary, query, types, limit, hidden_from=None):
        """Results best first. A result matching more distinct query words always ranks above one
        matching fewer, so `score` is that count plus a relevance fraction in [0, 1): comparable
        within one answer, not across queries."""
        if not isinstance(query, str) or not isinstance(limit, int) or limit < 1:
            return []
        wanted = {types} if isinstance(types, str) else set(self.TYPES if types is None else types)
        wanted &= set(self.TYPES)
        if not wanted:
            return []
        query_words = list(dict.fromkeys(term for _, _, term in words(query)))[:MAX_QUERY_WORDS]
        clauses, term_words = [], defaultdict(set)  # indexed term -> query words it stands for, for snippets
        words_found = []  # per query word that the index holds, the query for it
        for index, word in enumerate(query_words):
            alternatives = []
            for term, worth in vocabulary.expand(word).items():
                term_words[term].add(index)
                # Only the fields that hold the term: most terms live in one or two of them.
                fields = [(tantivy.Occur.Should, tantivy.Query.boost_query(
                    tantivy.Query.term_query(self.schema, field, term), boost * worth))
                    for field, boost in FIELDS.items() if searcher.doc_freq(field, term)]
                if fields:
                    alternatives.append(tantivy.Query.boolean_query(fields))
            if alternatives:
                # A word expanding to several terms ("factor", "factors") counts once, by its best hit.
                words_found.append(alternatives[0] if len(alternatives) == 1 else
                                   tantivy.Query.disjunction_max_query(alternatives))
        tiered = len(words_found) > 1  # with one word every result matches as many words
        for word_query in words_found:
            clauses.append((tantivy.Occur.Should, word_query))
            if tiered:
                clauses.append((tantivy.Occur.Should, tantivy.Query.const_score_query(word_query, TIER)))
        if not clauses:
            return []
        if hidden_from is not None:
            clauses.append((tantivy.Occur.MustNot, tantivy.Query.term_query(self.schema, HIDDEN, hidden_from)))
        found = tantivy.Query.boolean_query(clauses)
        if wanted != set(self.TYPES):
            found = tantivy.Query.boolean_query([
                (tantivy.Occur.Must, found),
                (tantivy.Occur.Must, tantivy.Query.const_score_query(
                    tantivy.Query.term_set_query(self.schema, KIND, sorted(wanted)), 0.0))])
        marks = _Marks(term_words)
        results = []
        for score, address in searcher.search(found, limit, count=False).hits:
            unit = orjson.loads(searcher.doc(address)[PAYLOAD][0])
            matched = max(1, min(int(score // TIER), len(words_found))) if tiered else 1
            relevance = max(score - TIER * matched, 0.0) if tiered else score
            results.append(_result(unit, matched, relevance, marks))
        return results


class SearchIndex(_Searching):
    """An index held in memory, built from `documents` at once: the same engine over any set of
    documents (tests, one-off sets), with nothing on disk."""

    def __init__(self, documents):
        super().__init__()
        index = tantivy.Index(self.schema)
        writer = index.writer(heap_size=64_000_000, num_threads=1)
        terms = set()
        rows = Rows(writer, terms)
        for document in documents:
            _add_document(rows, document)
        writer.commit()
        writer.wait_merging_threads()
        index.reload()
        self._searcher = index.searcher()
        self._vocabulary = Vocabulary()
        self._vocabulary.add(terms)

    def search(self, query, types=None, limit=10):
        return self._answer(self._searcher, self._vocabulary, query, types, limit)


# --- the index in the store ----------------------------------------------------------------------
#
# One index serves both views. A published revision's rows are public, and also what preview
# shows unless the document has a newer live head; that head's rows (a draft, a revision in review,
# an unpublished one) are preview's only. The metadata records two positions: `seq`, up to which
# every publication change is applied (all public search needs, read from the publication log
# only, so a busy editorial day costs public search nothing), and `draft_seq`, up to which every
# change is (what preview needs).

PUBLIC, PREVIEW = "public", "preview"
# The index's format: what its fields and rows hold. An index of another format is rebuilt (by
# `prepare`, at start-up), never read.
FORMAT = 1


def search_files(store):
    return SearchFiles(store.root / "search", FIELDS)


def store_identity(store):
    return store.identity()


def _index_document(rows, store, type_name, id_):
    """The document's rows as the store holds it now. If a later change moves it again, applying
    that change writes its rows again: applying is idempotent."""
    rows.remove(_key(type_name, id_))
    state = store.state(type_name, id_)
    if state is None:
        return
    published = store.published(type_name, id_) if state.published else None
    _add_revisions(rows, state, store.head(type_name, id_) if _live_head(state) else None, published)


def _live_head(state):
    return not state.deleted and state.head != state.published


def _add_revisions(rows, state, head, published):
    """The rows of a document's published revision, and of its head when that is a later, live one."""
    live_head = _live_head(state)
    if published is not None:
        _add_document(rows, published.content, hidden=(PREVIEW,) if live_head else ())
    if live_head and head is not None and not head.deleted:
        _add_document(rows, head.content, hidden=(PUBLIC,))


def rebuild(store, files=None):
    """Index every document afresh, as a new generation; returns the change it is at."""
    files = files or search_files(store)
    with files.locked():
        identity, last = store_identity(store), store.last_seq()

        def fill(rows):
            # A new generation holds no rows: nothing to remove first.
            for type_name in SEARCHED:
                for state in store.states(type_name):
                    head = store.revision(state.type, state.id, state.head) if _live_head(state) else None
                    published = store.revision(state.type, state.id, state.published) if state.published else None
                    _add_revisions(rows, state, head, published)

        files.build({"format": FORMAT, "identity": identity, "seq": last, "draft_seq": last}, fill)
        return last


def _fitting_generation(store, files):
    generation = files.open()
    if generation is None:
        raise SearchIndexUnavailable(f"{files.folder}: no search index; run `medkb search rebuild`.")
    meta, identity, last = generation.meta(), store_identity(store), store.last_seq()
    if meta is None or meta.get("format") != FORMAT:
        raise SearchIndexUnavailable(f"{files.folder}: the search index is of another format; "
                                     f"run `medkb search rebuild`.")
    fits = meta["seq"] <= last and meta["draft_seq"] <= last and (
        meta["identity"] == identity or (meta["identity"] is None and meta["seq"] == meta["draft_seq"] == 0))
    if not fits:
        raise SearchIndexUnavailable(f"{files.folder}: the search index belongs to another store; "
                                     f"run `medkb search rebuild`.")
    return generation, dict(meta, identity=identity), last


def catch_up(store, files=None, drafts=False):
    """Apply the changes the index has not seen, once, whichever process comes first: the
    publication changes, or with `drafts` every change. Returns the change it is at. Raises
    SearchIndexUnavailable when it is missing or belongs to another store."""
    files = files or search_files(store)
    with files.locked():
        generation, meta, last = _fitting_generation(store, files)
        if drafts:
            since = min(meta["seq"], meta["draft_seq"])
            if since >= last:
                return last
            changes = store.changes(since, limit=last - since)
            meta.update(seq=last, draft_seq=last)
        else:
            if meta["seq"] >= last:
                return meta["seq"]
            changes = store.publications(meta["seq"], last)
            meta.update(seq=last)
        touched = dict.fromkeys((change.type, change.id) for change in changes if change.type in SEARCHED)

        def change(rows):
            for type_name, id_ in touched:
                _index_document(rows, store, type_name, id_)

        files.apply(generation, meta, change)
        return last


def prepare(store):
    """Make the index fit the store before anyone searches: catch up when it fits, else rebuild.
    Returns (what was done, change it is at)."""
    files = search_files(store)
    with files.locked():
        try:
            return "caught up", catch_up(store, files, drafts=True)
        except SearchIndexUnavailable:
            return "rebuilt", rebuild(store, files)


class StoreSearch(_Searching):
    """The store's index as one process reads it, for one view: PUBLIC follows `model`'s
    publications (a ReadModel), PREVIEW every change it has seen (a DraftModel). When the model
    has seen a change the index has not applied, this process applies it, then reads on."""

    def __init__(self, store, model, view=PUBLIC):
        super().__init__()
        self.store = store
        self.model = model
        self.view = view
        self.files = search_files(store)
        self._lock = threading.Lock()
        self._generation = None
        self._searcher = None
        self._applied = -1
        self._vocabulary = Vocabulary()
        self._terms_read = 0

    def _target(self):
        return self.model.published_seq if self.view == PUBLIC else self.model.seq

    def _look(self):
        name = self.files.current_name()
        if name is None:
            raise SearchIndexUnavailable(f"{self.files.folder}: no search index; run `medkb search rebuild`.")
        if self._generation is None or self._generation.folder.name != name:
            self._generation = self.files.open()
            self._vocabulary, self._terms_read = Vocabulary(), 0
        else:
            self._generation.reload()
        searcher = self._generation.searcher()
        meta = self._generation.meta(searcher) or {"seq": 0, "draft_seq": 0}
        terms, self._terms_read = self._generation.terms_after(self._terms_read)
        self._vocabulary.add(terms)
        self._searcher = searcher
        self._applied = meta["seq"] if self.view == PUBLIC else min(meta["seq"], meta["draft_seq"])

    def current(self):
        """A searcher at least as new as the changes the model has seen, and its vocabulary."""
        target = self._target()
        if self._searcher is not None and self._applied >= target:
            return self._searcher, self._vocabulary
        with self._lock:
            if self._searcher is None or self._applied < target:
                self._look()
            if self._applied < target:
                catch_up(self.store, self.files, drafts=self.view == PREVIEW)
                self._look()
            return self._searcher, self._vocabulary

    def search(self, query, types=None, limit=10):
        searcher, vocabulary = self.current()
        return self._answer(searcher, vocabulary, query, types, limit, hidden_from=self.view)


def _result(unit, matched, relevance, marks):
    head = unit["head"]
    # Relevance per matched word keeps the fraction spread out for long queries; r / (r + 1)
    # maps it onto (0, 1), capped so that rounding never lifts a result into the next tier.
    per_word = relevance / matched
    score = matched + min(per_word / (per_word + 1), 0.9999)
    result = {"type": head["type"], "id": head["id"], "product": head["product"]}
    if "position" in head:
        result["position"] = head["position"]
    if "section" in head:
        result["section"] = head["section"]
    result["title"] = head["title"]
    result["snippet"] = _snippet(unit["passages"], marks)
    result["score"] = round(score, 4)
    result["href"] = head["href"]
    return result


class _Marks:
    """Where one query's terms occur in a passage: (start, end, query words) per hit."""

    def __init__(self, term_words):
        self.term_words = term_words
        ascii_terms = sorted((term for term in term_words if term.isascii()), key=len, reverse=True)
        # In ASCII text a word is a run of letters and digits and folding is lowering, so one
        # regular expression finds the hits without splitting the passage into words.
        self._ascii = re.compile("(?<![A-Za-z0-9])(?:" + "|".join(map(re.escape, ascii_terms)) + ")(?![A-Za-z0-9])",
                                 re.ASCII | re.IGNORECASE) if ascii_terms else None

    def hits(self, text):
        if text.isascii():
            if self._ascii is None:
                return []
            return [(m.start(), m.end(), self.term_words[m.group().lower()]) for m in self._ascii.finditer(text)]
        hits = []
        for start, end, term in words(text):
            if term in self.term_words:
                if hits and hits[-1][0] == start:  # one word folded into several terms
                    hits[-1] = (start, end, hits[-1][2] | self.term_words[term])
                else:
                    hits.append((start, end, self.term_words[term]))
        return hits


def _snippet(passages, marks):
    """An escaped excerpt of the passage showing the most query words, with those words marked."""
    best = None
    for order, (field, text) in enumerate(passages):
        hits = marks.hits(text)
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
