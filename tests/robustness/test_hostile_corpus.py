"""Issue 16 item 2: a hostile corpus through the real `ragortune ingest`: no traceback, every
bad file reported with its reason, every good one indexed, and nothing deleted when a
subfolder cannot be read."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from tests.robustness.hostile import (indexed_sources, make_corpus, ragortune_command,
                                      run_measured, skipped_by_name)

NOBODY = 65534
PEAK_RSS_LIMIT_KIB = 3 * 2**20  # 3 GiB: the shipped embedder plus bounded file reads


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    # World-traversable, so a second run can go as a non-root user (root reads chmod 000).
    base = Path(tempfile.mkdtemp(prefix="ragortune-hostile-"))
    os.chmod(base, 0o755)
    corpus = make_corpus(base / "docs")
    kb = base / "kb"
    result, peak = run_measured(ragortune_command("ingest", str(corpus.root), "--kb", str(kb),
                                                  "--json"))
    yield corpus, kb, result, peak
    os.chmod(corpus.root / corpus.unreadable, 0o755)
    shutil.rmtree(base, ignore_errors=True)


def test_ingest_of_a_hostile_corpus_exits_0_without_a_traceback(hostile):
    _, _, result, peak = hostile
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    assert 0 < peak < PEAK_RSS_LIMIT_KIB


def test_every_bad_file_is_reported_with_its_reason(hostile):
    corpus, _, result, _ = hostile
    report = json.loads(result.stdout)
    skipped = skipped_by_name(report, corpus.root)
    assert len(corpus.bad) >= 30
    for name, reason in corpus.bad.items():
        assert name in skipped, f"{name} not reported; reported: {sorted(skipped)}"
        assert reason.lower() in skipped[name].lower(), (name, skipped[name])
    assert report["documents"]["skipped"] == len(report["skipped_files"])
    assert not any(".hidden" in name for name in skipped)


def test_every_good_file_is_indexed_and_nothing_from_a_bad_one(hostile):
    corpus, kb, result, _ = hostile
    sources = indexed_sources(kb)
    root = str(corpus.root.resolve())
    wanted = {f"{root}/{name}" for name in corpus.good}
    assert wanted <= sources, sorted(wanted - sources)
    assert not any(s.removeprefix(root + "/") in corpus.bad for s in sources)
    manifest = json.loads((kb / "manifest.json").read_text())
    texts = " ".join(doc["title"] for doc in manifest["documents"].values())
    assert "root:x:0:0" not in texts
    report = json.loads(result.stdout)
    assert report["documents"]["added"] == len(manifest["documents"])


def test_search_finds_good_text_and_never_the_file_a_symlink_points_out_to(hostile):
    _, kb, _, _ = hostile
    result, _ = run_measured(ragortune_command("search", "root x 0 0 bin bash", "--kb", str(kb),
                                               "--json", "--min-score", "-1"))
    assert result.returncode == 0, result.stderr[-2000:]
    hits = json.loads(result.stdout)["hits"]
    assert hits and not any("root:x:0:0" in hit["text"] for hit in hits)
    result, _ = run_measured(ragortune_command("search", "How long until a refund is paid?",
                                               "--kb", str(kb), "--json", "--min-score", "-1"))
    assert "14 days" in json.loads(result.stdout)["hits"][0]["text"]


def as_a_user_the_mode_applies_to(command: list[str]) -> list[str]:
    """Root reads a chmod 000 folder; root without the two capabilities that let it does not,
    as an ordinary user would not (setpriv from util-linux)."""
    if os.geteuid() != 0:
        return command
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root and setpriv is absent: cannot drop DAC capabilities")
    return [setpriv, "--inh-caps=-all", "--bounding-set=-dac_override,-dac_read_search",
            *command]


def test_a_subfolder_that_cannot_be_read_keeps_its_indexed_documents(hostile):
    """`chmod 000 docs/sub` then a re-sync as a user the mode applies to: reported, and
    nothing deleted (a permission or mount problem must never delete indexed knowledge)."""
    corpus, kb, _, _ = hostile
    locked = corpus.root / corpus.unreadable
    command = as_a_user_the_mode_applies_to(
        ragortune_command("ingest", str(corpus.root), "--kb", str(kb), "--json"))
    before = indexed_sources(kb)
    assert f"{corpus.root.resolve()}/{corpus.unreadable_good[0]}" in before
    os.chmod(locked, 0)
    try:
        result, _ = run_measured(command)
    finally:
        os.chmod(locked, 0o755)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout)
    assert report["documents"]["deleted"] == 0
    assert report["chunks_deleted"] == 0
    assert "cannot read" in skipped_by_name(report, corpus.root)[corpus.unreadable]
    assert indexed_sources(kb) == before
    again, _ = run_measured(command)  # readable again: nothing to do
    assert json.loads(again.stdout)["documents"] == {**json.loads(again.stdout)["documents"],
                                                     "added": 0, "updated": 0, "deleted": 0}
