"""The HTTP service: OpenAI-compatible chat completions over the knowledge base, plus search.

The KB is opened once; every search re-reads the small manifest and re-pins the store when a
sync has committed, so requests running during an ingest see the last consistent version.
Bound off loopback, the server refuses to start without a bearer token (see `check_bind`).
With a token, every route but /healthz needs it (the OpenAPI docs included); without one
(loopback only), requests must name a loopback host, so a web page that rebinds its own DNS
name to 127.0.0.1 cannot read the KB through a victim's browser. Every error, validation and
404 included, is an OpenAI-style `{"error": {"message", "type", ...}}` body.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import asdict
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import anyio
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from ragortune import __version__, rag, retrieve
from ragortune.errors import ConfigError, InputError, RagortuneError
from ragortune.generate import LLM, Completion, Message, load_llm
from ragortune.kb import open_kb

MODEL_ID = "ragortune"


class ChatMessage(BaseModel, extra="allow"):
    role: str
    content: str | list[dict[str, Any]] | None = None


class ChatRequest(BaseModel, extra="allow"):
    """OpenAI's chat body; unknown OpenAI fields are accepted and ignored.
    `k`, `mode`, `min_score`, `on_empty` are ragortune extensions."""

    model: str = MODEL_ID
    messages: list[ChatMessage]
    max_tokens: int | None = Field(None, ge=1, le=4096)
    max_completion_tokens: int | None = Field(None, ge=1, le=4096)
    temperature: float | None = Field(None, ge=0, le=2)
    stream: bool = False
    stream_options: dict[str, Any] | None = None
    stop: str | list[str] | None = None
    k: int | None = Field(None, ge=1, le=50)
    mode: Literal["dense", "bm25", "hybrid"] | None = None
    min_score: float | None = None
    on_empty: Literal["abstain", "model"] = "abstain"


class SearchRequest(BaseModel):
    query: str = Field(min_length=1)
    k: int = Field(5, ge=1, le=100)
    mode: Literal["dense", "bm25", "hybrid"] = "hybrid"
    min_score: float | None = None


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(host: str, token: str | None) -> None:
    """Anyone on the network could read the KB: off loopback a token is mandatory."""
    if not is_loopback(host) and not token:
        raise ConfigError(
            f"refusing to serve on {host} without a bearer token: set RAGORTUNE_API_TOKEN "
            "(or --token), or bind to 127.0.0.1")


def _error(status: int, message: str, kind: str, param: str | None = None,
           code: str | None = None) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": kind, "param": param,
                                   "code": code}}, status_code=status)


def host_is_loopback(header: str) -> bool:
    """The Host header names a loopback address or `localhost` (any port)."""
    header = header.strip()
    if header.startswith("["):  # [::1]:8000
        host = header[1:header.find("]")] if "]" in header else ""
    else:
        host = header.rsplit(":", 1)[0] if header.count(":") == 1 else header
    return bool(host) and is_loopback(host.lower().rstrip("."))


def bearer_matches(header: str, token: str) -> bool:
    """`Authorization: Bearer <token>`, the scheme in any case (RFC 7235); the token compared
    in constant time, so its bytes cannot be guessed one by one from response times."""
    scheme, _, given = header.strip().partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(),
                                                              token.encode())


def _validation_message(exc: RequestValidationError) -> tuple[str, str | None]:
    parts, param = [], None
    for error in exc.errors():
        loc = [str(x) for x in error.get("loc", ()) if x != "body"]
        param = param or ".".join(loc) or None
        parts.append(f"{'.'.join(loc) or 'body'}: {error.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request body", param


def _question(messages: list[ChatMessage]) -> str:
    """The last user turn is what gets retrieved for and answered."""
    for message in reversed(messages):
        if message.role == "user":
            content = message.content
            if isinstance(content, list):
                content = " ".join(p.get("text", "") for p in content if p.get("type") == "text")
            if content and content.strip():
                return content
    raise InputError("messages hold no user message with text: send {'role': 'user', 'content': ...}")


def create_app(kb_path: str | Path, llm_spec: str | None = "smollm2", token: str | None = None, *,
               llm: LLM | None = None, k: int = rag.CONTEXT_K, mode: str = "hybrid",
               max_tokens: int = rag.MAX_TOKENS, query_cache: int = 4096,
               search_threads: int = 4) -> FastAPI:
    """Build the app; opens the KB and loads the LLM now, so a bad spec fails at start."""
    kb = open_kb(kb_path)
    kb.embedder  # noqa: B018 - load the embedding model before the first request, not during it
    model = llm if llm is not None else load_llm(llm_spec)
    # Embedding the query is most of a search's CPU time; popular queries repeat, and a
    # vector depends only on the text (the embedder is fixed for the KB's lifetime).
    query_vector = lru_cache(maxsize=query_cache)(kb.embed_query)
    # Searches are short CPU-bound calls: a few worker threads served in arrival order keep
    # the tail low under many clients; 40 threads fighting over the GIL made p99 ten times p50.
    search_slots = anyio.CapacityLimiter(search_threads)
    # The docs are served by routes below, behind the token like the API they describe.
    app = FastAPI(title="ragortune", version=__version__, docs_url=None, redoc_url=None,
                  openapi_url=None)

    guarded = _install_access(app, token)

    @app.get("/healthz")
    def healthz() -> dict[str, Any]:
        summary = kb.summary()  # a count query on PostgreSQL, not every manifest row
        return {"status": "ok", "version": __version__, "store_version": summary["store_version"],
                "chunks": summary["chunks"], "llm": model.name}

    _install_docs(app, guarded)

    @app.get("/v1/models", dependencies=guarded)
    def models() -> dict[str, Any]:
        return {"object": "list", "data": [
            {"id": MODEL_ID, "object": "model", "created": 0, "owned_by": "ragortune",
             "llm": model.name}]}

    @app.post("/v1/search", dependencies=guarded, response_model=None)
    @app.post("/search", dependencies=guarded, include_in_schema=False, response_model=None)
    async def search(body: SearchRequest) -> Response:
        return await anyio.to_thread.run_sync(run_search, body, limiter=search_slots)

    def run_search(body: SearchRequest) -> Response:
        threshold = body.min_score if body.min_score is not None else kb.settings.min_score
        hits = retrieve.search(kb, body.query, k=body.k, mode=body.mode, min_score=threshold,
                         query_vector=query_vector(body.query))
        payload = {"query": body.query, "mode": body.mode, "min_score": threshold,
                   "hits": [asdict(hit) for hit in hits]}
        # Serialised here: FastAPI's generic encoder costs more than the search on small KBs.
        return Response(json.dumps(payload), media_type="application/json")

    @app.post("/v1/chat/completions", dependencies=guarded, response_model=None)
    def chat(body: ChatRequest) -> dict[str, Any] | StreamingResponse:
        options = {"k": body.k or k, "mode": body.mode or mode, "min_score": body.min_score,
                       "on_empty": body.on_empty,
                       "max_tokens": body.max_completion_tokens or body.max_tokens or max_tokens,
                       "stop": [*rag.STOP, *([body.stop] if isinstance(body.stop, str)
                                             else body.stop or [])]}
        question = _question(body.messages)
        llm = model if body.temperature is None else AtTemperature(model, body.temperature)
        completion_id = f"chatcmpl-{uuid.uuid4().hex}"
        created = int(time.time())
        if body.stream:
            include_usage = bool((body.stream_options or {}).get("include_usage"))
            events = rag.stream_answer(kb, llm, question, **options)
            return StreamingResponse(
                _sse(events, completion_id, created, include_usage),
                media_type="text/event-stream", headers={"Cache-Control": "no-cache"})
        answer = rag.answer(kb, llm, question, **options)
        return {
            "id": completion_id, "object": "chat.completion", "created": created,
            "model": MODEL_ID,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": answer.text},
                         "finish_reason": answer.finish_reason or "stop"}],
            "usage": _usage(answer),
            "sources": [rag.citation_json(c) for c in answer.sources],
            "ragortune": _extras(answer),
        }

    return app


class _Unauthorized(Exception):
    pass


class AtTemperature:
    """The served LLM sampling at the temperature a request asked for (the answer functions
    call `complete`/`stream` without one, which means greedy)."""

    def __init__(self, llm: LLM, temperature: float) -> None:
        self.llm, self.temperature, self.name = llm, temperature, llm.name

    def complete(self, messages: Sequence[Message], **options: Any) -> Completion:
        return self.llm.complete(messages, **{**options, "temperature": self.temperature})

    def stream(self, messages: Sequence[Message], **options: Any) -> Iterator[str | Completion]:
        return self.llm.stream(messages, **{**options, "temperature": self.temperature})


def _usage(answer: rag.Answer) -> dict[str, int]:
    u = answer.usage
    return {"prompt_tokens": u.prompt_tokens, "completion_tokens": u.completion_tokens,
            "total_tokens": u.prompt_tokens + u.completion_tokens}


def _extras(answer: rag.Answer) -> dict[str, Any]:
    """What OpenAI's schema has no place for: the answer's checks and its cost."""
    data = answer.to_json()
    return {key: data[key] for key in ("answer", "abstained", "abstain_reason", "grounded",
                                       "citations", "citations_inferred", "dropped_citations",
                                       "threshold", "usage")}


def _sse(events: Iterator[str | rag.Answer], completion_id: str, created: int,
         include_usage: bool) -> Iterator[str]:
    """OpenAI's chunk stream: role first, text deltas, a final chunk with the finish reason and
    ragortune's extras (sources, cleaned answer), an optional usage chunk, then [DONE]."""

    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
        payload = {"id": completion_id, "object": "chat.completion.chunk", "created": created,
                   "model": MODEL_ID,
                   "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra}
        return f"data: {json.dumps(payload)}\n\n"

    yield chunk({"role": "assistant", "content": ""})
    try:
        for event in events:
            if isinstance(event, rag.Answer):
                if event.abstained and event.abstain_reason == "gate":
                    yield chunk({"content": event.text})
                yield chunk({}, event.finish_reason or "stop",
                            sources=[rag.citation_json(c) for c in event.sources],
                            ragortune=_extras(event))
                if include_usage:
                    usage_chunk = {"id": completion_id, "object": "chat.completion.chunk",
                                   "created": created, "model": MODEL_ID, "choices": [],
                                   "usage": _usage(event)}
                    yield f"data: {json.dumps(usage_chunk)}\n\n"
            else:
                yield chunk({"content": event})
    except RagortuneError as exc:  # headers are sent already: report in-band, as OpenAI does
        yield f"data: {json.dumps({'error': {'message': str(exc), 'type': 'invalid_request_error'}})}\n\n"
    yield "data: [DONE]\n\n"


def _install_access(app: FastAPI, token: str | None) -> list[Any]:
    """OpenAI-style error bodies for every failure, the Host check of the token-less loopback
    server, and the bearer-token dependency the routes are guarded with (returned)."""
    @app.exception_handler(RagortuneError)
    async def user_error(_: Request, exc: RagortuneError) -> JSONResponse:
        return _error(400, str(exc), "invalid_request_error")

    @app.exception_handler(RequestValidationError)
    async def invalid_body(_: Request, exc: RequestValidationError) -> JSONResponse:
        message, param = _validation_message(exc)
        return _error(400, message, "invalid_request_error", param=param)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        kind = "not_found_error" if exc.status_code == 404 else "invalid_request_error"
        return _error(exc.status_code, str(exc.detail), kind)

    @app.exception_handler(Exception)
    async def server_error(_: Request, exc: Exception) -> JSONResponse:
        logging.getLogger("ragortune.server").error("request failed", exc_info=exc)
        return _error(500, f"internal error ({type(exc).__name__}); see the server log",
                      "server_error")

    @app.middleware("http")
    async def loopback_host_only(request: Request, call_next: Any) -> Response:
        if token is None and not host_is_loopback(request.headers.get("host", "")):
            return _error(421, "this server has no token and answers only requests for a "
                               "loopback host (localhost, 127.0.0.1, [::1]); set "
                               "RAGORTUNE_API_TOKEN to serve other names", "invalid_request_error")
        return await call_next(request)

    def authorize(request: Request) -> None:
        if token is None:
            return
        if not bearer_matches(request.headers.get("authorization", ""), token):
            raise _Unauthorized()

    @app.exception_handler(_Unauthorized)
    async def unauthorized(_: Request, __: _Unauthorized) -> JSONResponse:
        response = _error(401, "missing or wrong bearer token (Authorization: Bearer ...)",
                          "authentication_error")
        response.headers["WWW-Authenticate"] = "Bearer"
        return response

    return [Depends(authorize)]


def _install_docs(app: FastAPI, guarded: list[Any]) -> None:
    """The OpenAPI schema and its two viewers, behind the token like the API they describe."""
    @app.get("/openapi.json", dependencies=guarded, include_in_schema=False)
    def openapi() -> dict[str, Any]:
        return app.openapi()

    @app.get("/docs", dependencies=guarded, include_in_schema=False)
    def docs() -> Response:
        return get_swagger_ui_html(openapi_url="/openapi.json", title="ragortune API")

    @app.get("/redoc", dependencies=guarded, include_in_schema=False)
    def redoc() -> Response:
        return get_redoc_html(openapi_url="/openapi.json", title="ragortune API")
