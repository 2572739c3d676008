"""Renames and moves: what is embedded decides what a rename costs. The title is part of the
embedded text; a title from the document's content survives a rename, so nothing is
re-embedded; a title derived from the file name changes with it, and so do the vectors."""

from __future__ import annotations

from ragortune.kb import open_kb
from ragortune.kb.sync import sync
from ragortune.retrieve import search

LEAVE = ("# Leave policy\n\n## Annual\n\nEmployees get 25 days of paid leave per year.\n\n"
         "## Sick\n\nSick leave needs a doctor's note after 3 days.\n")
HOURS = "Support is open from 9:00 to 17:00 CET on working days.\n"


def test_moving_or_renaming_a_file_with_its_own_title_embeds_nothing(tmp_path, embedder):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "leave.md").write_text(LEAVE)
    kb = open_kb(tmp_path / "kb", embedder=embedder, create=True)
    first = sync(kb, [docs])
    (docs / "policies").mkdir()
    (docs / "leave.md").rename(docs / "policies" / "time-off.md")
    moved = sync(kb, [docs])
    assert (moved.added, moved.deleted) == (1, 1)
    assert moved.chunks_embedded == 0 and moved.chunks_reused == first.chunks_embedded
    assert search(kb, "paid leave days", k=1)[0].source.endswith("policies/time-off.md")


def test_renaming_a_file_titled_by_its_name_re_embeds_its_chunks(tmp_path, embedder):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "support-hours.txt").write_text(HOURS)
    kb = open_kb(tmp_path / "kb", embedder=embedder, create=True)
    first = sync(kb, [docs])
    # The file name is the title, and the title is searchable: why it is embedded at all.
    assert search(kb, "support hours", k=1, mode="bm25")[0].title == "support hours"
    (docs / "support-hours.txt").rename(docs / "helpdesk-schedule.txt")
    renamed = sync(kb, [docs])
    assert renamed.chunks_embedded == first.chunks_embedded and renamed.chunks_reused == 0
    hit = search(kb, "helpdesk schedule", k=1, mode="bm25")[0]
    assert hit.title == "helpdesk schedule" and hit.source.endswith("helpdesk-schedule.txt")
