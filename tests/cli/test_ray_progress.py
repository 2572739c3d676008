"""`ingest --ray` progress: the one Ray stage is shown in files, with the chunks embedded so far
(their total is unknown while Ray still chunks), not as a token count out of zero."""

from __future__ import annotations

import importlib

from rich.progress import Progress

from ragortune.kb.ray_engine import RAY_STAGE
from ragortune.kb.sync import SyncProgress


def test_the_ray_stage_counts_files_and_the_chunks_embedded_so_far():
    cli_app = importlib.import_module("ragortune.cli.app")  # the package shadows it with `app`
    progress = Progress(disable=True)
    task = progress.add_task("ingest", total=None)
    update = cli_app.sync_progress(progress, task, "ingest")
    update(SyncProgress(RAY_STAGE, 1, 3, 40))
    update(SyncProgress(RAY_STAGE, 2, 3, 1234))
    shown = progress.tasks[0]
    assert shown.description == "ingest on Ray"
    assert (shown.completed, shown.total) == (2, 3)
    assert shown.fields["detail"] == "2/3 files, 1,234 chunks embedded"
    update(SyncProgress("embedding", 10, 100, 1, 4))
    assert progress.tasks[0].fields["detail"] == "1/4 chunks, 10/100 tokens"
