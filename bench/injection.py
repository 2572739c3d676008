"""Knowledge injection on public data: can a LoRA adapter learn facts the base model cannot
know, and recall them when asked in words it never trained on? SciFact abstracts, hand-written
questions (bench/data/scifact_injection/), `ragortune compare` with four arms.

    python bench/injection.py [--dataset ../shared/datasets/scifact] [--out bench/out/injection]
                              [--distractors 450] [--epochs N] [--held-out-facts 0.3] [--seed 0]
    python bench/injection.py --check      # only check the questions against the abstracts

The document set is the abstracts the questions are about plus `--distractors` other abstracts
(seeded), one JSONL file in OUT/docs/. `compare` then trains the adapter on the paraphrases
of ~70% of the facts (split by fact, seeded) and asks every arm the original questions: for the
fine-tuned arms these are unseen phrasings of trained facts, or facts never trained on. The
script prints per arm the accuracy on each kind with n and a 95% Wilson interval, the paired
tests (exact McNemar, Holm-adjusted) per kind, and answers the question of the published
studies (Ovadia et al. 2023, Soudani et al. 2024): on unseen phrasings, does fine-tuning land
nearer the base model or nearer RAG? A rerun reuses every finished stage of OUT.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "bench/data/scifact_injection"
KINDS = (("unseen_phrasing", "unseen phrasings of trained facts"),
         ("unseen_fact", "facts never trained on"))


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip()]


def check(corpus: dict[str, dict], questions: list[dict], paraphrases: dict[str, list[str]]
          ) -> list[str]:
    """Problems with the hand-written set: an answer not copied verbatim from its abstract, an
    answer given away by a paraphrase, a question without three paraphrases, a name of an
    unanswerable question that does occur in the corpus."""
    problems = []
    everything = " ".join(d["title"] + " " + d["text"] for d in corpus.values()).lower()
    for q in questions:
        texts = paraphrases.get(q["_id"], [])
        if len(texts) < 3:
            problems.append(f"{q['_id']}: {len(texts)} paraphrases (want 3)")
        if q["answers"]:
            doc = corpus.get(q["doc_id"])
            if doc is None:
                problems.append(f"{q['_id']}: doc_id {q['doc_id']} not in the corpus")
                continue
            abstract = doc["title"] + " " + doc["text"]
            problems += [f"{q['_id']}: answer {a!r} not verbatim in {q['doc_id']}"
                         for a in q["answers"] if a not in abstract]
            problems += [f"{q['_id']}: a paraphrase gives the answer away: {t!r}"
                         for t in [q["text"], *texts] for a in q["answers"]
                         if a.lower() in t.lower()]
        else:  # invented names (capitalised words after the first) must not exist
            names = [w for w in re.findall(r"\b[A-Z][a-z]+(?:-[A-Z0-9][\w]*)?\b", q["text"])[1:]]
            problems += [f"{q['_id']}: {w!r} occurs in the corpus" for w in names
                         if len(w) > 4 and f" {w.lower()} " in f" {everything} "]
    return problems


def make_docs(corpus: dict[str, dict], questions: list[dict], n_distractors: int, seed: int,
              out: Path) -> Path:
    """OUT/docs/scifact-injection.jsonl: the questions' abstracts plus seeded distractors."""
    wanted = sorted({q["doc_id"] for q in questions if q.get("doc_id")})
    rest = sorted(set(corpus) - set(wanted))
    chosen = wanted + random.Random(seed).sample(rest, n_distractors)
    folder = out / "docs"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "scifact-injection.jsonl"
    text = "".join(json.dumps({"_id": d, "title": corpus[d]["title"], "text": corpus[d]["text"]},
                              ensure_ascii=False) + "\n" for d in chosen)
    if not path.is_file() or path.read_text(encoding="utf-8") != text:
        path.write_text(text, encoding="utf-8")  # unchanged bytes keep compare's caches valid
    return folder


def fig(f: dict | None) -> str:
    if not f or f.get("value") is None:
        return "-"
    return f"{f['value']:.2f} [{f['low']:.2f}, {f['high']:.2f}] n={f['n']}"


def report(figures: dict, training: dict | None) -> None:
    """Per arm and kind of question: accuracy, interval, n; the paired tests; the verdict."""
    arms = figures["arms"]
    if training:
        print(f"\nadapter: {training['protocol']}")
        print(f"  {training['examples']} training examples, loss {training['loss_first']:.3f} -> "
              f"{training['loss_last']:.3f}, {training['seconds']:.0f} s")
    print(f"\n{'arm':8} {'unseen phrasings':>28} {'unseen facts':>28} {'seen':>22} "
          f"{'all counted':>28}")
    for name, a in arms.items():
        print(f"{name:8} {fig(a.get('accuracy_unseen_phrasing')):>28} "
              f"{fig(a.get('accuracy_unseen_fact')):>28} {fig(a.get('accuracy_seen')):>22} "
              f"{fig(a.get('accuracy')):>28}")
    print("(base and rag trained on nothing: scored on the same questions as the fine-tuned "
          "arm sorted them)")
    for key, label in (("all_counted", "all counted questions"), *KINDS):
        tests = figures["comparisons"].get(key) or []
        if not tests:
            continue
        print(f"\npaired tests on {label} (exact McNemar, Holm over the pairs):")
        for t in tests:
            star = "*" if t["significant"] else " "
            print(f" {star} {t['a']:>6} - {t['b']:<6} n={t['n']:<3} diff {t['diff']:+.3f} "
                  f"[{t['low']:+.3f}, {t['high']:+.3f}]  p_holm={t['p_holm']:.4f}  {t['verdict']}")
    verdict(arms, figures["comparisons"].get("unseen_phrasing") or [])


def verdict(arms: dict, tests: list[dict]) -> None:
    """The issue's question, answered from the figures on unseen phrasings."""
    values = {a: (arms.get(a, {}).get("accuracy_unseen_phrasing") or {}).get("value")
              for a in ("base", "rag", "ft")}
    if None in values.values():
        print("\nnearer base or RAG: not measured (needs the base, rag and ft arms)")
        return
    base, rag, ft = values["base"], values["rag"], values["ft"]
    nearer = "base" if abs(ft - base) < abs(ft - rag) else "rag" if abs(ft - rag) < abs(
        ft - base) else "halfway"
    sig = {frozenset((t["a"], t["b"])): t for t in tests}

    def said(a: str, b: str) -> str:
        t = sig.get(frozenset((a, b)))
        return "not tested" if t is None else t["verdict"]

    side = " (above it)" if nearer == "rag" and ft > rag else ""
    print(f"\nOn unseen phrasings of trained facts: ft {ft:.2f}, base {base:.2f}, rag {rag:.2f}: "
          f"ft lands nearer {nearer.upper() if nearer != 'halfway' else 'neither (halfway)'}"
          f"{side} (|ft-base| {abs(ft - base):.2f}, |ft-rag| {abs(ft - rag):.2f}).")
    print(f"  ft vs base: {said('base', 'ft')}; ft vs rag: {said('rag', 'ft')}.")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", type=Path, default=ROOT.parent / "shared/datasets/scifact")
    parser.add_argument("--out", type=Path, default=ROOT / "bench/out/injection")
    parser.add_argument("--distractors", type=int, default=450)
    parser.add_argument("--epochs", type=int, default=None,
                        help="adapter epochs [default: compare's recipe]")
    parser.add_argument("--held-out-facts", type=float, default=0.3)
    parser.add_argument("--arms", default="base,rag,ft,hybrid")
    parser.add_argument("--max-tokens", type=int, default=32,
                        help="answer length limit for every arm (compare's default: 32)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--check", action="store_true", help="check the data set and stop")
    args = parser.parse_args()

    corpus_file = args.dataset / "corpus.jsonl"
    if not corpus_file.is_file():
        print(f"SciFact not found at {args.dataset} (give --dataset)", file=sys.stderr)
        return 2
    corpus = {d["_id"]: d for d in read_jsonl(corpus_file)}
    questions = read_jsonl(DATA / "questions.jsonl")
    paraphrases = {r["_id"]: r["paraphrases"] for r in read_jsonl(DATA / "paraphrases.jsonl")}
    problems = check(corpus, questions, paraphrases)
    answerable = sum(1 for q in questions if q["answers"])
    print(f"{len(questions)} questions ({answerable} answerable, "
          f"{len(questions) - answerable} unanswerable), "
          f"{sum(len(v) for v in paraphrases.values())} paraphrases; "
          f"{len(problems)} problems")
    for p in problems:
        print("  " + p)
    if problems or args.check:
        return 1 if problems else 0

    from ragortune.compare import TRAIN_RECIPE, CompareConfig, run_compare

    docs = make_docs(corpus, questions, args.distractors, args.seed, args.out)
    recipe = {**TRAIN_RECIPE, **({"epochs": args.epochs} if args.epochs else {})}
    cfg = CompareConfig(docs=docs, out=args.out / "compare", questions=DATA / "questions.jsonl",
                        paraphrases=DATA / "paraphrases.jsonl",
                        arms=tuple(a.strip() for a in args.arms.split(",") if a.strip()),
                        seed=args.seed, held_out_facts=args.held_out_facts, train=recipe,
                        max_tokens=args.max_tokens)
    started = time.perf_counter()

    def event(stage: str, what: str, seconds: float, note: str) -> None:
        if what != "start":
            print(f"  {stage}: {'reused' if what == 'cached' else f'{seconds:.0f} s'}"
                  f"{'  (' + note + ')' if note else ''}", flush=True)

    print(f"documents: {args.distractors} distractors + "
          f"{len({q['doc_id'] for q in questions if q.get('doc_id')})} question abstracts; "
          f"epochs {recipe['epochs']}; arms {','.join(cfg.arms)}", flush=True)
    result = run_compare(cfg, on_event=event)
    print(f"compare done in {time.perf_counter() - started:.0f} s; report: "
          f"{result.files.get('markdown', cfg.out / 'report.md')}")
    report(result.figures, result.run.get("training"))
    (args.out / "summary.json").write_text(json.dumps(
        {"figures": result.figures, "training": result.run.get("training"),
         "recipe": recipe, "distractors": args.distractors, "seed": args.seed,
         "max_tokens": args.max_tokens}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
