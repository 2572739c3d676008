"""`ingest --ray`: the demo corpus loaded, chunked and embedded on a local two-node Ray cluster
gives the KB the local path gives (same chunk ids, manifest and search results), and a second
run skips everything, as the local path does."""

from __future__ import annotations

from pathlib import Path

import pytest

from ragortune.kb import open_kb
from ragortune.kb.ray_engine import RAY_STAGE, RayEngine
from ragortune.kb.sync import SyncProgress, sync
from ragortune.retrieve import search

ray = pytest.importorskip("ray", reason="Ray tests need the scale extra: "
                                        "pip install -e '.[scale]'")

DEMO = Path(__file__).resolve().parents[2] / "examples" / "demo_kb" / "v1"
QUERIES = ("how do I rotate an API key", "refund policy", "what changed in the release")


@pytest.fixture(scope="module")
def cluster():
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    cluster.add_node(num_cpus=1)
    ray.init(address=cluster.address, include_dashboard=False, log_to_driver=False)
    yield cluster
    ray.shutdown()
    cluster.shutdown()


def test_ray_ingest_gives_the_local_kb_and_skips_unchanged_documents(cluster, embedder,
                                                                       tmp_path):
    local = open_kb(tmp_path / "local", embedder=embedder, create=True)
    on_ray = open_kb(tmp_path / "ray", embedder=embedder, create=True)
    expected = sync(local, [DEMO])
    engine = RayEngine(cluster.address, workers=2, cpus_per_worker=0.4)
    events: list[SyncProgress] = []
    report = sync(on_ray, [DEMO], engine=engine, on_progress=events.append)
    assert (report.added, report.chunks_embedded) == (expected.added, expected.chunks_embedded)
    assert report.embedding_tokens == expected.embedding_tokens
    assert on_ray.load_manifest().documents == local.load_manifest().documents
    ids = {c.chunk_id for c in on_ray.chunks()}
    assert ids == {c.chunk_id for c in local.chunks()} and len(ids) == report.chunks_embedded
    for query in QUERIES:
        for mode in ("dense", "hybrid"):
            mine, theirs = (search(kb, query, k=5, mode=mode) for kb in (on_ray, local))
            assert [h.chunk_id for h in mine] == [h.chunk_id for h in theirs]
            assert [h.similarity for h in mine] == pytest.approx(
                [h.similarity for h in theirs], abs=1e-5)
    again = sync(on_ray, [DEMO], engine=engine)
    assert (again.unchanged, again.added, again.chunks_embedded) == (expected.added, 0, 0)
    # The bar moves while Ray works: files done (of a total known up front) and chunks
    # embedded so far, both only growing, ending at what the report counts.
    on_ray_events = [e for e in events if e.stage == RAY_STAGE]
    files = len({d["source"] for d in local.load_manifest().documents.values()})
    assert len(on_ray_events) >= 2 and {e.total for e in on_ray_events} == {files}
    assert [e.done for e in on_ray_events] == sorted(e.done for e in on_ray_events)
    assert [e.chunks_embedded for e in on_ray_events] == sorted(
        e.chunks_embedded for e in on_ray_events)
    assert (on_ray_events[-1].done, on_ray_events[-1].chunks_embedded) == (
        files, report.chunks_embedded)
