"""`ragortune cost` end to end: tables, the JSON document, the chart, and user errors."""

from __future__ import annotations

import struct
from pathlib import Path

from .helpers import EXAMPLES, MINIMAL, cli_json, run_main


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_cost_writes_a_png_of_the_cumulative_curves(cli, tmp_path: Path):
    png = tmp_path / "charts" / "weekly.png"
    data = cli_json(cli, "cost", "--scenario", str(EXAMPLES / "weekly-changing-knowledge.toml"),
                    "--png", str(png))
    assert data["png"] == str(png)
    width, height = _png_size(png)
    assert 800 <= width <= 2000 and 400 <= height <= 1200
    assert 20_000 < png.stat().st_size < 2_000_000


def test_cost_json_has_every_option_line_pair_and_sensitivity_row(cli):
    data = cli_json(cli, "cost", "--scenario", str(EXAMPLES / "persona-at-scale.toml"),
                    "--no-png")
    assert data["png"] is None
    assert set(data["options"]) == {"rag", "prompting", "ft_api", "ft_self_hosted", "hybrid",
                                    "hybrid_self_hosted"}
    h = data["scenario"]["horizon_months"]
    for opt in data["options"].values():
        assert len(opt["monthly"]) == len(opt["cumulative"]) == h
        assert abs(sum(line["total"] for line in opt["lines"].values()) - opt["total"]) < 0.01
    assert len(data["break_even"]) == 15
    assert len(data["sensitivity"]) == 20
    assert data["cheapest"] == min(data["options"], key=lambda k: data["options"][k]["total"])
    prices = data["assumptions"]["prices"]
    assert prices["embedding"]["source"].startswith("genai-prices")
    assert prices["train"]["as_of"]


def test_cost_prints_a_table_and_writes_the_chart_next_to_the_user_by_default(cli, tmp_path):
    out = cli("cost", "--scenario", str(EXAMPLES / "output-format.toml")).stdout
    assert "total, 24" in out and "Break-even" in out and "Sensitivity" in out
    assert "x 3 epochs" in out
    _png_size(tmp_path / "output-format.cost.png")


def test_a_bad_scenario_is_one_line_on_stderr_and_exit_code_2(tmp_path: Path):
    path = tmp_path / "bad.toml"
    path.write_text(MINIMAL.replace("documents = 5000", "documents = -1"))
    result = run_main("cost", "--scenario", str(path), cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "corpus.documents" in lines[0] and "bad.toml" in lines[0]
    assert "Traceback" not in result.stderr


def test_an_unknown_model_is_a_one_line_error_naming_the_fix(tmp_path: Path):
    path = tmp_path / "s.toml"
    path.write_text(MINIMAL + '[models]\nfinetune = "claude-3-5-haiku"\n')
    result = run_main("decide", "--scenario", str(path), cwd=tmp_path)
    assert result.returncode == 2
    assert "train_mtok" in result.stderr and "models.finetune" in result.stderr
