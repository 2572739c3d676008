#!/usr/bin/env bash
# The ragortune demo, offline, on the embedded defaults: one `ragortune compare` over a
# fictional company's documents (examples/demo_kb): version 1 is indexed, the gate calibrated
# out of sample, a LoRA adapter trained on paraphrases of the facts, the four arms (base, rag,
# ft, hybrid) asked the original questions, version 2 synced and the changed facts asked
# again; then cost, Monte Carlo and the decision for the demo team's scenario, and the report.
# A second run reuses every finished stage (delete demo-out/ to start over).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH" HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
SECONDS=0
KB=examples/demo_kb
ragortune compare --docs "$KB/v1" --questions "$KB/questions-v1.jsonl" \
    --docs-v2 "$KB/v2" --questions-v2 "$KB/questions-v2.jsonl" \
    --paraphrases "$KB/paraphrases.jsonl" --scenario "$KB/scenario.toml" \
    --arms base,rag,ft,hybrid --out demo-out
printf '\ndemo done in %d min %d s; open demo-out/report.html\n' $((SECONDS / 60)) $((SECONDS % 60))
