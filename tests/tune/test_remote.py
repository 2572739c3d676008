from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from ragortune.cli import app
from ragortune.errors import ConfigError
from ragortune.tune.remote import make_client, run_remote, watch_job

from . import fake_provider
from .conftest import write_chat


@pytest.fixture
def provider():
    server, state, url = fake_provider.serve()
    yield state, url
    server.shutdown()
    server.server_close()


def test_job_is_uploaded_started_watched_and_names_its_model(provider, chat_file, tmp_path):
    state, url = provider
    seen = []
    job = run_remote(make_client(url, fake_provider.API_KEY), chat_file, model="gpt-4o-mini-2024-07-18",
                     validation_path=write_chat(tmp_path / "val.jsonl"), epochs=2, suffix="acme",
                     poll_s=0, on_event=seen.append)
    assert job.status == "succeeded" and job.done
    assert job.fine_tuned_model.startswith("ft:gpt-4o-mini-2024-07-18:")
    assert job.training_file in state.files and job.validation_file in state.files
    assert state.jobs[job.id]["hyperparameters"]["n_epochs"] == 2
    messages = [e.message for e in seen]
    assert messages[0].startswith("Created fine-tuning job") and "New fine-tuned model" in messages[-1]
    assert len(messages) == len(set(messages))  # each event reported once


def test_a_job_the_provider_fails_reports_its_error(provider, tmp_path):
    _, url = provider
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "x"}\n')
    job = run_remote(make_client(url, fake_provider.API_KEY), bad, model="gpt-4o-mini", poll_s=0)
    assert job.status == "failed" and "line 1" in job.error and job.fine_tuned_model is None


def test_watching_stops_at_the_timeout_and_can_be_picked_up_later(provider, chat_file):
    _, url = provider
    client = make_client(url, fake_provider.API_KEY)
    job = run_remote(client, chat_file, model="gpt-4o-mini", wait=False)
    assert job.status == "validating_files"
    pending = watch_job(client, job.id, poll_s=0, timeout_s=0)
    assert not pending.done
    assert watch_job(client, job.id, poll_s=0).status == "succeeded"


def test_a_rejected_key_is_a_one_line_error(provider, chat_file):
    _, url = provider
    with pytest.raises(ConfigError, match="rejected the API key"):
        run_remote(make_client(url, "wrong"), chat_file, model="gpt-4o-mini", poll_s=0)


def test_cli_remote_prints_the_model_id_as_json(provider, chat_file, monkeypatch):
    _, url = provider
    monkeypatch.setenv("FT_KEY", fake_provider.API_KEY)
    result = CliRunner().invoke(app, ["tune", "remote", "--data", str(chat_file), "--base-url", url,
                                      "--api-key-env", "FT_KEY", "--poll", "0", "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["status"] == "succeeded" and payload["fine_tuned_model"].startswith("ft:")
    assert payload["done"] is True and payload["events"]


def test_cli_remote_uploads_nothing_when_the_file_has_errors(provider, tmp_path, monkeypatch):
    state, url = provider
    monkeypatch.setenv("FT_KEY", fake_provider.API_KEY)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"messages": []}\n')
    result = CliRunner().invoke(app, ["tune", "remote", "--data", str(bad), "--base-url", url,
                                      "--api-key-env", "FT_KEY"])
    assert result.exit_code != 0
    assert "bad.jsonl:1" in str(result.exception) and not state.requests
