"""Scenario files: documented defaults, and errors that name the file and the field."""

from __future__ import annotations

import pytest

from ragortune.cost.scenario import load_scenario
from ragortune.errors import InputError

from .helpers import EXAMPLES, MINIMAL


def test_minimal_scenario_gets_documented_defaults(write_scenario):
    s = load_scenario(write_scenario())
    assert s.corpus.total_tokens == 2_500_000
    assert s.horizon_months == 24
    assert (s.traffic.top_k, s.traffic.chunk_tokens) == (4, 300)
    assert s.finetune.epochs == 3
    assert s.models.embedding == "text-embedding-3-small"


def test_misspelt_field_is_named_with_its_table(write_scenario):
    path = write_scenario(MINIMAL.replace("queries_per_month", "queries_per_mnth"))
    with pytest.raises(InputError) as err:
        load_scenario(path)
    message = str(err.value)
    assert str(path) in message
    assert "traffic.queries_per_mnth" in message and "unknown field" in message
    assert "traffic.queries_per_month" in message and "missing" in message


def test_out_of_range_value_is_named(write_scenario):
    path = write_scenario(MINIMAL + "[finetune]\nepochs = 0\n")
    with pytest.raises(InputError, match=r"field 'finetune.epochs': .*greater than or equal to 1"):
        load_scenario(path)


def test_corpus_size_must_be_given_exactly_once(write_scenario):
    path = write_scenario(MINIMAL.replace("tokens_per_document = 500",
                                          "tokens_per_document = 500\ntokens = 9"))
    with pytest.raises(InputError, match="exactly one of 'tokens'"):
        load_scenario(path)


def test_broken_toml_and_missing_file_are_input_errors(write_scenario, tmp_path):
    with pytest.raises(InputError, match="not valid TOML"):
        load_scenario(write_scenario("name = \n"))
    with pytest.raises(InputError, match="not found"):
        load_scenario(tmp_path / "nope.toml")


def test_every_example_scenario_loads_and_states_its_expected_answer():
    paths = sorted(EXAMPLES.glob("*.toml"))
    assert len(paths) == 8
    for path in paths:
        scenario = load_scenario(path)
        assert scenario.expected is not None, path
        assert scenario.description, path


def test_scenario_readme_documents_every_field():
    from ragortune.cost import scenario as module

    readme = (EXAMPLES / "README.md").read_text(encoding="utf-8")
    tables = {"corpus": module.Corpus, "traffic": module.Traffic, "models": module.Models,
              "finetune": module.FineTune, "labour": module.Labour, "serving": module.Serving,
              "vector_store": module.VectorStore, "profile": module.Profile,
              "uncertainty": module.Uncertainty, "expected": module.Expected}
    for table, model in tables.items():
        assert f"[{table}]" in readme, table
        for field in model.model_fields:
            assert f"{field} =" in readme, f"{table}.{field}"
    for field in ("name", "description", "horizon_months"):
        assert f"{field} =" in readme
