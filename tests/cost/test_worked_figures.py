"""The back-of-envelope figures practitioners quote, reproduced exactly by the cost model."""

from __future__ import annotations

import pytest

from ragortune.cost.prices import PriceBook, overrides_from_table
from ragortune.cost.scenario import parse_scenario
from ragortune.cost.tco import CostModel, context_tokens, gpu_cost, token_cost, training_tokens

from .helpers import cli_json

BOOK = PriceBook()


def _scenario(**tables: dict) -> dict:
    base = {"name": "worked", "horizon_months": 1,
            "corpus": {"documents": 5000, "tokens_per_document": 500},
            "traffic": {"queries_per_month": 0}}
    for key, value in tables.items():
        base[key] = {**base.get(key, {}), **value}
    return base


def test_embedding_5000_docs_of_500_tokens_costs_5_cents_with_text_embedding_3_small():
    price = BOOK.get("text-embedding-3-small", "input_mtok")
    assert price.usd == 0.02
    assert price.source.startswith("genai-prices")
    assert token_cost(2_500_000, price.usd) == pytest.approx(0.05, abs=1e-12)

    sim = CostModel(parse_scenario(_scenario()), BOOK).run()
    assert sim.derived["corpus_tokens_initial"] == 2_500_000  # the model's own product
    assert sim.options["rag"].lines["embedding_initial"][0] == pytest.approx(0.05, abs=1e-12)


def test_training_1000_examples_of_1000_tokens_is_25_dollars_per_epoch_and_75_for_3_epochs():
    # 1,000 x 1,000 = 1M tokens per epoch at $25/M (the gpt-4o training price).
    price = BOOK.get("gpt-4o", "train_mtok")
    assert price.usd == 25.0
    assert price.source == "ragortune/data/finetune_prices.toml"
    assert price.url and price.as_of
    assert token_cost(training_tokens(1000, 1000, 1), price.usd) == pytest.approx(25.0)
    assert token_cost(training_tokens(1000, 1000, 3), price.usd) == pytest.approx(75.0)

    scenario = parse_scenario(_scenario(
        models={"finetune": "gpt-4o"},
        finetune={"examples": 1000, "tokens_per_example": 1000}))
    sim = CostModel(scenario, BOOK).run()
    derived = sim.derived
    assert derived["epochs"] == 3  # the default the back-of-envelope figure leaves out
    assert derived["training_cost_per_epoch_initial"] == pytest.approx(25.0)
    assert derived["training_tokens_per_run_initial"] == 3_000_000
    assert derived["training_cost_per_run_initial"] == pytest.approx(75.0)
    assert sim.options["ft_api"].lines["training"][0] == pytest.approx(75.0)


@pytest.mark.parametrize("k, expected", [(3, 900), (4, 1200), (5, 1500)])
def test_3_to_5_chunks_of_300_tokens_add_900_to_1500_prompt_tokens(k: int, expected: int):
    assert context_tokens(k, 300) == expected
    scenario = parse_scenario(_scenario(traffic={"top_k": k, "chunk_tokens": 300}))
    model = CostModel(scenario, BOOK)
    rag, ft = model.tokens["rag"], model.tokens["ft"]
    assert model.run().derived["context_tokens_per_query"] == expected
    t = scenario.traffic
    assert rag.prompt - (t.system_tokens + t.question_tokens) == expected
    assert ft.prompt == t.ft_system_tokens + t.question_tokens


def test_a10g_at_1_50_an_hour_8_hours_a_day_for_30_days_is_360_a_month():
    assert gpu_cost(1.50, 8, 30) == pytest.approx(360.0)
    table = _scenario(serving={"gpu": "A10G", "hours_per_day": 8, "days_per_month": 30})
    book = PriceBook(overrides_from_table({"gpus": {"A10G": 1.50}}, "test"))
    sim = CostModel(parse_scenario(table), book).run()
    assert sim.options["ft_self_hosted"].lines["gpu_serving"][0] == pytest.approx(360.0)


def test_fine_tuned_gpt_4o_mini_input_is_30_cents_against_15_for_the_base_model():
    base = BOOK.get("gpt-4o-mini", "input_mtok")
    tuned = BOOK.get("gpt-4o-mini", "ft_input_mtok")
    assert (base.usd, tuned.usd) == (0.15, 0.30)
    assert base.source.startswith("genai-prices") and tuned.source.startswith("genai-prices")
    assert tuned.ref.startswith("openai/ft:gpt-4o-mini")
    # The packaged row agrees with the maintained database.
    assert BOOK.finetune_row("gpt-4o-mini")["ft_input_mtok"] == 0.30


def test_prices_command_shows_both_gpt_4o_mini_input_prices_with_their_sources(cli):
    data = cli_json(cli, "prices", "gpt-4o-mini")
    prices = data["prices"]
    assert prices["input_mtok"]["usd"] == 0.15
    assert prices["ft_input_mtok"]["usd"] == 0.30
    assert prices["train_mtok"]["source"] == "ragortune/data/finetune_prices.toml"
    assert all(p["source"] for p in prices.values())
