"""LoRA training throughput: ragortune's recipe (`ragortune.tune.train.train`) against a plain
transformers + peft loop, on the same model, the same examples in the same order.

The plain loop is the textbook one: every example padded to --seq-len, the model's own loss
over full-vocabulary logits, AdamW. The recipe packs examples into rows (no padding), projects
only positions that carry a label onto the vocabulary, uses fused AdamW on CUDA, and can
torch.compile (--compile). Both run bf16 on CUDA and fp32 on CPU, LoRA r=16 on the attention
projections, SDPA attention. Each loop runs in its own process, so peak memory is its own.

Tokens/s counts real (non-padding) tokens: both loops see the same examples, so the ratio is
how much sooner the recipe gets through the same data. The plain loop's padded slots/s is
printed too (what a "batch x seq-len" figure counts).

  python bench/train.py                                   # CPU, the shipped SmolLM2
  python bench/train.py --prepare bench/out/prep          # tokenizer + data for a machine without them
  python bench/train.py --device cuda --random-init --prepared bench/out/prep \
      --batch-size 16 --seq-len 512 --steps 40 --warmup 5 [--compile] [--shape llama-1.1b]

--random-init builds a model of the same architecture and shape with random weights: it costs
the same per token, so no weights have to travel to a GPU machine.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SCIFACT = ROOT.parent / "shared" / "datasets" / "scifact"
SHAPES = {
    # SmolLM2-135M-Instruct as shipped (read from its GGUF header)
    "smollm2-135m": {"hidden_size": 576, "intermediate_size": 1536, "num_hidden_layers": 30,
                     "num_attention_heads": 9, "num_key_value_heads": 3, "head_dim": 64,
                     "max_position_embeddings": 8192, "rope_theta": 100000.0,
                     "tie_word_embeddings": True},
    # TinyLlama-1.1B (the reference's 1.1B Llama shape); vocabulary: the tokenizer's, see README
    "llama-1.1b": {"hidden_size": 2048, "intermediate_size": 5632, "num_hidden_layers": 22,
                   "num_attention_heads": 32, "num_key_value_heads": 4, "head_dim": 64,
                   "max_position_embeddings": 4096, "rope_theta": 10000.0,
                   "tie_word_embeddings": False},
}
ATTENTION = ("q_proj", "k_proj", "v_proj", "o_proj")


# ---- data ---------------------------------------------------------------------------------------
def scifact_chats(limit: int, seed: int = 0) -> list[dict]:
    """Knowledge-injection-shaped examples: a claim as the question, the abstract it cites as
    the answer (100-500 tokens each)."""
    import random

    corpus = {}
    with open(SCIFACT / "corpus.jsonl", encoding="utf-8") as fh:
        for line in fh:
            doc = json.loads(line)
            corpus[doc["_id"]] = f"{doc['title']}. {doc['text']}"
    claims = {}
    with open(SCIFACT / "queries.jsonl", encoding="utf-8") as fh:
        for line in fh:
            q = json.loads(line)
            claims[q["_id"]] = q["text"]
    pairs = []
    qrels = SCIFACT / "qrels" / "test.tsv"
    for line in qrels.read_text().splitlines()[1:]:
        qid, did = line.split("\t")[:2]
        if qid in claims and did in corpus:
            pairs.append((claims[qid], corpus[did]))
    random.Random(seed).shuffle(pairs)
    return [{"messages": [{"role": "user", "content": f"What does the literature say about: {c}"},
                          {"role": "assistant", "content": a}]} for c, a in pairs[:limit]]


def synthetic_chats(limit: int, seed: int = 0) -> list[dict]:
    import random

    rng = random.Random(seed)
    words = ["the", "of", "model", "data", "cell", "protein", "study", "effect", "patient", "risk", "gene", "dose", "trial", "rate"]
    return [{"messages": [{"role": "user", "content": " ".join(rng.choices(words, k=rng.randint(8, 30)))},
                          {"role": "assistant", "content": " ".join(rng.choices(words, k=rng.randint(60, 400)))}]}
            for _ in range(limit)]


def prepare(folder: Path, n_examples: int) -> None:
    """Tokenizer files and chat data, so a GPU machine needs neither the GGUF nor SciFact."""
    from ragortune.tune.tokens import load_tokenizer

    folder.mkdir(parents=True, exist_ok=True)
    load_tokenizer(None).save_pretrained(folder / "tokenizer")
    chats = scifact_chats(n_examples) if SCIFACT.is_dir() else synthetic_chats(n_examples)
    with open(folder / "chat.jsonl", "w", encoding="utf-8") as fh:
        fh.writelines(json.dumps(c) + "\n" for c in chats)
    print(f"wrote {folder}/tokenizer and {folder}/chat.jsonl ({len(chats)} examples)")


# ---- model ----------------------------------------------------------------------------------------
def load_model(args, tokenizer):
    import torch

    if args.random_init:
        from transformers import LlamaConfig, LlamaForCausalLM

        torch.manual_seed(0)
        config = LlamaConfig(vocab_size=len(tokenizer), bos_token_id=tokenizer.bos_token_id,
                             eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
                             **SHAPES[args.shape])
        config._attn_implementation = "sdpa"
        dtype = torch.bfloat16 if args.device == "cuda" else torch.float32
        with torch.device(args.device):
            return LlamaForCausalLM(config).to(dtype)
    from ragortune.models import load_causal_lm

    return load_causal_lm(None)[1]


def peak_memory(device) -> int:
    import torch

    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device))
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


# ---- the two loops -------------------------------------------------------------------------------
def run_plain(args, tokenizer, model, examples) -> dict:
    """The plain loop: pad to seq_len, model's loss, AdamW, bf16 weights on CUDA."""
    import torch
    from peft import LoraConfig, get_peft_model

    from ragortune.tune.packing import epoch_batches

    device = torch.device(args.device)
    model.config.use_cache = False
    if device.type == "cuda":
        model.to(torch.bfloat16)
    model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, lora_dropout=0.05,
                                             target_modules=list(ATTENTION), task_type="CAUSAL_LM"))
    model.to(device).train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=2e-4)
    pad = tokenizer.pad_token_id
    batches = [b for e in range(1000) for b in epoch_batches(len(examples), args.batch_size, seed=0, epoch=e)]
    real = slots = 0
    timed = 0.0
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    for step, ids in enumerate(batches[: args.warmup + args.steps]):
        t0 = time.perf_counter()
        input_ids = torch.full((len(ids), args.seq_len), pad, dtype=torch.long)
        labels = torch.full_like(input_ids, -100)
        mask = torch.zeros_like(input_ids)
        for r, i in enumerate(ids):
            n = len(examples[i].input_ids)
            input_ids[r, :n] = torch.tensor(examples[i].input_ids)
            labels[r, :n] = torch.tensor(examples[i].labels)
            mask[r, :n] = 1
        out = model(input_ids=input_ids.to(device), attention_mask=mask.to(device), labels=labels.to(device))
        out.loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        loss = float(out.loss)  # syncs the device, so the step is really over
        if step >= args.warmup:
            timed += time.perf_counter() - t0
            real += int(mask.sum())
            slots += input_ids.numel()
    return {"loop": "plain transformers+peft", "tokens_per_s": real / timed, "slots_per_s": slots / timed,
            "seconds": timed, "tokens": real, "last_loss": loss, "peak_memory_bytes": peak_memory(device)}


def run_recipe(args, tokenizer, model, data: Path) -> dict:
    """ragortune's own training function, timed from its per-step log."""

    from ragortune.tune.train import TrainConfig, train

    with tempfile.TemporaryDirectory() as out:
        cfg = TrainConfig(data=str(data), out=out, epochs=1000, batch_size=args.batch_size,
                          max_seq_len=args.seq_len, max_steps=args.warmup + args.steps,
                          checkpoint_every=10**9, device=args.device, compile=args.compile,
                          lr=2e-4, seed=0)
        result = train(cfg, tokenizer=tokenizer, model=model)
    log = result.log
    warm = log[args.warmup - 1] if args.warmup else {"tokens": 0, "seconds": 0.0}
    tokens = log[-1]["tokens"] - warm["tokens"]
    seconds = log[-1]["seconds"] - warm["seconds"]
    return {"loop": "ragortune recipe" + (" + compile" if args.compile else ""),
            "tokens_per_s": tokens / seconds, "slots_per_s": None, "seconds": seconds, "tokens": tokens,
            "last_loss": log[-1]["loss"], "peak_memory_bytes": result.peak_memory_bytes}


def child(args) -> None:
    """One loop in this process; prints its figures as JSON on the last line."""
    import torch
    from transformers import AutoTokenizer

    from ragortune.tune.tokens import encode_chat, load_tokenizer

    tokenizer = AutoTokenizer.from_pretrained(args.prepared / "tokenizer") if args.prepared else load_tokenizer(None)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    data = args.prepared / "chat.jsonl" if args.prepared else args.data
    chats = [json.loads(x)["messages"] for x in data.read_text().splitlines()]
    examples = [encode_chat(tokenizer, c, max_tokens=args.seq_len) for c in chats]
    model = load_model(args, tokenizer)
    torch.manual_seed(0)
    if args.loop == "plain":
        figures = run_plain(args, tokenizer, model, examples)
    else:
        figures = run_recipe(args, tokenizer, model, data)
    figures["mean_example_tokens"] = sum(len(e.input_ids) for e in examples) / len(examples)
    print(json.dumps(figures))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", choices=("cpu", "cuda"), default=None, help="(default: cuda if visible)")
    p.add_argument("--random-init", action="store_true", help="same-shape model with random weights")
    p.add_argument("--shape", choices=sorted(SHAPES), default="smollm2-135m")
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--seq-len", type=int, default=None)
    p.add_argument("--steps", type=int, default=None, help="timed steps")
    p.add_argument("--warmup", type=int, default=None, help="untimed steps first")
    p.add_argument("--examples", type=int, default=400)
    p.add_argument("--compile", action="store_true", help="torch.compile in the recipe")
    p.add_argument("--loops", default="plain,recipe")
    p.add_argument("--prepare", type=Path, help="write tokenizer + data to this folder and stop")
    p.add_argument("--prepared", type=Path, help="folder written by --prepare")
    p.add_argument("--json", type=Path, help="also write the figures here")
    p.add_argument("--loop", help=argparse.SUPPRESS)
    p.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.device is None:
        import torch

        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    cuda = args.device == "cuda"
    args.batch_size = args.batch_size or (16 if cuda else 4)
    args.seq_len = args.seq_len or (512 if cuda else 256)
    args.steps = args.steps or (40 if cuda else 3)
    args.warmup = args.warmup if args.warmup is not None else (5 if cuda else 1)
    if args.prepare:
        prepare(args.prepare, args.examples)
        return
    if args.loop:
        child(args)
        return

    data = None
    if not args.prepared:  # build the chat data here (needs the shipped tokenizer only later)
        data = Path(tempfile.mkdtemp()) / "chat.jsonl"
        chats = scifact_chats(args.examples) if SCIFACT.is_dir() else synthetic_chats(args.examples)
        data.write_text("".join(json.dumps(c) + "\n" for c in chats))
    rows = []
    for loop in args.loops.split(","):
        cmd = [sys.executable, __file__, "--loop", loop] + sys.argv[1:]
        if data:
            cmd += ["--data", str(data)]
        for name in ("batch_size", "seq_len", "steps", "warmup"):
            cmd += [f"--{name.replace('_', '-')}", str(getattr(args, name))]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode:
            sys.stderr.write(done.stderr[-4000:])
            raise SystemExit(f"loop {loop} failed")
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
    model = f"{'random-init ' if args.random_init else 'shipped '}{args.shape if args.random_init else 'SmolLM2-135M'}"
    print(f"\n{model} on {args.device}; batch {args.batch_size} x up to {args.seq_len} tokens; "
          f"{args.steps} timed steps after {args.warmup} warm-up; mean example "
          f"{rows[0]['mean_example_tokens']:.0f} tokens; load average {os.getloadavg()[0]:.1f}")
    print(f"{'loop':<28} {'tokens/s':>10} {'padded slots/s':>15} {'peak memory':>12} {'last loss':>10}")
    for r in rows:
        slots = f"{r['slots_per_s']:,.0f}" if r["slots_per_s"] else "-"
        print(f"{r['loop']:<28} {r['tokens_per_s']:>10,.1f} {slots:>15} "
              f"{r['peak_memory_bytes'] / 2**20:>9,.0f} MiB {r['last_loss']:>10.3f}")
    if len(rows) == 2:
        print(f"recipe / plain: {rows[1]['tokens_per_s'] / rows[0]['tokens_per_s']:.2f}x tokens/s")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
