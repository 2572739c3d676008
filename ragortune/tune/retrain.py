"""Retraining: a new adapter on new question/answer pairs, made the way an existing one was.

A LoRA adapter does not take a fact edit in place; keeping a fine-tuned arm current means
building the data again and training again. `retrain` reads how the adapter was made (its
`ragortune_train.json`, which carries `tune build`'s record) and repeats both steps on the
new pairs, measuring what that costs: wall and CPU seconds, tokens.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ragortune.errors import InputError
from ragortune.io import read_json
from ragortune.tune.dataset import (
    BUILD_FILE,
    BuildResult,
    Paraphraser,
    build_dataset,
    llm_paraphraser,
)
from ragortune.tune.train import RUN_FILE, Progress, TrainConfig, TrainResult, train


@dataclass(frozen=True)
class Retrained:
    """The new adapter and what making it cost (measured, not estimated)."""

    adapter: str
    build: BuildResult
    train: TrainResult
    build_seconds: float  # `tune build` on the new pairs (paraphrasing included)
    seconds: float  # wall: build + model load + training + save
    cpu_seconds: float  # process CPU time (all threads) over the same span


def adapter_recipe(adapter: str | Path) -> tuple[TrainConfig, dict[str, Any]]:
    """(training settings, `tune build` settings) an adapter was made with, from its record."""
    record_path = Path(adapter) / RUN_FILE
    if not record_path.is_file():
        raise InputError(f"{adapter}: no {RUN_FILE}; retraining repeats a `ragortune tune train` "
                         "run: give an adapter folder that command wrote")
    record = read_json(record_path, "train the adapter again")
    build = record.get("dataset_build")
    if not build or "settings" not in build:
        raise InputError(
            f"{adapter}: its training data was not made by `ragortune tune build` (no {BUILD_FILE} "
            "beside it), so it cannot be rebuilt from new questions the same way: build the data "
            "with `ragortune tune build`, train again, and retrain that adapter"
        )
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    config = {k: v for k, v in record["config"].items() if k in known}
    config["target_modules"] = tuple(config.get("target_modules", ()))
    return TrainConfig(**config), build["settings"]


def recorded_paraphraser(spec: dict[str, Any] | None) -> Paraphraser:
    """The paraphrasing model a build record names: local (smollm2, HF id, path) or served."""
    if not spec or not spec.get("llm"):
        raise InputError("the adapter's data had paraphrases but its record does not say which "
                         "model wrote them: build and train it again with `ragortune tune build`")
    if spec.get("base_url"):
        from ragortune.generate.openai_compat import OpenAICompatLLM

        key = os.environ.get(spec.get("api_key_env") or "OPENAI_API_KEY")
        return llm_paraphraser(OpenAICompatLLM(spec["llm"], spec["base_url"], key))
    from ragortune.generate.local import LocalLLM

    return llm_paraphraser(LocalLLM.load(spec["llm"]))


def retrain(
    adapter: str | Path,
    source: str | Path,
    out: str | Path,
    *,
    on_progress: Callable[[Progress], None] | None = None,
    paraphrase: Paraphraser | None = None,
) -> Retrained:
    """Build chat data from `source` (BEIR queries with `answers`) with the settings `adapter`'s
    data was built with, train a fresh adapter with its training settings into `out/adapter`
    (data in `out/data`), and measure the whole of it. `paraphrase` overrides the recorded
    paraphrasing model (tests, or a key the record cannot hold)."""
    cfg, settings = adapter_recipe(adapter)
    out = Path(out)
    started, cpu_started = time.perf_counter(), time.process_time()
    if settings.get("n_paraphrases", 0) > 0 and paraphrase is None \
            and not settings.get("paraphrase_file"):
        paraphrase = recorded_paraphraser(settings.get("paraphraser"))
    built = build_dataset(
        source, out / "data", system=settings.get("system"), refusal=settings.get("refusal"),
        validation=settings.get("validation", 0.0), split_by=settings.get("split_by", "fact"),
        seed=settings.get("seed", 0), paraphrase=paraphrase,
        n_paraphrases=settings.get("n_paraphrases", 0), paraphraser=settings.get("paraphraser"),
        paraphrase_file=settings.get("paraphrase_file"),
        original_wording=settings.get("original_wording", True),
    )
    build_seconds = time.perf_counter() - started
    new_cfg = dataclasses.replace(
        cfg, data=str(built.train_path),
        validation=str(built.validation_path) if cfg.validation and built.validation_path else None,
        out=str(out / "adapter"), resume=False, keep_checkpoints=False,
    )
    result = train(new_cfg, on_progress=on_progress)
    return Retrained(
        adapter=result.adapter, build=built, train=result, build_seconds=round(build_seconds, 3),
        seconds=round(time.perf_counter() - started, 3),
        cpu_seconds=round(time.process_time() - cpu_started, 3),
    )
