"""Latency per stage, tokens per query and answer quality of `ask` on a labelled question set.

    python bench/answers.py --kb demo-work/kb --questions examples/demo_kb/questions-v1.jsonl

Uses the KB's calibrated threshold unless --min-score is given, and also reports a
leave-one-out estimate of the gate (each question gated by a threshold calibrated on the
others), since a threshold calibrated on the same questions flatters itself.

`--llm` takes several specs separated by commas (default `smollm2,smollm2@float32,hf:smollm2`:
the fast CTranslate2 backend in int8 and in float32, and transformers on the same weights);
`@TYPE` sets RAGORTUNE_CT2_QUANTIZATION for that load. Each runs the same questions in one
process; the report ends with how often answers agree word for word with the first, and an
exact McNemar test of the gold-answer rates against the first.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

from ragortune import rag
from ragortune.evaluate.stats import mcnemar, wilson
from ragortune.generate import load_llm
from ragortune.judge import verdict
from ragortune.kb import open_kb
from ragortune.questions import read_questions
from ragortune.rag import CONTEXT_K
from ragortune.rag.calibrate import best_similarities, choose_threshold


def leave_one_out(scores: np.ndarray, answerable: np.ndarray) -> tuple[int, int]:
    """(answerable let through, unanswerable abstained), each question gated by the others."""
    passed = abstained = 0
    for i in range(len(scores)):
        rest = np.arange(len(scores)) != i
        threshold = choose_threshold(scores[rest], answerable[rest])
        if answerable[i]:
            passed += scores[i] >= threshold
        else:
            abstained += scores[i] < threshold
    return passed, abstained


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kb", required=True)
    parser.add_argument("--questions", required=True)
    parser.add_argument("--llm", default="smollm2,smollm2@float32,hf:smollm2",
                        help="comma-separated LLM specs, each run on the same questions; "
                        "SPEC@TYPE loads a CTranslate2 copy of that weight type")
    parser.add_argument("-k", type=int, default=CONTEXT_K)
    parser.add_argument("--mode", default="hybrid")
    parser.add_argument("--min-score", type=float, default=None)
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    args = parser.parse_args()

    kb = open_kb(args.kb)
    questions = read_questions(args.questions, require_answers=True)
    kb.embed_query("warm up")  # model load is reported apart from per-query latency
    scores = best_similarities(kb, questions, k=args.k, mode=args.mode)
    labels = np.array([q.answerable for q in questions])
    loo = leave_one_out(scores, labels)
    runs = [run(kb, spec, questions, args, loo, labels) for spec in args.llm.split(",")]
    texts = [r.pop("_texts") for r in runs]
    golds = [r.pop("_gold") for r in runs]
    called = [i for i, t in enumerate(texts[0]) if t is not None]
    for r, text, gold in zip(runs, texts, golds):
        same = sum(text[i] == texts[0][i] for i in called)
        test = mcnemar(gold, golds[0], a=r["spec"], b=runs[0]["spec"])
        r["vs_first"] = {"same_answer": [same, len(called)], "gold_diff": round(test.diff, 3),
                         "mcnemar_p": round(test.p_value, 3)}
    if args.json:
        print(json.dumps({"runs": runs}, indent=2))
        return
    for result in runs:
        report(result)
    print(f"\n{'LLM':<18}{'p50 s':>7}{'p95 s':>7}  {'gold (95% CI)':<22}"
          f"{'same text as ' + runs[0]['spec']:<28}McNemar p")
    for r in runs:
        row = r["latency_s"].get("end to end (LLM called)", {"p50": float("nan"), "p95": float("nan")})
        gold = wilson(*r["answerable_with_gold"])
        same, n = r["vs_first"]["same_answer"]
        print(f"{r['spec']:<18}{row['p50']:>7.3f}{row['p95']:>7.3f}  "
              f"{f'{gold.value:.2f} [{gold.low:.2f}, {gold.high:.2f}]':<22}"
              f"{f'{same}/{n} ({same / max(n, 1):.0%})':<28}{r['vs_first']['mcnemar_p']:.3f}")


def run(kb, spec: str, questions, args, loo, labels) -> dict:
    """All questions through one backend; the answer texts ride along for the agreement."""
    model, _, weights = spec.partition("@")
    if weights:
        os.environ["RAGORTUNE_CT2_QUANTIZATION"] = weights
    started = time.perf_counter()
    llm = load_llm(model)
    load_s = time.perf_counter() - started
    os.environ.pop("RAGORTUNE_CT2_QUANTIZATION", None)
    rag.answer(kb, llm, questions[0].text, k=args.k, mode=args.mode, min_score=args.min_score)
    answers = [rag.answer(kb, llm, q.text, k=args.k, mode=args.mode, min_score=args.min_score)
               for q in questions]
    usage = [a.usage for a in answers]
    called = [a.usage for a in answers if a.model is not None]
    stages = {
        "embed": [u.embed_s for u in usage], "retrieve": [u.retrieve_s for u in usage],
        "generate (LLM called)": [u.generate_s for u in called],
        "end to end (all)": [u.total_s for u in usage],
        "end to end (LLM called)": [u.total_s for u in called],
    }
    answerable = [(q, a) for q, a in zip(questions, answers) if q.answerable]
    unanswerable = [(q, a) for q, a in zip(questions, answers) if not q.answerable]
    loo_passed, loo_abstained = loo
    return {
        "spec": spec, "llm": llm.name, "k": args.k, "mode": args.mode,
        "threshold": answers[0].threshold,
        "questions": len(questions), "llm_load_s": round(load_s, 2),
        "latency_s": {name: {"p50": round(float(np.percentile(v, 50)), 4),
                             "p95": round(float(np.percentile(v, 95)), 4), "n": len(v)}
                      for name, v in stages.items() if v},
        "tokens_per_query": {
            "embedding": round(float(np.mean([u.embedding_tokens for u in usage])), 1),
            "prompt (LLM called)": round(float(np.mean([u.prompt_tokens for u in called] or [0])), 1),
            "completion (LLM called)": round(float(np.mean([u.completion_tokens for u in called] or [0])), 1),
        },
        "answerable_with_gold": [sum(bool(verdict(a.text, q.answers, a.abstained)) for q, a in answerable),
                                 len(answerable)],
        "unanswerable_abstained": [sum(a.abstained for _, a in unanswerable), len(unanswerable)],
        "citations": {"model_written": sum(bool(a.citations) and not a.citations_inferred for a in answers),
                      "inferred": sum(a.citations_inferred for a in answers),
                      "dropped": sum(len(a.dropped_citations) for a in answers)},
        "leave_one_out_gate": {"answerable_passed": [int(loo_passed), int(labels.sum())],
                               "unanswerable_abstained": [int(loo_abstained), int((~labels).sum())]},
        "_texts": [a.text if a.model is not None else None for a in answers],
        "_gold": [bool(verdict(a.text, q.answers, a.abstained)) for q, a in answerable],
    }


def report(result: dict) -> None:
    print(f"\n{result['questions']} questions, LLM {result['spec']} ({result['llm']}, loaded in "
          f"{result['llm_load_s']:.1f} s), {result['mode']} top-{result['k']}, "
          f"threshold {result['threshold']}")
    print(f"{'stage':<26}{'p50 s':>9}{'p95 s':>9}{'n':>5}")
    for name, row in result["latency_s"].items():
        print(f"{name:<26}{row['p50']:>9.3f}{row['p95']:>9.3f}{row['n']:>5}")
    print("tokens per query: " + ", ".join(f"{k} {v}" for k, v in result["tokens_per_query"].items()))
    a, b = result["answerable_with_gold"]
    c, d = result["unanswerable_abstained"]
    gold = wilson(a, b)
    print(f"answerable with a gold answer: {a}/{b} ({a / max(b, 1):.0%}, 95% CI "
          f"[{gold.low:.2f}, {gold.high:.2f}]); "
          f"unanswerable abstained: {c}/{d} ({c / max(d, 1):.0%})")
    print(f"citations: {result['citations']}")
    lp, ln = result["leave_one_out_gate"]["answerable_passed"]
    la, lu = result["leave_one_out_gate"]["unanswerable_abstained"]
    print(f"gate, leave-one-out thresholds: answerable passed {lp}/{ln}, unanswerable abstained {la}/{lu}")

if __name__ == "__main__":
    main()
