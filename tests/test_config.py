"""Settings (flag > RAGORTUNE_* env > ragortune.toml > default) and how their errors, and every
other user error, reach the terminal: one literal line on stderr, exit code 2."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ragortune.config import load_settings
from ragortune.errors import ConfigError


@pytest.fixture(autouse=True)
def no_ragortune_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in os.environ if n.startswith("RAGORTUNE_")]:
        monkeypatch.delenv(name)


def test_a_flag_beats_the_environment_which_beats_the_file_which_beats_the_default(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "ragortune.toml").write_text('k = 3\nchunk_size = 128\nmode = "bm25"\n')
    monkeypatch.setenv("RAGORTUNE_K", "7")
    monkeypatch.setenv("RAGORTUNE_MODE", "dense")
    settings = load_settings({"mode": "hybrid", "kb": None}, folder=tmp_path)
    assert (settings.mode, settings.k, settings.chunk_size, settings.kb) == (
        "hybrid", 7, 128, ".ragortune")
    # what the user set anywhere is known, so a KB can be checked against it
    assert settings.model_fields_set == {"mode", "k", "chunk_size"}


def test_the_ragortune_table_is_read_and_the_prices_table_left_to_the_cost_model(
        tmp_path: Path) -> None:
    (tmp_path / "ragortune.toml").write_text(
        '[ragortune]\nllm = "openai:gpt-4o-mini"\nmin_score = 0.4\n\n[prices.gpus]\nA10G = 1.5\n')
    settings = load_settings(folder=tmp_path)
    assert (settings.llm, settings.min_score) == ("openai:gpt-4o-mini", 0.4)
    assert load_settings(folder=tmp_path / "elsewhere").llm == "smollm2"


@pytest.mark.parametrize("text, where", [
    ("chunk_sise = 128\n", "ragortune.toml: "),
    ("[ragortune]\nchunk_sise = 128\n", "ragortune.toml [ragortune]: "),
])
def test_a_misspelt_key_in_the_file_is_refused_naming_the_key_and_the_file(
        tmp_path: Path, text: str, where: str) -> None:
    (tmp_path / "ragortune.toml").write_text(text)
    with pytest.raises(ConfigError) as error:
        load_settings(folder=tmp_path)
    message = str(error.value)
    assert f"{where}unknown setting 'chunk_sise'" in message
    assert "did you mean 'chunk_size'?" in message
    assert "kb, embedder, chunk_size, chunk_overlap, mode, k, min_score, llm" in message


def test_a_bad_value_names_where_it_came_from(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "ragortune.toml").write_text('k = "many"\n')
    with pytest.raises(ConfigError, match=r"setting 'k': .*integer.*ragortune\.toml"):
        load_settings(folder=tmp_path)
    monkeypatch.setenv("RAGORTUNE_CHUNK_SIZE", "big")
    with pytest.raises(ConfigError, match="setting 'chunk_size': .*RAGORTUNE_CHUNK_SIZE"):
        load_settings({"k": 2}, folder=tmp_path)
    with pytest.raises(ConfigError, match="not valid TOML"):
        (tmp_path / "ragortune.toml").write_text("k = \n")
        load_settings(folder=tmp_path)


def ragortune(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", "from ragortune.cli import main; main()", *args],
                          cwd=cwd, capture_output=True, text=True, timeout=300, check=False,
                          env={k: v for k, v in os.environ.items()
                               if not k.startswith("RAGORTUNE_")})


def test_the_cli_refuses_a_misspelt_setting_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "ragortune.toml").write_text("chunk_sise = 128\n")
    done = ragortune(tmp_path, "status")
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith(f"error: {tmp_path / 'ragortune.toml'}: unknown setting "
                                  "'chunk_sise': did you mean 'chunk_size'?")
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr


def test_error_messages_reach_stderr_literally_brackets_included(tmp_path: Path) -> None:
    """Rich markup would eat `[prices]` and `[prices.models."NAME"]`, the very hints that say
    where to fix the file."""
    (tmp_path / "ragortune.toml").write_text("[prices]\nbogus = 1\n")
    done = ragortune(tmp_path, "prices", "gpt-4o-mini")
    assert done.returncode == 2
    assert done.stderr.startswith("error: ") and "ragortune.toml [prices]: field 'bogus'" in done.stderr
    assert '[prices.models."NAME"]' in done.stderr and "[prices.gpus.NAME]" in done.stderr
