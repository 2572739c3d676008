"""A local HTTP server that implements the OpenAI fine-tuning endpoints `tune remote` uses
(files, jobs, job status, job events), so the real `openai` client can be driven end to end.

Jobs move one state per status poll: validating_files -> queued -> running -> succeeded, or to
failed when the uploaded training file has a line that is not a chat example.
"""

from __future__ import annotations

import json
import threading
import time
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

API_KEY = "test-key"
STAGES = ("validating_files", "queued", "running", "succeeded")


class Provider:
    def __init__(self) -> None:
        self.files: dict[str, dict[str, Any]] = {}
        self.jobs: dict[str, dict[str, Any]] = {}
        self.events: dict[str, list[dict[str, Any]]] = {}
        self.requests: list[str] = []
        self.lock = threading.Lock()

    def event(self, job_id: str, message: str, level: str = "info") -> None:
        events = self.events.setdefault(job_id, [])
        events.append({"id": f"ftevent-{job_id}-{len(events)}", "object": "fine_tuning.job.event",
                       "created_at": int(time.time()), "level": level, "message": message,
                       "type": "message"})

    def advance(self, job: dict[str, Any]) -> None:
        if job["status"] in ("succeeded", "failed", "cancelled"):
            return
        nxt = STAGES[STAGES.index(job["status"]) + 1]
        if job["status"] == "validating_files":
            bad = self.first_bad_line(self.files[job["training_file"]]["content"])
            if bad is not None:
                job["status"] = "failed"
                job["error"] = {"code": "invalid_training_file", "param": "training_file",
                                "message": f"line {bad}: not a chat example with messages"}
                self.event(job["id"], job["error"]["message"], "error")
                return
        job["status"] = nxt
        self.event(job["id"], f"Job entered {nxt}")
        if nxt == "succeeded":
            lines = self.files[job["training_file"]]["content"].splitlines()
            job["fine_tuned_model"] = f"ft:{job['model']}:ragortune-test::{job['id'][-6:]}"
            job["trained_tokens"] = 100 * len(lines)
            job["finished_at"] = int(time.time())
            self.event(job["id"], f"New fine-tuned model created: {job['fine_tuned_model']}")

    @staticmethod
    def first_bad_line(content: str) -> int | None:
        for n, line in enumerate(content.splitlines(), start=1):
            try:
                if not isinstance(json.loads(line).get("messages"), list):
                    return n
            except (ValueError, AttributeError):
                return n
        return None


def make_handler(provider: Provider) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:  # quiet
            pass

        def reply(self, code: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def authorised(self) -> bool:
            if self.headers.get("Authorization") == f"Bearer {API_KEY}":
                return True
            self.reply(401, {"error": {"message": "Incorrect API key provided", "type": "invalid_request_error",
                                       "code": "invalid_api_key", "param": None}})
            return False

        def body(self) -> bytes:
            return self.rfile.read(int(self.headers.get("Content-Length", 0)))

        def do_POST(self) -> None:
            provider.requests.append(f"POST {self.path}")
            if not self.authorised():
                return
            if self.path == "/v1/files":
                raw = self.body()
                head = f"Content-Type: {self.headers['Content-Type']}\r\n\r\n".encode()
                parts = {p.get_param("name", header="content-disposition"): p
                         for p in BytesParser(policy=HTTP).parsebytes(head + raw).iter_parts()}
                upload = parts["file"]
                content = upload.get_payload(decode=True).decode()
                with provider.lock:
                    file_id = f"file-{len(provider.files) + 1:04d}"
                    provider.files[file_id] = {"content": content}
                self.reply(200, {"id": file_id, "object": "file", "bytes": len(content),
                                 "created_at": int(time.time()), "filename": upload.get_filename(),
                                 "purpose": parts["purpose"].get_payload(decode=True).decode(),
                                 "status": "processed"})
                return
            if self.path == "/v1/fine_tuning/jobs":
                req = json.loads(self.body())
                if req.get("training_file") not in provider.files:
                    self.reply(400, {"error": {"message": f"invalid training_file: {req.get('training_file')}",
                                               "type": "invalid_request_error", "param": "training_file", "code": None}})
                    return
                with provider.lock:
                    job_id = f"ftjob-{len(provider.jobs) + 1:06d}"
                    epochs = (req.get("method", {}).get("supervised", {}).get("hyperparameters", {})
                              .get("n_epochs", "auto"))
                    job = {"id": job_id, "object": "fine_tuning.job", "created_at": int(time.time()),
                           "error": None, "fine_tuned_model": None, "finished_at": None,
                           "hyperparameters": {"n_epochs": epochs, "batch_size": "auto",
                                               "learning_rate_multiplier": "auto"},
                           "model": req["model"], "organization_id": "org-test", "result_files": [],
                           "seed": req.get("seed", 42), "status": "validating_files", "trained_tokens": None,
                           "training_file": req["training_file"], "validation_file": req.get("validation_file"),
                           "suffix": req.get("suffix")}
                    provider.jobs[job_id] = job
                    provider.event(job_id, f"Created fine-tuning job: {job_id}")
                self.reply(200, job)
                return
            self.reply(404, {"error": {"message": f"no route {self.path}"}})

        def do_GET(self) -> None:
            provider.requests.append(f"GET {self.path}")
            if not self.authorised():
                return
            parts = self.path.split("?")[0].strip("/").split("/")
            if parts[:3] == ["v1", "fine_tuning", "jobs"] and len(parts) >= 4 and parts[3] in provider.jobs:
                job = provider.jobs[parts[3]]
                if len(parts) == 4:
                    with provider.lock:
                        provider.advance(job)
                    self.reply(200, job)
                    return
                if parts[4:] == ["events"]:
                    data = list(reversed(provider.events.get(job["id"], [])))  # newest first
                    self.reply(200, {"object": "list", "data": data, "has_more": False})
                    return
            self.reply(404, {"error": {"message": f"no such job or route {self.path}", "type": "invalid_request_error"}})

    return Handler


def serve() -> tuple[ThreadingHTTPServer, Provider, str]:
    """Start the server on a free loopback port; returns (server, state, base URL with /v1)."""
    provider = Provider()
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(provider))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, provider, f"http://127.0.0.1:{server.server_address[1]}/v1"
