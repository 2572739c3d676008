"""Retraining an adapter on new pairs the way it was made, on the tiny random-weights model."""

from __future__ import annotations

import json

import pytest

from ragortune.errors import InputError
from ragortune.tune.dataset import BUILD_FILE, build_dataset
from ragortune.tune.retrain import adapter_recipe, retrain
from ragortune.tune.train import RUN_FILE, TrainConfig, train

from .conftest import FACTS
from .test_dataset import lines, write_beir

SYSTEM = "Answer briefly."
REFUSAL = "I don't know."


@pytest.fixture(scope="module")
def v1_adapter(tmp_path_factory, tiny_model_dir):
    """Trained once for the module; tests only read it."""
    tmp_path = tmp_path_factory.mktemp("v1")
    beir = write_beir(tmp_path / "v1", FACTS[:4], extra=[{"_id": "u", "text": "Who?", "answers": []}])
    built = build_dataset(beir, tmp_path / "ft-v1", system=SYSTEM, refusal=REFUSAL, validation=0)
    out = tmp_path / "adapter-v1"
    train(TrainConfig(data=str(built.train_path), base=str(tiny_model_dir), out=str(out), epochs=1,
                      batch_size=2, lr=5e-3, lora_r=4, top_layers=1, seed=3))
    return out


def test_build_records_how_the_data_was_made(tmp_path):
    beir = write_beir(tmp_path / "kb")
    build_dataset(beir, tmp_path / "out", system=SYSTEM, refusal=REFUSAL, validation=0)
    record = json.loads((tmp_path / "out" / BUILD_FILE).read_text())
    assert record["source"] == str((beir).resolve())
    assert record["settings"]["system"] == SYSTEM and record["settings"]["refusal"] == REFUSAL
    assert record["settings"]["validation"] == 0 and record["n_train"] == len(FACTS)


def test_the_adapter_record_carries_the_build_record_and_cpu_time(v1_adapter):
    made = json.loads((v1_adapter / RUN_FILE).read_text())
    assert made["dataset_build"]["settings"]["system"] == SYSTEM
    assert made["cpu_seconds"] > 0


def test_top_layers_puts_adapters_on_the_last_layers_only(v1_adapter):
    from safetensors.torch import load_file

    keys = load_file(str(v1_adapter / "adapter_model.safetensors")).keys()
    layers = {int(k.split("layers.")[1].split(".")[0]) for k in keys}
    assert layers == {1}  # the tiny model has layers 0 and 1


def test_retrain_repeats_the_build_and_training_settings_on_new_pairs(tmp_path, v1_adapter):
    new_facts = [(q, a.replace("27", "30")) for q, a in FACTS[:6]]
    v2 = write_beir(tmp_path / "v2", new_facts)
    done = retrain(v1_adapter, v2, tmp_path / "retrain")
    assert done.adapter == str(tmp_path / "retrain" / "adapter")
    examples = lines(done.build.train_path)
    assert len(examples) == 6 and examples[0]["messages"][0] == {"role": "system", "content": SYSTEM}
    old, new = (json.loads((f / RUN_FILE).read_text()) for f in (v1_adapter, tmp_path / "retrain" / "adapter"))
    same = {k: v for k, v in old["config"].items() if k not in ("data", "out", "resume")}
    assert {k: new["config"][k] for k in same} == same  # lr, rank, layers, epochs, seed, ...
    assert new["data_sha256"] != old["data_sha256"] and new["examples"] == 6
    assert new["dataset_build"]["source"] == str(v2.resolve())
    assert done.train.tokens > 0 and done.seconds >= done.train.train_seconds > 0
    assert done.cpu_seconds > 0 and done.build_seconds > 0


def test_an_adapter_whose_data_was_not_built_by_tune_build_cannot_be_retrained(tmp_path, tiny_model_dir,
                                                                               chat_file):
    out = tmp_path / "adapter"
    train(TrainConfig(data=str(chat_file), base=str(tiny_model_dir), out=str(out), max_steps=1))
    with pytest.raises(InputError, match="not made by `ragortune tune build`"):
        adapter_recipe(out)
    with pytest.raises(InputError, match="no ragortune_train.json"):
        adapter_recipe(tmp_path)
