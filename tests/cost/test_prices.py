"""The price book: maintained prices, packaged data with sources, and user overrides."""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path

import pytest

from ragortune.cost.analysis import price_book_for
from ragortune.cost.prices import PriceBook, load_price_file
from ragortune.cost.scenario import load_scenario
from ragortune.errors import ConfigError, InputError

from .helpers import MINIMAL, cli_json


def _data(name: str) -> dict:
    return tomllib.loads(resources.files("ragortune").joinpath("data", name).read_text("utf-8"))


def test_every_packaged_price_row_names_its_source_and_date():
    rows = _data("finetune_prices.toml")["model"] + _data("gpu_prices.toml")["gpu"]
    assert rows
    for row in rows:
        assert row["source"].startswith("https://"), row
        assert len(row["as_of"]) >= 7, row
    gpus = {row["gpu"] for row in _data("gpu_prices.toml")["gpu"]}
    assert {"A10G", "L4", "A100-80GB", "H100"} <= gpus


def test_gpu_names_aliases_and_provider_suffix_pick_the_right_row():
    book = PriceBook()
    assert book.gpu_hour("A100").ref == "modal/A100-80GB"
    assert book.gpu_hour("h100@lambda").ref == "lambda/H100"
    assert book.gpu_hour("L4").unit == "USD per GPU-hour"


def test_unknown_model_price_is_a_config_error_that_says_how_to_add_it():
    with pytest.raises(ConfigError, match=r'\[prices.models."no-such-model"\] train_mtok'):
        PriceBook().get("no-such-model", "train_mtok", "models.finetune")
    with pytest.raises(ConfigError, match="A10G"):
        PriceBook().gpu_hour("Z9000")


def test_yaml_price_file_overrides_genai_prices_and_names_its_origin(tmp_path: Path):
    path = tmp_path / "prices.yaml"
    path.write_text("models:\n  gpt-4o-mini:\n    input_mtok: 0.10\ngpus:\n  A10G: 1.5\n")
    book = PriceBook(load_price_file(path))
    price = book.get("gpt-4o-mini", "input_mtok")
    assert price.usd == 0.10 and price.source == f"override: {path}"
    assert book.get("gpt-4o-mini", "output_mtok").source.startswith("genai-prices")
    assert book.gpu_hour("a10g").usd == 1.5


def test_price_layers_cli_file_beats_scenario_beats_ragortune_toml(tmp_path: Path):
    (tmp_path / "ragortune.toml").write_text(
        '[prices.models."gpt-4o-mini"]\ninput_mtok = 0.11\noutput_mtok = 0.55\n'
        '[prices.gpus]\nL4 = 0.5\n')
    scenario_path = tmp_path / "s.toml"
    scenario_path.write_text(MINIMAL + '[prices.models."gpt-4o-mini"]\ninput_mtok = 0.12\n')
    cli_file = tmp_path / "p.toml"
    cli_file.write_text('[models."gpt-4o-mini"]\ninput_mtok = 0.13\n')
    scenario = load_scenario(scenario_path)

    book = price_book_for(scenario, scenario_path, cli_file, project_dir=tmp_path)
    assert book.get("gpt-4o-mini", "input_mtok").usd == 0.13
    assert book.get("gpt-4o-mini", "output_mtok").usd == 0.55
    assert book.gpu_hour("L4").usd == 0.5
    book = price_book_for(scenario, scenario_path, None, project_dir=tmp_path)
    assert book.get("gpt-4o-mini", "input_mtok").usd == 0.12
    assert "s.toml [prices]" in book.get("gpt-4o-mini", "input_mtok").source


def test_a_misspelt_price_key_is_an_input_error_naming_file_and_field(tmp_path: Path):
    path = tmp_path / "bad.toml"
    path.write_text('[models."gpt-4o-mini"]\ninput_price = 0.1\n')
    with pytest.raises(InputError, match=r"bad.toml.*models.gpt-4o-mini.input_price"):
        load_price_file(path)


def test_prices_command_lists_packaged_tables_and_overrides(cli, tmp_path: Path):
    (tmp_path / "ragortune.toml").write_text("[prices.gpus]\nA10G = 1.5\n")
    data = cli_json(cli, "prices")
    assert data["genai_prices_version"]
    assert any(r["model"] == "gpt-4o" and r["train_mtok"] == 25.0 for r in data["finetune"])
    assert any(r["gpu"] == "H100" for r in data["gpus"])
    assert data["overrides"][0]["gpus"] == {"a10g": 1.5}
    gpu = cli_json(cli, "prices", "A10G")
    assert gpu["gpu_hour"]["usd"] == 1.5 and "ragortune.toml" in gpu["gpu_hour"]["source"]
    text = cli("prices").stdout
    assert "gpt-4o-mini" in text and "H100" in text
