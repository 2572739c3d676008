"""Issue 16 item 6, secrets: an OpenAI key goes only to OpenAI's endpoint unless named for
another; credentials in URLs are redacted; keys planted in the environment never appear in
any output or file the commands write (a grep over all of them)."""

from __future__ import annotations

import json
import os

import httpx
import pytest

from tests.robustness.hostile import ragortune_command, run_measured
from tests.robustness.load import free_port, write_policies
from tests.server.openai_endpoint import MODEL, OpenAIEndpoint

PLANTED = {
    "OPENAI_API_KEY": "sk-PLANTED-openai-7c1e",
    "RAGORTUNE_API_TOKEN": "PLANTED-server-token-5d2b",
    "RAGORTUNE_EMBED_API_KEY": "sk-PLANTED-embed-91aa",
}
URL_SECRET = "sk-PLANTED-in-url-44f0"


def planted_in(text: str) -> list[str]:
    return [s for s in [*PLANTED.values(), URL_SECRET] if s in text]


def test_the_openai_key_is_not_sent_to_another_endpoint(monkeypatch):
    from ragortune.embed import OpenAIEmbedder
    from ragortune.generate import load_llm

    monkeypatch.setenv("OPENAI_API_KEY", PLANTED["OPENAI_API_KEY"])
    monkeypatch.delenv("RAGORTUNE_LLM_API_KEY", raising=False)
    monkeypatch.delenv("RAGORTUNE_EMBED_API_KEY", raising=False)
    with OpenAIEndpoint() as third_party:
        monkeypatch.setenv("RAGORTUNE_LLM_BASE_URL", third_party.url)
        load_llm(f"openai:{MODEL}").complete([{"role": "user", "content": "hi"}], max_tokens=4)
        OpenAIEmbedder(MODEL, base_url=third_party.url).embed(["hello"])
        assert third_party.authorizations
        assert not any(PLANTED["OPENAI_API_KEY"] in (a or "") for a in third_party.authorizations)
        monkeypatch.setenv("RAGORTUNE_LLM_API_KEY", "sk-named-for-this-server")
        load_llm(f"openai:{MODEL}").complete([{"role": "user", "content": "hi"}], max_tokens=4)
        assert third_party.authorizations[-1] == "Bearer sk-named-for-this-server"


def test_the_openai_key_still_goes_to_openai(monkeypatch):
    from ragortune.embed import api_key_for

    monkeypatch.setenv("OPENAI_API_KEY", PLANTED["OPENAI_API_KEY"])
    monkeypatch.delenv("RAGORTUNE_LLM_API_KEY", raising=False)
    assert api_key_for("https://api.openai.com/v1", "RAGORTUNE_LLM_API_KEY") == PLANTED["OPENAI_API_KEY"]
    for other in ("http://api.openai.com/v1", "https://api.openai.com.evil.example/v1",
                  "https://evil.example/api.openai.com/v1", "http://127.0.0.1:8000/v1"):
        assert api_key_for(other, "RAGORTUNE_LLM_API_KEY") is None


@pytest.mark.parametrize("url, shown", [
    (f"http://user:{URL_SECRET}@host:8000/v1", "http://***@host:8000/v1"),
    (f"https://{URL_SECRET}@host/v1", "https://***@host/v1"),
    ("http://host:8000/v1", "http://host:8000/v1"),
])
def test_credentials_in_urls_are_redacted(url, shown):
    from ragortune.embed import redact_url

    assert redact_url(url) == shown


def test_no_planted_key_appears_in_any_output_or_file(tmp_path, embedder):
    from ragortune.kb import open_kb
    from ragortune.kb.sync import sync

    work = tmp_path / "work"
    write_policies(work / "docs", "alpha", count=4)
    kb = work / "kb"
    sync(open_kb(kb, embedder=embedder, create=True), [work / "docs"])
    (work / "questions.jsonl").write_text(
        '{"_id": "q1", "text": "What is the edition marker of policy 1?", "answers": ["alpha"]}\n'
        '{"_id": "q2", "text": "Where do requests for policy 2 go?", "answers": ["desk 6"]}\n')
    dead = f"http://127.0.0.1:{free_port()}/v1"
    creds_url = dead.replace("http://", f"http://user:{URL_SECRET}@")
    env = {**PLANTED, "RAGORTUNE_LLM_BASE_URL": creds_url, "RAGORTUNE_EMBED_BASE_URL": creds_url}
    outputs: list[str] = []
    with OpenAIEndpoint() as endpoint:
        live_creds_url = endpoint.url.replace("http://", f"http://user:{URL_SECRET}@")
        commands = [
            ("ingest", str(work / "docs"), "--kb", str(kb), "--json"),
            ("status", "--kb", str(kb), "--json"),
            ("status", "--kb", str(kb)),
            ("search", "edition marker", "--kb", str(kb), "--json"),
            ("ask", "What is the edition marker?", "--kb", str(kb), "--llm", "openai:m"),
            ("ask", "What is the edition marker?", "--kb", str(kb), "--llm", "openai:m", "--json"),
            ("ingest", str(work / "docs"), "--kb", str(work / "kb2"), "--embedder", "openai:e"),
            ("tune", "build", str(work / "questions.jsonl"), "--out", str(work / "ft"),
             "--validation", "0", "--paraphrases", "1", "--paraphrase-llm", MODEL,
             "--paraphrase-base-url", live_creds_url, "--json"),
            ("tune", "build", str(work / "questions.jsonl"), "--out", str(work / "ft-dead"),
             "--paraphrases", "1", "--paraphrase-llm", "m", "--paraphrase-base-url", creds_url),
        ]
        for command in commands:
            result, _ = run_measured(ragortune_command(*command), env=env)
            outputs.append(f"$ {command[0]}\n{result.stdout}\n{result.stderr}")
            assert "Traceback" not in result.stderr, (command, result.stderr[-2000:])
    # the server, with its token and an access log, answering a few requests
    import subprocess
    import time

    port = free_port()
    log = work / "serve.log"
    server = subprocess.Popen(ragortune_command("serve", "--kb", str(kb), "--port", str(port),
                                                "--llm", "openai:m", "--access-log"),
                              env={**os.environ, **env}, stdout=log.open("w"),
                              stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(600):
            try:
                if httpx.get(url + "/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        headers = {"Authorization": f"Bearer {PLANTED['RAGORTUNE_API_TOKEN']}"}
        outputs.append(httpx.post(url + "/v1/search", json={"query": "edition"},
                                  headers=headers).text)
        outputs.append(httpx.post(url + "/v1/chat/completions", headers=headers, json={
            "messages": [{"role": "user", "content": "edition?"}]}, timeout=60).text)
        outputs.append(httpx.post(url + "/v1/search", json={"query": "x"},
                                  headers={"Authorization": "Bearer wrong"}).text)
    finally:
        server.terminate()
        server.wait(timeout=30)
    built = json.loads((work / "ft" / "ragortune_build.json").read_text())
    assert built["settings"]["paraphraser"]["base_url"].startswith("http://***@")
    assert "***@" in "\n".join(outputs)  # the failing endpoint is named, its credentials not
    leaks = {"outputs": [out[:200] + " ... " + out[max(0, out.find(s) - 300):out.find(s) + 50]
                         for out in outputs for s in planted_in(out)]}
    for path in work.rglob("*"):
        if path.is_file():
            found = planted_in(path.read_bytes().decode("utf-8", "replace"))
            if found:
                leaks[str(path.relative_to(work))] = found
    assert leaks == {"outputs": []}, leaks
