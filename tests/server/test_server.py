"""The HTTP service, driven from outside: httpx, the official openai client, and our own
OpenAI-compatible backend, all against a real uvicorn server."""

from __future__ import annotations

import json
import subprocess
import threading

import httpx
import pytest
from openai import AuthenticationError, OpenAI

from ragortune.generate.openai_compat import OpenAICompatLLM
from ragortune.kb.sync import sync

from .conftest import Server, free_port, ragortune_command
from .openai_endpoint import MODEL, OpenAIEndpoint

TIMEOUT = 120  # generous: the test machine is shared and slow, speed is measured in bench/
QUESTION = "How many requests per minute may an API key send?"


@pytest.fixture(scope="module")
def client(server: Server) -> OpenAI:
    return OpenAI(base_url=f"{server.url}/v1", api_key=server.token, max_retries=0, timeout=TIMEOUT)


def test_search_returns_hits_with_source_heading_and_similarity(server: Server) -> None:
    response = httpx.post(f"{server.url}/v1/search", headers=server.headers,
                          json={"query": "Which warehouse do orders ship from?", "k": 2},
                          timeout=TIMEOUT)
    assert response.status_code == 200
    hits = response.json()["hits"]
    assert len(hits) == 2 and hits[0]["source"].endswith("shipping.md")
    assert "Rotterdam" in hits[0]["text"] and 0 < hits[0]["similarity"] <= 1


def test_requests_without_the_bearer_token_are_refused(server: Server) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        response = httpx.post(f"{server.url}/v1/search", headers=headers, json={"query": "x"},
                              timeout=TIMEOUT)
        assert response.status_code == 401
        assert response.json()["error"]["type"] == "authentication_error"
    with pytest.raises(AuthenticationError):
        OpenAI(base_url=f"{server.url}/v1", api_key="wrong", max_retries=0, timeout=TIMEOUT).models.list()
    assert httpx.get(f"{server.url}/healthz", timeout=TIMEOUT).status_code == 200


def test_bad_request_bodies_get_a_clear_error(server: Server) -> None:
    response = httpx.post(f"{server.url}/v1/chat/completions", headers=server.headers,
                          json={"model": "ragortune", "messages": [{"role": "system", "content": "x"}]},
                          timeout=TIMEOUT)
    assert response.status_code == 400 and "user message" in response.json()["error"]["message"]
    response = httpx.post(f"{server.url}/v1/search", headers=server.headers, json={"query": ""},
                          timeout=TIMEOUT)
    assert response.status_code == 400  # OpenAI's status and body, not FastAPI's 422 "detail"
    assert response.json()["error"]["type"] == "invalid_request_error"


def test_openai_client_lists_the_model(client: OpenAI) -> None:
    assert [m.id for m in client.models.list()] == ["ragortune"]


def test_openai_client_chat_gets_a_grounded_answer_with_sources_and_usage(client: OpenAI) -> None:
    reply = client.chat.completions.create(
        model="ragortune", messages=[{"role": "user", "content": QUESTION}])
    assert "300" in reply.choices[0].message.content
    assert reply.usage.prompt_tokens > 50 and reply.usage.completion_tokens > 0
    extra = reply.model_extra
    assert extra["sources"][0]["source"].endswith("api.md")
    assert extra["ragortune"]["grounded"] and not extra["ragortune"]["abstained"]


def test_openai_client_streams_the_answer_then_usage(client: OpenAI) -> None:
    stream = client.chat.completions.create(
        model="ragortune", messages=[{"role": "user", "content": QUESTION}], stream=True,
        stream_options={"include_usage": True})
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert "300" in text
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0
    finals = [c for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finals and finals[-1].model_extra["sources"]


def test_httpx_chat_abstains_when_nothing_passes_the_threshold(server: Server) -> None:
    body = {"model": "ragortune", "min_score": 0.5,
            "messages": [{"role": "user", "content": "How many moons does Jupiter have?"}]}
    reply = httpx.post(f"{server.url}/v1/chat/completions", headers=server.headers, json=body,
                       timeout=TIMEOUT).json()
    assert reply["choices"][0]["message"]["content"] == "Not in the knowledge base."
    assert reply["ragortune"]["abstain_reason"] == "gate" and reply["usage"]["total_tokens"] == 0


def test_httpx_streaming_is_server_sent_events_ending_with_done(server: Server) -> None:
    body = {"messages": [{"role": "user", "content": "How many moons does Jupiter have?"}],
            "min_score": 0.5, "stream": True}
    with httpx.stream("POST", f"{server.url}/v1/chat/completions", headers=server.headers,
                      json=body, timeout=TIMEOUT) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in response.iter_lines() if line.startswith("data: ")]
    assert lines[-1] == "data: [DONE]"
    events = [json.loads(line[6:]) for line in lines[:-1]]
    text = "".join(e["choices"][0]["delta"].get("content", "") for e in events if e["choices"])
    assert text == "Not in the knowledge base."


def test_openai_compatible_backend_talks_to_the_real_server(server: Server) -> None:
    llm = OpenAICompatLLM("ragortune", f"{server.url}/v1", server.token, timeout=TIMEOUT)
    done = llm.complete([{"role": "user", "content": QUESTION}], max_tokens=48)
    assert "300" in done.text and done.prompt_tokens > 0 and done.completion_tokens > 0
    *pieces, final = list(llm.stream([{"role": "user", "content": QUESTION}], max_tokens=48))
    assert pieces and "".join(pieces).strip() == final.text
    assert final.completion_tokens > 0 and final.model == "ragortune"


def test_backend_reports_http_errors_of_the_endpoint(server: Server) -> None:
    from ragortune.errors import ConfigError

    llm = OpenAICompatLLM("ragortune", f"{server.url}/v1", "wrong")
    with pytest.raises(ConfigError, match="HTTP 401"):
        llm.complete([{"role": "user", "content": QUESTION}])


def test_the_requested_temperature_reaches_the_llm_and_its_absence_means_greedy(
        server: Server) -> None:
    from fastapi.testclient import TestClient

    from ragortune.server import create_app

    with OpenAIEndpoint() as upstream:
        app = create_app(server.kb.path, llm=OpenAICompatLLM(MODEL, upstream.url))
        with TestClient(app, base_url="http://localhost") as http:  # token-less: loopback names only
            for body in ({"temperature": 0.7}, {"temperature": 1.3, "stream": True}, {}):
                response = http.post("/v1/chat/completions", json={
                    "messages": [{"role": "user", "content": QUESTION}], **body})
                assert response.status_code == 200
            assert http.post("/v1/chat/completions", json={
                "messages": [{"role": "user", "content": QUESTION}], "temperature": 3},
            ).status_code == 400
        sent = upstream.bodies("/v1/chat/completions")
    assert [(b["temperature"], b["stream"]) for b in sent] == [(0.7, False), (1.3, True),
                                                               (0.0, False)]


def test_searches_during_an_ingest_all_succeed_and_then_see_the_new_document(
        server: Server) -> None:
    (server.docs / "parking.md").write_text(
        "# Parking\n\n## Garage\nThe office garage has 112 parking spaces for bicycles.\n")
    errors: list[str] = []
    stop = threading.Event()

    def hammer() -> None:
        with httpx.Client(base_url=server.url, headers=server.headers, timeout=TIMEOUT) as http:
            while not stop.is_set():
                response = http.post("/v1/search", json={"query": "bicycle parking", "k": 3})
                if response.status_code != 200 or len(response.json()["hits"]) != 3:
                    errors.append(response.text[:200])

    workers = [threading.Thread(target=hammer) for _ in range(4)]
    for worker in workers:
        worker.start()
    try:
        report = sync(server.kb, [server.docs])
    finally:
        stop.set()
        for worker in workers:
            worker.join()
    assert report.added == 1 and errors == []
    hits = httpx.post(f"{server.url}/v1/search", headers=server.headers,
                      json={"query": "How many bicycle parking spaces?", "k": 1},
                      timeout=TIMEOUT).json()["hits"]
    assert hits[0]["source"].endswith("parking.md")


def test_serving_off_loopback_without_a_token_refuses_to_start() -> None:
    done = subprocess.run(
        ragortune_command("serve", "--host", "0.0.0.0", "--port", str(free_port())),
        check=False, capture_output=True, text=True, timeout=120,
        env={"PATH": "/usr/bin:/bin", "RAGORTUNE_API_TOKEN": ""})
    assert done.returncode == 2
    assert "without a bearer token" in done.stderr
