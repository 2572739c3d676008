"""Issue 16 item 6 and the server/CLI edges: tokens, docs, Host header, error bodies, access
log, over-long queries; `ingest` of a missing path or an empty folder; `search` and `status`
output. Real `ragortune serve` processes (uvicorn) on free loopback ports; the LLM is an
OpenAI-compatible spec nobody calls, so no generator loads."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest

from tests.robustness.hostile import ragortune_command, run_measured
from tests.robustness.load import ENV, free_port, write_policies

TOKEN = "edge-token-42"


def start(kb: Path, log: Path, *extra: str, token: str | None = TOKEN):
    import subprocess

    env = {**ENV, "RAGORTUNE_LLM_BASE_URL": "http://127.0.0.1:9/v1"}
    env.pop("RAGORTUNE_API_TOKEN", None)
    if token:
        env["RAGORTUNE_API_TOKEN"] = token
    port = free_port()
    process = subprocess.Popen(
        ragortune_command("serve", "--kb", str(kb), "--port", str(port), "--llm", "openai:none",
                          *extra), env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()[-2000:]
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return process, url
        except httpx.HTTPError:
            time.sleep(0.3)
    process.kill()
    raise RuntimeError("server did not start")


@pytest.fixture(scope="module")
def kb(tmp_path_factory, embedder) -> Path:
    from ragortune.kb import open_kb
    from ragortune.kb.sync import sync

    root = tmp_path_factory.mktemp("edges")
    write_policies(root / "docs", "alpha", count=5)
    sync(open_kb(root / "kb", embedder=embedder, create=True), [root / "docs"])
    return root / "kb"


@pytest.fixture(scope="module")
def guarded(kb):
    process, url = start(kb, kb.parent / "guarded.log", "--access-log")
    yield url, kb.parent / "guarded.log"
    process.terminate()
    process.wait(timeout=30)


@pytest.fixture(scope="module")
def open_server(kb):
    process, url = start(kb, kb.parent / "open.log", token=None)
    yield url
    process.terminate()
    process.wait(timeout=30)


@pytest.mark.parametrize("path", ["/docs", "/redoc", "/openapi.json", "/v1/models"])
def test_every_route_but_healthz_needs_the_token(guarded, path):
    url, _ = guarded
    assert httpx.get(url + path).status_code == 401
    assert httpx.get(url + path, headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    assert httpx.get(url + "/healthz").status_code == 200


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER"])
def test_the_bearer_scheme_is_case_insensitive(guarded, scheme):
    url, _ = guarded
    response = httpx.post(url + "/v1/search", json={"query": "edition"},
                          headers={"Authorization": f"{scheme} {TOKEN}"})
    assert response.status_code == 200


@pytest.mark.parametrize("header", [f"Bearer {TOKEN}x", f"Basic {TOKEN}", "Bearer", "",
                                    f"Bearer {TOKEN[:-1]}"])
def test_a_wrong_token_gets_401_with_an_openai_style_body(guarded, header):
    url, _ = guarded
    response = httpx.post(url + "/v1/search", json={"query": "edition"},
                          headers={"Authorization": header})
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "authentication_error"


def test_validation_errors_and_404s_come_back_openai_style(guarded):
    url, _ = guarded
    headers = {"Authorization": f"Bearer {TOKEN}"}
    bad = httpx.post(url + "/v1/search", json={"query": "", "k": 0}, headers=headers)
    assert bad.status_code == 400
    error = bad.json()["error"]
    assert error["type"] == "invalid_request_error" and "query" in error["message"]
    assert "detail" not in bad.json()
    missing = httpx.get(url + "/v1/nothing", headers=headers)
    assert missing.status_code == 404 and missing.json()["error"]["type"] == "not_found_error"


def test_a_600_word_query_is_answered_not_a_500(guarded):
    url, _ = guarded
    query = " ".join(f"word{i}" for i in range(600))
    response = httpx.post(url + "/v1/search", json={"query": query, "mode": "dense"},
                          headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60)
    assert response.status_code == 200


def test_access_log_records_requests(guarded):
    url, log = guarded
    httpx.get(url + "/healthz")
    time.sleep(0.5)
    assert '"GET /healthz HTTP/1.1" 200' in log.read_text()
    assert TOKEN not in log.read_text()


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8000", "192.168.1.5",
                                  "localhost.evil.example"])
def test_the_tokenless_loopback_server_refuses_other_host_names(open_server, host):
    response = httpx.post(open_server + "/v1/search", json={"query": "edition"},
                          headers={"Host": host})
    assert response.status_code == 421 and "loopback" in response.json()["error"]["message"]


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "[::1]:8000", "localhost:1234"])
def test_the_tokenless_loopback_server_answers_loopback_names(open_server, host):
    response = httpx.post(open_server + "/v1/search", json={"query": "edition"},
                          headers={"Host": host})
    assert response.status_code == 200


def test_ingest_of_a_missing_path_or_an_empty_folder_is_an_error_and_creates_no_kb(tmp_path):
    (tmp_path / "empty").mkdir()
    for target in (tmp_path / "nope", tmp_path / "empty"):
        result, _ = run_measured(ragortune_command("ingest", str(target), "--kb",
                                                   str(tmp_path / "kb")))
        assert result.returncode == 2 and result.stderr.startswith("error:"), result.stderr
        assert "Traceback" not in result.stderr
    assert not (tmp_path / "kb").exists()


def test_search_marks_hits_below_the_calibrated_threshold_instead_of_hiding_them(kb, tmp_path):
    import shutil

    copy = tmp_path / "kb"
    shutil.copytree(kb, copy)
    settings = json.loads((copy / "kb.json").read_text())
    (copy / "kb.json").write_text(json.dumps({**settings, "min_score": 0.99}))
    result, _ = run_measured(ragortune_command("search", "edition marker of policy 3", "--kb",
                                               str(copy), "--json"))
    out = json.loads(result.stdout)
    assert out["hits"] and all(hit["below_threshold"] for hit in out["hits"])
    assert out["calibrated_threshold"] == 0.99
    text, _ = run_measured(ragortune_command("search", "edition marker of policy 3", "--kb",
                                             str(copy)), env={"COLUMNS": "200"})
    assert "below the calibrated threshold" in text.stdout and "policy-03.md" in text.stdout
    explicit, _ = run_measured(ragortune_command("search", "edition marker", "--kb", str(copy),
                                                 "--min-score", "0.99", "--json"))
    assert json.loads(explicit.stdout)["hits"] == []  # a threshold the user gives filters


def test_status_says_not_calibrated_instead_of_none(kb):
    result, _ = run_measured(ragortune_command("status", "--kb", str(kb)),
                             env={"COLUMNS": "80"})
    assert result.returncode == 0
    assert "None" not in result.stdout and "not calibrated" in result.stdout
