from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from ragortune.cli import app
from ragortune.tune.tokens import ChatTokenizer
from ragortune.tune.validate import validate_file

GOOD = {"messages": [{"role": "user", "content": "What port does Orbit use?"},
                     {"role": "assistant", "content": "Port 8443."}]}

# line -> the problem planted there (one of each kind `tune validate` must report)
PLANTED = {
    2: ("not_json", '{"messages": [{"role": "user", "content": "hi"}'),
    3: ("not_object", json.dumps(["user", "hello"])),
    4: ("missing_messages", json.dumps({"prompt": "x", "completion": "y"})),
    5: ("unknown_key", json.dumps({"messages": [{"role": "user", "content": "a", "source": "d1"},
                                                {"role": "assistant", "content": "b"}]})),
    6: ("unknown_role", json.dumps({"messages": [{"role": "human", "content": "a"},
                                                 {"role": "assistant", "content": "b"}]})),
    7: ("missing_content", json.dumps({"messages": [{"role": "user"},
                                                    {"role": "assistant", "content": "b"}]})),
    8: ("no_assistant", json.dumps({"messages": [{"role": "system", "content": "s"},
                                                 {"role": "user", "content": "q"}]})),
    9: ("empty_example", json.dumps({"messages": []})),
    10: ("duplicate", json.dumps(GOOD)),
    11: ("too_long", json.dumps({"messages": [{"role": "user", "content": "lorem ipsum " * 400},
                                              {"role": "assistant", "content": "ok"}]})),
}


@pytest.fixture
def bad_file(tmp_path):
    rows = [json.dumps(GOOD)] + [PLANTED[n][1] for n in sorted(PLANTED)]
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(rows) + "\n")
    return path


def test_every_planted_problem_is_reported_at_its_line(bad_file):
    report = validate_file(bad_file, ChatTokenizer.for_model("gpt-4o-mini", max_tokens=512))
    found = {(p.line, p.code) for p in report.problems}
    assert {(line, code) for line, (code, _) in PLANTED.items()} <= found
    assert not any(p.line == 1 for p in report.problems)
    assert {p.code for p in report.warnings} == {"duplicate", "too_long"}
    assert report.examples == 3 and report.truncated == 1 and not report.ok


def test_billing_uses_the_epoch_rule_and_the_given_price(tmp_path):
    path = tmp_path / "ok.jsonl"
    path.write_text("".join(json.dumps({"messages": [{"role": "user", "content": f"q{i}"},
                                                     {"role": "assistant", "content": "a"}]}) + "\n"
                            for i in range(20)))
    counter = ChatTokenizer.for_model("gpt-4o-mini-2024-07-18")
    report = validate_file(path, counter, price_per_million=3.0, price_source="test")
    per_example = [counter.count(json.loads(x)["messages"])[0] for x in path.read_text().splitlines()]
    assert report.ok and report.estimate.n_epochs == 5  # 20 examples: 100 example passes
    assert report.estimate.billed_tokens == 5 * sum(per_example)
    assert report.estimate.cost_usd == pytest.approx(report.estimate.billed_tokens * 3.0 / 1e6)
    assert report.tokens.assistant_total == 20 * counter.count([{"role": "assistant", "content": "a"}])[1]


def test_cli_exits_1_and_lists_every_problem_as_json(bad_file):
    result = CliRunner().invoke(app, ["tune", "validate", str(bad_file), "--max-tokens", "512", "--json"])
    assert result.exit_code == 1, result.output
    payload = json.loads(result.stdout)
    assert payload["ok"] is False and payload["errors"] >= 8 and payload["warnings"] == 2
    assert {(p["line"], p["code"]) for p in payload["problems"]} >= {(n, c) for n, (c, _) in PLANTED.items()}
    # the price of gpt-4o-mini training comes from the price book
    assert payload["estimate"]["price_per_million"] == 3.0
    assert payload["estimate"]["cost_usd"] == pytest.approx(payload["estimate"]["billed_tokens"] * 3e-6)


def test_cli_passes_a_clean_file_and_strict_fails_on_warnings(tmp_path):
    path = tmp_path / "dup.jsonl"
    path.write_text(json.dumps(GOOD) + "\n" + json.dumps(GOOD) + "\n")
    runner = CliRunner()
    assert runner.invoke(app, ["tune", "validate", str(path)]).exit_code == 0
    assert runner.invoke(app, ["tune", "validate", str(path), "--strict"]).exit_code == 1


def test_blank_line_inside_the_file_is_an_error_but_trailing_ones_are_not(tmp_path):
    path = tmp_path / "blank.jsonl"
    path.write_text(json.dumps(GOOD) + "\n\n" + json.dumps({"messages": [{"role": "user", "content": "x"},
                    {"role": "assistant", "content": "y"}]}) + "\n\n")
    report = validate_file(path, ChatTokenizer.for_model("gpt-4o-mini"))
    assert [(p.line, p.severity) for p in report.problems] == [(2, "error"), (4, "warning")]


def test_local_model_is_counted_with_its_own_tokenizer(tmp_path, smol_tokenizer):
    from ragortune.tune.tokens import encode_chat

    path = tmp_path / "one.jsonl"
    path.write_text(json.dumps(GOOD) + "\n")
    report = validate_file(path, ChatTokenizer.from_hf(smol_tokenizer, "smollm2", 2048))
    assert report.tokens.total == len(encode_chat(smol_tokenizer, GOOD["messages"], max_tokens=None).input_ids)
    assert report.estimate.cost_usd is None
