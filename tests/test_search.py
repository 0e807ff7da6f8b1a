import copy
import html
import re

import pytest
from conftest import CONTENT, envelope, minimal_documents

from api.knowledge.documents import load_set
from api.services.search import SearchIndex

RESULT_KEYS = {"type", "id", "product", "title", "snippet", "score", "href"}
EXTRA_KEYS = {"product": set(), "faq": set(), "mechanism_step": {"position"}, "mechanism_section": {"section"}}


@pytest.fixture(scope="module")
def shipped():
    return list(load_set([CONTENT]).documents.values())


@pytest.fixture(scope="module")
def index(shipped):
    return SearchIndex(shipped)


def first(index, query, **kwargs):
    results = index.search(query, **kwargs)
    assert results, f"nothing found for {query!r}"
    return results[0]


def keys(results):
    """(type, id, position-or-section) of each result, for readable assertions."""
    return [(r["type"], r["id"], r.get("position", r.get("section"))) for r in results]


def visible(snippet):
    """The snippet as a reader sees it: tags dropped, entities decoded."""
    return html.unescape(re.sub(r"</?mark>", "", snippet))


def faq(id_, question, answer, product="drug"):
    return {**envelope("faq", id_), "product": product, "position": 1, "question": question, "answer": answer}


def product(id_, name, summary, **fields):
    return {**envelope("product", id_), "name": name, "non_proprietary_name": f"{id_}ase", "summary": summary,
            "how_it_works": {"text": "It works."}, "classes": [{"system": "pharmacologic", "name": "a class"}],
            **fields}


# --- typo tolerance and prefixes -------------------------------------------


@pytest.mark.parametrize("query", ["Hemgenix", "hemgenix", "HEMGENIX", "hemgenx", "hemgenics", "Hémgénix", "etrana"])
def test_hemgenix_variants_find_the_product_first(index, query):
    top = first(index, query)
    assert (top["type"], top["id"]) == ("product", "hemgenix")


def test_one_edit_in_a_seven_letter_word(index):
    assert first(index, "alprolx")["id"] == "alprolix"


def test_prefix_of_four_letters_or_more(index):
    assert first(index, "alpro")["id"] == "alprolix"


@pytest.mark.parametrize("query", [
    "hemgnx",   # 6 letters, 2 edits: only 1 allowed
    "alprlx",   # 6 letters, 2 edits
    "hmgenicks",  # 9 letters, 3 edits: only 2 allowed
    "alp",      # 3 letters: no prefix matching
    "hem",
])
def test_edits_and_prefixes_are_bounded(index, query):
    assert all(r["id"] not in ("hemgenix", "alprolix") or r["type"] != "product" for r in index.search(query))


def test_short_words_match_exactly(index):
    # "fc" is a word in Alprolix; without exact-only short words it would also
    # reach "fcrn", "for", "of"...
    assert keys(index.search("fc")) == [("product", "alprolix", None)]
    assert index.search("hep") == []


# --- non-proprietary names and codes --------------------------------------


@pytest.mark.parametrize("query, expected", [
    ("etranacogene", "hemgenix"),
    ("nonacog", "benefix"),
    ("concizumab", "alhemo"),
    ("eftrenonacog", "alprolix"),
    ("albutrepenonacog", "idelvion"),
    ("etranacogene dezaparvovec", "hemgenix"),
    ("AMT-061", "hemgenix"),
])
def test_non_proprietary_names_and_codes(index, query, expected):
    top = first(index, query)
    assert (top["type"], top["id"]) == ("product", expected)


def test_class_codes(index):
    assert {r["id"] for r in index.search("B02BD04")} == {"alprolix", "benefix", "idelvion"}


# --- words inside bodies and answers ---------------------------------------


def test_word_in_a_section_body(index):
    results = index.search("corticosteroids")
    assert ("mechanism_section", "hemgenix-mechanism", "immune-system") in keys(results)
    assert keys(results)[0] == ("mechanism_section", "hemgenix-mechanism", "immune-system")


def test_word_in_a_step_body_and_an_answer(index):
    found = keys(index.search("episome"))
    assert ("mechanism_step", "hemgenix-mechanism", 3) in found
    assert ("faq", "hemgenix-does-it-change-my-dna", None) in found


@pytest.mark.parametrize("query", ["39.0", "IU/dL", "iu/dl"])
def test_numbers_and_units_find_step_4(index, query):
    assert keys(index.search(query))[0] == ("mechanism_step", "hemgenix-mechanism", 4)


# --- ranking ---------------------------------------------------------------


def test_title_match_outranks_body_only_matches(index):
    results = index.search("vector")
    assert keys(results)[0] == ("mechanism_step", "hemgenix-mechanism", 1)


def test_question_outranks_repeated_word_in_an_answer():
    index = SearchIndex([
        faq("in-answer", "Something else?", " ".join(["ferritin levels"] * 30)),
        faq("in-question", "What is ferritin?", "A protein."),
    ])
    assert [r["id"] for r in index.search("ferritin")] == ["in-question", "in-answer"]


def test_name_outranks_body_only_matches():
    index = SearchIndex([
        product("mentions", "Other", "Unlike Zorvex, zorvex-free zorvex regimens exist. Zorvex zorvex."),
        product("zorvex", "Zorvex", "A product."),
    ])
    assert [r["id"] for r in index.search("zorvex")] == ["zorvex", "mentions"]


def test_padua_variant_ranks_full_matches_first(index):
    results = index.search("padua variant")
    # Both put the phrase in their title and their body; either may lead.
    assert set(keys(results)[:2]) == {("faq", "hemgenix-what-is-the-padua-variant", None),
                                      ("mechanism_step", "hemgenix-mechanism", 2)}
    assert all("padua" in r["title"].lower() for r in results[:2])


def test_matching_all_words_beats_matching_some():
    index = SearchIndex([
        faq("one-word", "Variant variant variant?", "Variant variant variant variant."),
        faq("both-words", "Something?", "The padua variant, once."),
        faq("unrelated", "Nothing?", "Nothing here."),
    ])
    results = index.search("padua variant")
    assert [r["id"] for r in results] == ["both-words", "one-word"]
    assert results[0]["score"] > results[1]["score"]


def test_more_matched_words_rank_higher():
    index = SearchIndex([
        faq("two", "Alpha alpha beta?", "Alpha beta alpha beta."),
        faq("three", "Something?", "alpha beta gamma"),
        faq("one", "Alpha alpha alpha?", "Alpha alpha alpha alpha."),
    ])
    assert [r["id"] for r in index.search("alpha beta gamma")] == ["three", "two", "one"]


def test_scores_are_positive_rounded_and_descending(index):
    for query in ("hemgenix", "padua variant", "liver cancer risk", "factor"):
        scores = [r["score"] for r in index.search(query, limit=50)]
        assert scores == sorted(scores, reverse=True)
        assert all(isinstance(s, float) and s > 0 and round(s, 4) == s for s in scores)


# --- result shape ----------------------------------------------------------


def test_result_shape_for_every_type(index):
    seen = set()
    for query in ("hemgenix", "immune", "padua", "liver"):
        for result in index.search(query, limit=50):
            kind = result["type"]
            seen.add(kind)
            assert set(result) == RESULT_KEYS | EXTRA_KEYS[kind], result
            assert isinstance(result["title"], str) and result["title"]
    assert seen == set(SearchIndex.TYPES)


def test_result_fields(index):
    top = first(index, "hemgenix", types={"product"})
    assert {key: top[key] for key in ("type", "id", "product", "title", "href")} == {
        "type": "product", "id": "hemgenix", "product": "hemgenix", "title": "Hemgenix",
        "href": "/v1/products/hemgenix"}
    step = first(index, "episome", types=["mechanism_step"])
    assert step["id"] == "hemgenix-mechanism" and step["product"] == "hemgenix" and step["position"] == 3
    assert step["title"] == "After Infusion — The Gene Reaches the Liver"
    assert step["href"] == "/v1/products/hemgenix/mechanism"
    section = first(index, "corticosteroids", types=["mechanism_section"])
    assert section["section"] == "immune-system" and section["title"] == "Why the Immune System Can Complicate Things"
    assert section["href"] == "/v1/products/hemgenix/mechanism"
    question = first(index, "dna", types=["faq"])
    assert question["id"] == "hemgenix-does-it-change-my-dna" and question["product"] == "hemgenix"
    assert question["title"] == "Does Hemgenix change my DNA?"
    assert question["href"] == "/v1/faqs/hemgenix-does-it-change-my-dna"


# --- filters ---------------------------------------------------------------


@pytest.mark.parametrize("types", [{"faq"}, ["mechanism_step", "mechanism_section"], ("product",), "faq"])
def test_type_filter(index, types):
    wanted = {types} if isinstance(types, str) else set(types)
    results = index.search("hemgenix", types=types, limit=50)
    assert results and {r["type"] for r in results} <= wanted


def test_unknown_or_empty_type_filter_finds_nothing(index):
    assert index.search("hemgenix", types={"article"}) == []
    assert index.search("hemgenix", types=set()) == []


def test_limit(index):
    everything = index.search("hemgenix", limit=100)
    assert len(everything) > 3
    assert index.search("hemgenix", limit=3) == everything[:3]
    assert len(index.search("hemgenix")) == min(10, len(everything))
    assert index.search("hemgenix", limit=0) == []


# --- snippets --------------------------------------------------------------


def test_snippet_marks_the_matched_word(index):
    step = first(index, "episome", types={"mechanism_step"})
    assert "<mark>episome</mark>" in step["snippet"]


def test_snippet_marks_typos_and_prefixes_with_the_original_text(index):
    assert "<mark>Hemgenix</mark>" in first(index, "hemgenx")["snippet"]
    assert "<mark>etranacogene</mark>" in first(index, "etrana")["snippet"]


def test_snippet_marks_every_matched_word(index):
    snippet = first(index, "padua variant", types={"faq"})["snippet"]
    assert "<mark>Padua</mark> <mark>variant</mark>" in snippet
    # Nothing outside a mark is a query word.
    assert not re.search(r"\b(padua|variant)\b", re.sub(r"<mark>.*?</mark>", "", snippet), re.I)


def test_snippet_is_short_and_cut_with_ellipses(index):
    for result in index.search("hemgenix liver gene", limit=50):
        assert len(visible(result["snippet"]).strip("…")) <= 200, result["snippet"]
    step = first(index, "episome", types={"mechanism_step"})
    assert step["snippet"].startswith("…") and step["snippet"].endswith("…")


def test_snippet_window_follows_the_match_in_long_text():
    words = " ".join(f"word{n}" for n in range(400))
    index = SearchIndex([faq("long", "A question?", f"{words} needle {words}")])
    snippet = index.search("needle")[0]["snippet"]
    assert snippet.startswith("…") and snippet.endswith("…")
    assert "<mark>needle</mark>" in snippet
    assert len(visible(snippet)) <= 202
    # Cut between words, never inside one.
    assert re.fullmatch(r"…(word\d+ )+<mark>needle</mark>( word\d+)+…", snippet)


def test_snippet_escapes_html():
    index = SearchIndex([product("drug", "Drug", "Take <b>one</b> dose & rest; \"quoted\" needle.")])
    snippet = index.search("needle")[0]["snippet"]
    assert "<b>" not in snippet and "&lt;b&gt;one&lt;/b&gt;" in snippet and "&amp; rest" in snippet
    assert "<mark>needle</mark>" in snippet
    assert visible(snippet) == "Take <b>one</b> dose & rest; \"quoted\" needle."


def test_snippet_text_is_markdown_free_and_on_one_line(index):
    snippet = first(index, "neutralizing", types={"faq"})["snippet"]
    assert "**" not in snippet and "\n" not in snippet
    assert "<mark>Neutralizing</mark>" in snippet


def test_snippet_prefers_the_body_to_the_title(index):
    # The title is shown next to the snippet; repeating it wastes the space.
    step = first(index, "padua", types={"mechanism_step"})
    assert step["position"] == 2
    assert visible(step["snippet"]).startswith("The gene delivered by Hemgenix")


# --- robustness ------------------------------------------------------------


@pytest.mark.parametrize("query", [
    "", "   ", "\n\t", "!!!", "?", "🙂", "🙂🙂 🙂", "a" * 500, "<script>", "<script>alert(1)</script>",
    "hemgenix" * 50, " ".join(["hemgenix"] * 50), "\x00", "\ud800", "İ", "ß", "½", "٣٤", "日本語", "a" * 10_000,
    "%", "'; DROP TABLE --", "--", "...", "-hemgenix-", "e\u0301tranacogene",
])
def test_never_raises(index, query):
    results = index.search(query)
    assert isinstance(results, list)
    for result in results:
        assert set(result) >= RESULT_KEYS


@pytest.mark.parametrize("query", ["", "   ", "!!!", "🙂", "a" * 500, "<script>", "hemgenix" * 50, "zzzzqqq"])
def test_nothing_matching_gives_empty_list(index, query):
    assert index.search(query) == []


def test_decomposed_accents_match(index):
    assert first(index, "e\u0301tranacoge\u0300ne")["id"] == "hemgenix"


def test_empty_index():
    empty = SearchIndex([])
    assert empty.search("hemgenix") == []
    assert empty.search("") == []
    assert SearchIndex(iter(())).search("hemgenix", types={"faq"}) == []


def test_ignores_types_it_does_not_index():
    index = SearchIndex(minimal_documents())
    results = index.search("drug a source writer condition about", limit=50)
    assert results and {r["type"] for r in results} <= set(SearchIndex.TYPES)
    assert SearchIndex([d for d in minimal_documents() if d["type"] in ("source", "person", "article")]).search(
        "source writer about") == []


def test_minimal_documents_every_type():
    index = SearchIndex(minimal_documents())
    assert keys(index.search("drugamab")) == [("product", "drug", None)]
    assert keys(index.search("second")) == [("mechanism_step", "drug-mechanism", 2)]
    assert keys(index.search("cause")) == [("mechanism_section", "drug-mechanism", "root-cause")]
    assert ("faq", "drug-q1", None) in keys(index.search("q1"))


def test_accepts_a_generator_and_does_not_change_documents(shipped):
    before = copy.deepcopy(shipped)
    index = SearchIndex(document for document in shipped)
    assert first(index, "hemgenix")["id"] == "hemgenix"
    assert shipped == before


def test_tolerates_missing_optional_fields():
    bare = {**envelope("product", "bare"), "name": "Bare", "non_proprietary_name": "barease"}
    index = SearchIndex([bare, {**envelope("mechanism", "m"), "product": "bare", "steps": []}, {"type": "faq"}])
    assert keys(index.search("barease")) == [("product", "bare", None)]
    assert index.search("bare")[0]["snippet"]
