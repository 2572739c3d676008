"""The OpenAI-style fine-tuning flow against any base URL: upload, create the job, poll its status
and events, and report the fine-tuned model id (which then serves through the OpenAI-compatible
generator backend like any other model).

Only the documented endpoints are used (`POST /files`, `POST /fine_tuning/jobs`,
`GET /fine_tuning/jobs/{id}`, `GET /fine_tuning/jobs/{id}/events`), through the `openai` client.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ragortune.errors import ConfigError, InputError, RagortuneError

TERMINAL = frozenset({"succeeded", "failed", "cancelled"})


@dataclass(frozen=True)
class RemoteEvent:
    id: str
    created_at: int
    level: str
    message: str


@dataclass(frozen=True)
class RemoteJob:
    """Where a provider's job stands; `fine_tuned_model` is set once it has succeeded."""

    id: str
    status: str
    model: str
    fine_tuned_model: str | None
    trained_tokens: int | None
    training_file: str
    validation_file: str | None
    error: str | None
    events: list[RemoteEvent] = field(default_factory=list)
    waited_s: float = 0.0

    @property
    def done(self) -> bool:
        return self.status in TERMINAL


def make_client(base_url: str | None, api_key: str | None, *, timeout_s: float = 60.0) -> Any:
    """An `openai.OpenAI` client for the provider at `base_url` (None = OpenAI itself). Local
    OpenAI-compatible servers often need no key; OpenAI does."""
    import openai

    if not api_key:
        if base_url is None:
            raise ConfigError(
                "no API key: set OPENAI_API_KEY (or name another variable with --api-key-env)"
            )
        api_key = "unused"
    return openai.OpenAI(base_url=base_url, api_key=api_key, timeout=timeout_s, max_retries=2)


def _call(what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """One provider call; its failures become one-line errors that say what to do."""
    import openai

    try:
        return fn(*args, **kwargs)
    except openai.AuthenticationError as exc:
        raise ConfigError(f"{what}: the provider rejected the API key ({exc.status_code})") from exc
    except openai.APIConnectionError as exc:
        raise ConfigError(f"{what}: cannot reach the provider ({exc}); check --base-url") from exc
    except openai.BadRequestError as exc:
        raise InputError(f"{what}: the provider refused it: {_message(exc)}") from exc
    except openai.APIStatusError as exc:
        raise RagortuneError(f"{what}: provider answered {exc.status_code}: {_message(exc)}") from exc


def _message(exc: Any) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])
    return str(exc)


def upload(client: Any, path: str | Path) -> str:
    """Upload a chat JSONL file for fine-tuning; returns the provider's file id."""
    path = Path(path)
    with path.open("rb") as fh:
        uploaded = _call(f"upload {path}", client.files.create, file=(path.name, fh), purpose="fine-tune")
    return str(uploaded.id)


def create_job(
    client: Any,
    *,
    model: str,
    training_file: str,
    validation_file: str | None = None,
    epochs: int | None = None,
    suffix: str | None = None,
    seed: int | None = None,
) -> RemoteJob:
    """Start a supervised fine-tuning job; `epochs` None leaves the choice to the provider."""
    kwargs: dict[str, Any] = {"model": model, "training_file": training_file}
    if validation_file:
        kwargs["validation_file"] = validation_file
    if suffix:
        kwargs["suffix"] = suffix
    if seed is not None:
        kwargs["seed"] = seed
    if epochs is not None:
        kwargs["method"] = {"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": epochs}}}
    job = _call("create the fine-tuning job", client.fine_tuning.jobs.create, **kwargs)
    return _job(job, [])


def _job(job: Any, events: list[RemoteEvent], waited_s: float = 0.0) -> RemoteJob:
    error = getattr(job, "error", None)
    message = getattr(error, "message", None) if error is not None else None
    return RemoteJob(
        id=str(job.id),
        status=str(job.status),
        model=str(job.model),
        fine_tuned_model=job.fine_tuned_model,
        trained_tokens=job.trained_tokens,
        training_file=str(job.training_file),
        validation_file=job.validation_file,
        error=message,
        events=events,
        waited_s=waited_s,
    )


def new_events(client: Any, job_id: str, seen: set[str]) -> list[RemoteEvent]:
    """Events not reported yet, oldest first (the API lists newest first)."""
    page = _call(f"list events of {job_id}", client.fine_tuning.jobs.list_events, job_id, limit=100)
    fresh = [
        RemoteEvent(str(e.id), int(e.created_at), str(e.level), str(e.message))
        for e in page.data
        if str(e.id) not in seen
    ]
    seen.update(e.id for e in fresh)
    return sorted(fresh, key=lambda e: (e.created_at, e.id))


def watch_job(
    client: Any,
    job_id: str,
    *,
    poll_s: float = 10.0,
    timeout_s: float | None = None,
    on_event: Callable[[RemoteEvent], None] | None = None,
    on_status: Callable[[str], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> RemoteJob:
    """Poll until the job succeeds, fails or is cancelled, or `timeout_s` passes (then the job
    is returned as it stands; watch it again later with its id)."""
    started = time.monotonic()
    seen: set[str] = set()
    events: list[RemoteEvent] = []
    last_status = None
    while True:
        job = _call(f"get job {job_id}", client.fine_tuning.jobs.retrieve, job_id)
        for event in new_events(client, job_id, seen):
            events.append(event)
            if on_event:
                on_event(event)
        if job.status != last_status and on_status:
            on_status(str(job.status))
        last_status = job.status
        waited = time.monotonic() - started
        if job.status in TERMINAL or (timeout_s is not None and waited >= timeout_s):
            return _job(job, events, round(waited, 2))
        sleep(poll_s)


def run_remote(
    client: Any,
    train_path: str | Path,
    *,
    model: str,
    validation_path: str | Path | None = None,
    epochs: int | None = None,
    suffix: str | None = None,
    seed: int | None = None,
    wait: bool = True,
    poll_s: float = 10.0,
    timeout_s: float | None = None,
    on_event: Callable[[RemoteEvent], None] | None = None,
    on_status: Callable[[str], None] | None = None,
) -> RemoteJob:
    """`tune remote`: upload the file(s), start the job, and (with `wait`) watch it to the end."""
    training_file = upload(client, train_path)
    validation_file = upload(client, validation_path) if validation_path else None
    job = create_job(
        client,
        model=model,
        training_file=training_file,
        validation_file=validation_file,
        epochs=epochs,
        suffix=suffix,
        seed=seed,
    )
    if not wait:
        return job
    return watch_job(
        client, job.id, poll_s=poll_s, timeout_s=timeout_s, on_event=on_event, on_status=on_status
    )
