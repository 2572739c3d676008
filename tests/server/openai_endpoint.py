"""A small OpenAI-compatible HTTP server on a loopback port, for the clients' tests: chat
completions (plain and streamed) and embeddings, a record of every request, and scripted
failures (`fail_next(503)` answers the next request with that status, then serves again;
`delay` stalls every answer).

Answers are deterministic: chat replies "echo: <last user message>" with word counts as usage;
an embedding is the first `dimension` bytes of the text's SHA-256, not normalised.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MODEL = "stub-model"


def stub_vector(text: str, dimension: int) -> list[float]:
    return [float(b) - 127.5 for b in hashlib.sha256(text.encode()).digest()[:dimension]]


class OpenAIEndpoint:
    def __init__(self, api_key: str | None = None, dimension: int = 8) -> None:
        self.api_key = api_key
        self.dimension = dimension
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self.authorizations: list[str | None] = []  # the Authorization header of each request
        self.delay = 0.0  # seconds to wait before answering: a slow or stuck server
        self._failures: list[int] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def root(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def url(self) -> str:
        """The OpenAI-style base URL, `/v1` included."""
        return f"{self.root}/v1"

    def fail_next(self, *statuses: int) -> None:
        with self._lock:
            self._failures.extend(statuses)

    def bodies(self, path: str) -> list[dict[str, Any]]:
        return [body for seen, body in self.requests if seen == path]

    def __enter__(self) -> OpenAIEndpoint:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _next_failure(self) -> int | None:
        with self._lock:
            return self._failures.pop(0) if self._failures else None


def _handler(endpoint: OpenAIEndpoint) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_: Any) -> None:
            pass

        def _json(self, status: int, payload: dict[str, Any], **headers: str) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def _error(self, status: int, message: str, **headers: str) -> None:
            self._json(status, {"error": {"message": message, "type": "stub_error"}}, **headers)

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
            endpoint.requests.append((self.path, body))
            endpoint.authorizations.append(self.headers.get("Authorization"))
            time.sleep(endpoint.delay)
            if not self.path.startswith("/v1/"):
                data = b"<html><body><h1>404 Not Found</h1></body></html>"
                self.send_response(404)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                return
            if endpoint.api_key and self.headers.get("Authorization") != f"Bearer {endpoint.api_key}":
                self._error(401, "Incorrect API key provided")
                return
            status = endpoint._next_failure()
            if status is not None:  # retry-after-ms: the SDK waits 1 ms, so tests stay fast
                self._error(status, f"scripted failure {status}", **{"retry-after-ms": "1"})
                return
            if body.get("model") not in (MODEL, None):
                self._error(404, f"The model '{body.get('model')}' does not exist")
            elif self.path == "/v1/embeddings":
                self._embeddings(body)
            elif self.path == "/v1/chat/completions":
                self._chat(body)
            else:
                self._error(404, f"no route {self.path}")

        def _embeddings(self, body: dict[str, Any]) -> None:
            texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
            data = [{"object": "embedding", "index": i,
                     "embedding": stub_vector(text, endpoint.dimension)}
                    for i, text in enumerate(texts)]
            self._json(200, {"object": "list", "model": MODEL, "data": data[::-1],
                             "usage": {"prompt_tokens": len(texts), "total_tokens": len(texts)}})

        def _chat(self, body: dict[str, Any]) -> None:
            question = [m for m in body["messages"] if m["role"] == "user"][-1]["content"]
            words = f"echo: {question}".split(" ")[: body.get("max_tokens") or None]
            usage = {"prompt_tokens": len(question.split()), "completion_tokens": len(words),
                     "total_tokens": len(question.split()) + len(words)}
            base = {"id": "chatcmpl-stub", "created": 0, "model": MODEL}
            if not body.get("stream"):
                self._json(200, {**base, "object": "chat.completion", "usage": usage, "choices": [
                    {"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": " ".join(words)}}]})
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()

            def send(payload: dict[str, Any] | str) -> None:
                text = payload if isinstance(payload, str) else json.dumps(payload)
                self.wfile.write(f"data: {text}\n\n".encode())

            chunk = {**base, "object": "chat.completion.chunk"}
            for i, word in enumerate(words):
                piece = word if i == 0 else f" {word}"
                send({**chunk, "choices": [{"index": 0, "delta": {"content": piece},
                                            "finish_reason": None}]})
            send({**chunk, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
            if (body.get("stream_options") or {}).get("include_usage"):
                send({**chunk, "choices": [], "usage": usage})
            send("[DONE]")
            self.wfile.flush()
            self.close_connection = True

    return Handler
