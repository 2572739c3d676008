"""Search modes over a real LanceDB KB: what each mode finds, the score gate, BM25 per version."""

import pytest

from ragortune.errors import InputError
from ragortune.kb import open_kb
from ragortune.kb.sync import sync
from ragortune.retrieve import convex_fusion, search

DOCS = {
    "pricing.md": "# Pricing\n\nThe Pro plan costs $49 per month. The Team plan costs $99 per month.\n",
    "leave.md": "# Leave\n\nEmployees get 25 days of paid leave per year.\n",
    "routers.txt": "Configuring routers: set the uplink port before enabling the firewall.\n",
    "lunch.txt": "The canteen serves vegetarian lunches on Fridays.\n",
}


@pytest.fixture
def kb(tmp_path, embedder):
    folder = tmp_path / "docs"
    folder.mkdir()
    for name, text in DOCS.items():
        (folder / name).write_text(text)
    kb = open_kb(tmp_path / "kb", embedder=embedder, create=True)
    sync(kb, [folder])
    return kb


def test_bm25_matches_stemmed_words_and_ignores_stop_words(kb):
    hits = search(kb, "configured router", k=2, mode="bm25")
    assert hits[0].source.endswith("routers.txt")
    assert search(kb, "the of and", k=3, mode="bm25") == []


def test_dense_finds_a_paraphrase_with_no_shared_word(kb):
    assert search(kb, "How much is the subscription?", k=1, mode="dense")[0].source.endswith(
        "pricing.md")


def test_hybrid_scores_lie_in_0_1_and_rank_the_answer_first(kb):
    hits = search(kb, "how many days of paid leave", k=4, mode="hybrid")
    assert hits[0].source.endswith("leave.md")
    assert all(0.0 <= hit.score <= 1.0 for hit in hits)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_min_score_returns_nothing_rather_than_weak_hits(kb):
    assert search(kb, "quantum chromodynamics lattice gauge", k=3, min_score=0.5) == []
    strong = search(kb, "Pro plan price per month", k=3, min_score=0.3)
    assert strong and all(hit.similarity >= 0.3 for hit in strong)


def test_a_reader_pinned_before_an_edit_keeps_its_own_bm25_index(kb, tmp_path):
    before = kb.reader()
    (tmp_path / "docs" / "lunch.txt").write_text("The canteen now serves ramen on Fridays.\n")
    sync(kb, [tmp_path / "docs"])
    assert before.text_search("ramen", 3) == []
    assert kb.reader().text_search("ramen", 3)[0].source.endswith("lunch.txt")


def test_unknown_mode_and_bad_k_are_user_errors(kb):
    with pytest.raises(InputError, match="unknown search mode"):
        search(kb, "x", mode="fuzzy")
    with pytest.raises(InputError, match="at least 1"):
        search(kb, "x", k=0)


def test_convex_fusion_normalises_each_ranking_and_absent_counts_zero():
    fused = convex_fusion([[("a", 0.9), ("b", 0.5)], [("b", 12.0), ("c", 4.0)]], [0.5, 0.5])
    assert fused == pytest.approx({"a": 0.5, "b": 0.5, "c": 0.0})
