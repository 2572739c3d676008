"""Fine-tuning commands: `tune build`, `tune validate`, `tune train`, `tune remote`."""

from __future__ import annotations

import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

import typer
from rich.text import Text

from ragortune.cli.app import (
    JSON_OPTION,
    app,
    console,
    emit_json,
    labelled,
    print_error,
    show_progress,
    table,
)
from ragortune.embed import redact_url

tune_app = typer.Typer(
    help="Fine-tuning arm: build chat data, validate it and price the job, train LoRA adapters, "
    "run OpenAI-style fine-tuning jobs.",
    no_args_is_help=True,
)
app.add_typer(tune_app, name="tune")

DEFAULT_REMOTE_MODEL = "gpt-4o-mini-2024-07-18"


def _training_price(model: str, price_per_m: float | None, prices: Path | None) -> tuple[float | None, str | None]:
    """The price per million training tokens: --price-per-m, else the price book (with the
    ragortune.toml and --prices overrides), else unknown (local models)."""
    if price_per_m is not None:
        return price_per_m, "--price-per-m"
    from ragortune.cost.prices import PriceBook, load_price_file, project_overrides
    from ragortune.tune.tokens import openai_base_model

    overrides = (load_price_file(prices) if prices else []) + project_overrides()
    hit = PriceBook(overrides).find(openai_base_model(model), "train_mtok")
    if hit is None:
        return None, None
    return hit.usd, f"{hit.source} ({hit.ref}{', ' + hit.as_of if hit.as_of else ''})"


# --------------------------------------------------------------------------------------------------
@tune_app.command("build")
def build_command(
    source: Path = typer.Argument(..., help="BEIR folder or queries.jsonl with `answers`, or `ragortune synth` output."),
    out: Path = typer.Option(Path("ft-data"), "--out", help="Folder for train.jsonl and validation.jsonl."),
    system: str | None = typer.Option(None, "--system", help="System prompt put in every example."),
    validation: float = typer.Option(0.1, "--validation", help="Share of facts held out for validation (0 = none)."),
    split_by: str = typer.Option("fact", "--split-by", help="fact: hold out whole facts | variant: hold out one paraphrase of each fact."),
    seed: int = typer.Option(0, "--seed", help="Seed of the split."),
    refusal: str | None = typer.Option(None, "--refusal", help="Train unanswerable questions (empty `answers`) to reply this; skipped otherwise."),
    paraphrase_file: Path | None = typer.Option(None, "--paraphrase-file", help="JSONL of hand-written rewordings, one line per question: {\"_id\": ..., \"paraphrases\": [...]}. Knowledge injection trains on several phrasings of each fact, so that the evaluation can ask phrasings the adapter never saw (they are trained with the question's answer)."),
    paraphrases_only: bool = typer.Option(False, "--paraphrases-only", help="Train on the rewordings only, not on the question as written: the written wording stays held out, and asking it measures recall of the fact, not of a memorised sentence."),
    paraphrases: int = typer.Option(0, "--paraphrases", help="Reworded variants per fact (hand-written ones from --paraphrase-file first, then written by --paraphrase-llm to make up N); knowledge injection needs several."),
    paraphrase_llm: str = typer.Option("smollm2", "--paraphrase-llm", help="Model that writes paraphrases: local (smollm2, HF id, path) or, with --paraphrase-base-url, a served model."),
    paraphrase_base_url: str | None = typer.Option(None, "--paraphrase-base-url", help="OpenAI-compatible endpoint (…/v1) for --paraphrase-llm."),
    api_key_env: str = typer.Option("OPENAI_API_KEY", "--api-key-env", help="Environment variable holding the endpoint's API key."),
    json_output: bool = JSON_OPTION,
) -> None:
    """Write chat-format JSONL (train + validation) from question/answer pairs, and
    ragortune_build.json: what the adapter will train on, so no evaluation scores it on that."""
    from ragortune.tune.dataset import build_dataset, llm_paraphraser

    paraphrase = None
    if paraphrases > 0:
        if paraphrase_base_url:
            from ragortune.generate.openai_compat import OpenAICompatLLM

            llm: Any = OpenAICompatLLM(paraphrase_llm, paraphrase_base_url, os.environ.get(api_key_env))
        else:
            from ragortune.generate.local import LocalLLM

            llm = LocalLLM.load(paraphrase_llm)
        paraphrase = llm_paraphraser(llm)
    result = build_dataset(
        source, out, system=system, refusal=refusal, validation=validation, split_by=split_by,
        seed=seed, paraphrase=paraphrase, n_paraphrases=paraphrases,
        paraphraser={"llm": paraphrase_llm, "api_key_env": api_key_env,
                     "base_url": redact_url(paraphrase_base_url) if paraphrase_base_url else None},
        paraphrase_file=paraphrase_file, original_wording=not paraphrases_only,
    )
    payload = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(result).items()}
    if json_output:
        emit_json(payload)
        return
    console.print(
        f"{result.n_facts} facts -> {result.n_train} training and {result.n_validation} validation "
        f"examples ({result.n_paraphrases} paraphrases, {result.skipped_unanswerable} unanswerable skipped)"
    )
    console.print(f"wrote {result.train_path}" + (f" and {result.validation_path}" if result.validation_path else ""))
    console.print(f"next: ragortune tune validate {result.train_path}", style="dim")


# --------------------------------------------------------------------------------------------------
def report_to_json(report: Any) -> dict[str, Any]:
    """The documented `tune validate --json` schema."""
    return {
        "file": report.path,
        "model": report.model,
        "max_tokens": report.max_tokens,
        "lines": report.lines,
        "examples": report.examples,
        "ok": report.ok,
        "errors": len(report.errors),
        "warnings": len(report.warnings),
        "problems": [asdict(p) for p in report.problems],
        "truncated": report.truncated,
        "tokens": asdict(report.tokens) if report.tokens else None,
        "estimate": asdict(report.estimate) if report.estimate else None,
    }


@tune_app.command("validate")
def validate_command(
    file: Path = typer.Argument(..., help="Chat JSONL to check."),
    model: str = typer.Option(DEFAULT_REMOTE_MODEL, "--model", help="Target model: an OpenAI name (counted with its tokenizer, priced from the price book) or a local one (smollm2, HF id, path)."),
    max_tokens: int | None = typer.Option(None, "--max-tokens", help="Per-example token limit (default: the provider's, or 2048 for local models)."),
    epochs: int | None = typer.Option(None, "--epochs", help="Epochs of the job (default: the provider's rule)."),
    price_per_m: float | None = typer.Option(None, "--price-per-m", help="USD per million training tokens (instead of the price book)."),
    prices: Path | None = typer.Option(None, "--prices", help="Price overrides file (TOML/YAML)."),
    strict: bool = typer.Option(False, "--strict", help="Exit 1 on warnings too (duplicates, truncation)."),
    json_output: bool = JSON_OPTION,
) -> None:
    """Report every problem in a fine-tuning file by line, then token statistics and the bill.
    Exits 1 when there are errors."""
    from ragortune.tune.tokens import ChatTokenizer
    from ragortune.tune.validate import validate_file

    tokenizer = ChatTokenizer.for_model(model, max_tokens=max_tokens)
    price, source = _training_price(model, price_per_m, prices)
    report = validate_file(file, tokenizer, epochs=epochs, price_per_million=price, price_source=source)
    failed = bool(report.errors) or (strict and bool(report.warnings))
    if json_output:
        emit_json(report_to_json(report))
        if failed:
            raise SystemExit(1)
        return
    if report.problems:
        rows = [(str(p.line), Text(p.severity, style="red" if p.severity == "error" else "yellow"),
                 p.code, p.message) for p in report.problems]
        console.print(table(("line", "severity", "problem", "what to do"), rows, numeric=("line",),
                            title=f"{len(report.errors)} errors, {len(report.warnings)} warnings "
                                  f"in {file}"))
    else:
        console.print(f"[green]no problems[/green] in {report.lines} lines of {file}")
    if report.tokens:
        t = report.tokens
        console.print(
            f"{t.examples} usable examples; tokens per example: min {t.min}, median {t.median:g}, "
            f"mean {t.mean:g}, p90 {t.p90}, max {t.max} (limit {report.max_tokens}, "
            f"{report.truncated} truncated); assistant tokens: {t.assistant_total} "
            f"(mean {t.assistant_mean:g}); counted with the {report.model} tokenizer"
        )
    if report.estimate and tokenizer.kind == "hf":
        e = report.estimate
        console.print(
            f"training tokens: {e.tokens_per_epoch:,} x {e.n_epochs} epochs = {e.billed_tokens:,}"
            + (f"; at ${e.price_per_million:g}/M tokens: ${e.cost_usd:,.4f}" if e.cost_usd is not None
               else " (a local model: its cost is GPU or CPU time, see `tune train` and the cost model)")
        )
    elif report.estimate:
        e = report.estimate
        rule = "requested" if e.epochs_rule == "requested" else "provider default: 3, 100..25,000 example passes"
        cost = (f"${e.cost_usd:,.4f} at ${e.price_per_million:g}/M tokens ({e.price_source})"
                if e.cost_usd is not None else "no training price known for this model (give --price-per-m)")
        console.print(
            f"billed: {e.tokens_per_epoch:,} tokens x {e.n_epochs} epochs ({rule}) = "
            f"{e.billed_tokens:,} tokens; estimated cost {cost}"
        )
    if failed:
        raise SystemExit(1)


# --------------------------------------------------------------------------------------------------
@tune_app.command("train")
def train_command(
    data: Path = typer.Option(..., "--data", help="Training chat JSONL (from `tune build`)."),
    validation: Path | None = typer.Option(None, "--validation", help="Validation JSONL (default: validation.jsonl beside --data, if there)."),
    no_validation: bool = typer.Option(False, "--no-validation", help="Do not compute validation loss."),
    base: str | None = typer.Option(None, "--base", help="Base model: Hugging Face id or local path (default: the shipped SmolLM2-135M-Instruct)."),
    out: Path = typer.Option(Path("adapter"), "--out", help="Folder for the adapter, its ragortune_train.json, checkpoints."),
    epochs: int = typer.Option(3, "--epochs"),
    lora_r: int = typer.Option(16, "--lora-r", help="LoRA rank."),
    lora_alpha: int = typer.Option(32, "--lora-alpha"),
    targets: str = typer.Option("q_proj,k_proj,v_proj,o_proj", "--targets", help="Comma-separated module names that get adapters."),
    top_layers: int | None = typer.Option(None, "--top-layers", help="Adapt only the last N decoder layers (faster steps: the backward pass stops there) [default: all]."),
    lr: float = typer.Option(2e-4, "--lr", help="Peak learning rate (cosine schedule, warm-up)."),
    batch_size: int = typer.Option(8, "--batch-size", help="Examples per optimiser step."),
    grad_accum: int = typer.Option(1, "--grad-accum", help="Micro-batches per step (less memory, same result)."),
    max_seq_len: int = typer.Option(2048, "--max-seq-len", help="Longer examples are cut; also the packed row length."),
    seed: int = typer.Option(0, "--seed"),
    device: str = typer.Option("auto", "--device", help="auto | cpu | cuda"),
    precision: str = typer.Option("auto", "--precision", help="auto (bf16 on GPU, fp32 on CPU) | fp32 | bf16"),
    qlora: bool = typer.Option(False, "--qlora", help="4-bit base weights (needs bitsandbytes and a GPU)."),
    compile_model: bool = typer.Option(False, "--compile", help="torch.compile the model."),
    gradient_checkpointing: bool = typer.Option(False, "--gradient-checkpointing", help="Recompute activations: less memory, slower."),
    checkpoint_every: int = typer.Option(50, "--checkpoint-every", help="Steps between checkpoints (and at every epoch end)."),
    eval_every: int = typer.Option(0, "--eval-every", help="Steps between validations (0 = every epoch end)."),
    max_steps: int | None = typer.Option(None, "--max-steps", help="Stop after this many steps."),
    no_resume: bool = typer.Option(False, "--no-resume", help="Ignore checkpoints in --out and start over."),
    merge: bool = typer.Option(False, "--merge", help="Also write merged full weights to OUT/merged."),
    keep_checkpoints: bool = typer.Option(False, "--keep-checkpoints", help="Keep checkpoints after a finished run."),
    json_output: bool = JSON_OPTION,
) -> None:
    """Train a LoRA adapter (resumes a killed run from its last checkpoint in --out)."""
    from ragortune.tune.train import TrainConfig, train

    if validation is None and not no_validation and (data.parent / "validation.jsonl").is_file() \
            and data.name != "validation.jsonl":
        validation = data.parent / "validation.jsonl"
    cfg = TrainConfig(
        data=str(data), validation=None if no_validation or validation is None else str(validation),
        base=base, out=str(out), epochs=epochs, batch_size=batch_size, grad_accum=grad_accum,
        max_seq_len=max_seq_len, lr=lr, lora_r=lora_r, lora_alpha=lora_alpha,
        target_modules=tuple(t.strip() for t in targets.split(",") if t.strip()),
        top_layers=top_layers, seed=seed,
        device=device, precision=precision, qlora=qlora, compile=compile_model,
        gradient_checkpointing=gradient_checkpointing, checkpoint_every=checkpoint_every,
        eval_every=eval_every, max_steps=max_steps, resume=not no_resume, merge=merge,
        keep_checkpoints=keep_checkpoints,
    )
    if show_progress(json_output):
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        columns = (TextColumn("train"), BarColumn(), MofNCompleteColumn(), TextColumn("loss {task.fields[loss]}"),
                   TextColumn("val {task.fields[val]}"), TextColumn("{task.fields[rate]} tok/s"),
                   TextColumn("ETA"), TimeRemainingColumn())
        with Progress(*columns, console=console, transient=True) as bar:
            task = bar.add_task("train", total=None, loss="-", val="-", rate="-")

            def on_progress(p: Any) -> None:
                fields = {"loss": f"{p.loss:.3f}" if p.loss is not None else "-",
                          "rate": f"{p.tokens_per_s:,.0f}"}
                if p.val_loss is not None:
                    fields["val"] = f"{p.val_loss:.3f}"
                bar.update(task, completed=p.step, total=p.total_steps, **fields)

            result = train(cfg, on_progress=on_progress)
    else:
        result = train(cfg)
    payload = {k: v for k, v in asdict(result).items() if k != "log"}
    if json_output:
        emit_json(payload)
        return
    if result.resumed_from_step is not None:
        console.print(f"resumed from the checkpoint at step {result.resumed_from_step}")
    val = result.val_losses
    console.print(
        f"{result.steps} steps over {result.examples} examples: loss {result.loss_first} -> {result.loss_last}"
        + (f", validation loss {val[0][1]:.4f} -> {val[-1][1]:.4f}" if val else "")
    )
    console.print(
        f"{result.tokens:,} tokens in {result.train_seconds:.1f} s = {result.tokens_per_s:,.1f} tokens/s on "
        f"{result.device} ({result.precision}); peak memory {result.peak_memory_bytes / 2**20:,.0f} MiB "
        f"({result.peak_memory_kind})"
    )
    console.print(f"adapter: {result.adapter}" + (f"; merged weights: {result.merged}" if result.merged else ""))


# --------------------------------------------------------------------------------------------------
@tune_app.command("remote")
def remote_command(
    data: Path | None = typer.Option(None, "--data", help="Training chat JSONL to upload."),
    validation: Path | None = typer.Option(None, "--validation", help="Validation JSONL to upload."),
    model: str = typer.Option(DEFAULT_REMOTE_MODEL, "--model", help="Base model to fine-tune at the provider."),
    base_url: str | None = typer.Option(None, "--base-url", help="Provider's OpenAI-style API (…/v1) (default: OpenAI)."),
    api_key_env: str = typer.Option("OPENAI_API_KEY", "--api-key-env", help="Environment variable holding the API key."),
    epochs: int | None = typer.Option(None, "--epochs", help="(default: the provider's choice)"),
    suffix: str | None = typer.Option(None, "--suffix", help="Added to the fine-tuned model's name."),
    seed: int | None = typer.Option(None, "--seed"),
    job: str | None = typer.Option(None, "--job", help="Watch an existing job instead of starting one."),
    wait: bool = typer.Option(True, "--wait/--no-wait", help="Poll until the job ends."),
    poll: float = typer.Option(10.0, "--poll", help="Seconds between status polls."),
    timeout: float | None = typer.Option(None, "--timeout", help="Stop watching after this many seconds (the job goes on)."),
    skip_validate: bool = typer.Option(False, "--skip-validate", help="Upload without checking the file first."),
    json_output: bool = JSON_OPTION,
) -> None:
    """Upload, start and watch an OpenAI-style fine-tuning job; prints the fine-tuned model id.
    Exits 1 when the job failed or was cancelled."""
    from ragortune.errors import InputError
    from ragortune.tune.remote import make_client, run_remote, watch_job

    client = make_client(base_url, os.environ.get(api_key_env))
    quiet = json_output

    def on_event(event: Any) -> None:
        if not quiet:
            console.print(labelled(f"  [{event.level}]", "", event.message), highlight=False)

    def on_status(status: str) -> None:
        if not quiet:
            console.print(f"job status: {status}")

    if job:
        result = watch_job(client, job, poll_s=poll, timeout_s=timeout, on_event=on_event, on_status=on_status)
    else:
        if data is None:
            raise InputError("give --data FILE to start a job, or --job ID to watch one")
        if not skip_validate:
            from ragortune.tune.tokens import ChatTokenizer
            from ragortune.tune.validate import validate_file

            for path in [data] + ([validation] if validation else []):
                report = validate_file(path, ChatTokenizer.for_model(model))
                if report.errors:
                    first = report.errors[0]
                    raise InputError(
                        f"{path}:{first.line}: {first.message} ({len(report.errors)} errors in all); "
                        f"nothing uploaded: run `ragortune tune validate {path}` to see them"
                    )
        result = run_remote(
            client, data, model=model, validation_path=validation, epochs=epochs, suffix=suffix,
            seed=seed, wait=wait, poll_s=poll, timeout_s=timeout, on_event=on_event, on_status=on_status,
        )
    payload = asdict(result) | {"done": result.done,
                                "base_url": redact_url(base_url) if base_url else None}
    if json_output:
        emit_json(payload)
    elif result.status == "succeeded":
        console.print(f"[green]succeeded[/green]: fine-tuned model [bold]{result.fine_tuned_model}[/bold] "
                      f"({result.trained_tokens or 0:,} trained tokens)")
        console.print("serve it as an arm through the OpenAI-compatible backend with this model id",
                      style="dim")
    elif result.done:
        print_error(f"job {result.id} {result.status}: {result.error or 'no reason given'}")
    else:
        console.print(f"job {result.id} is {result.status}; watch it again with "
                      f"`ragortune tune remote --job {result.id}`")
    if result.status in ("failed", "cancelled"):
        raise SystemExit(1)
