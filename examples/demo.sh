#!/usr/bin/env bash
# The ragortune demo, offline, on the embedded defaults: a fictional company's documents
# (examples/demo_kb) are indexed, searched, updated to a new version, and re-indexed.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH" HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false

WORK=demo-work
DOCS=$WORK/docs
KB=$WORK/kb
rm -rf "$WORK" && mkdir -p "$WORK"
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "1. Ingest version 1 of the Brindlewick Telemetry docs"
cp -r examples/demo_kb/v1 "$DOCS"
ragortune ingest "$DOCS" --kb "$KB"
ragortune status --kb "$KB"

step "2. Search (hybrid: dense + BM25 fused)"
ragortune search "How much does the Pro plan cost?" --kb "$KB" -k 2
ragortune search "API rate limit requests per minute" --kb "$KB" -k 2 --mode bm25

step "2b. Calibrate the abstention threshold on labelled questions, then answer them (v1)"
ragortune calibrate --questions examples/demo_kb/questions-v1.jsonl --kb "$KB" --save
ragortune ask --questions examples/demo_kb/questions-v1.jsonl --kb "$KB"

step "3. Version 2 arrives: 11 files edited, 1 added, 1 deleted (see examples/demo_kb/CHANGES.md)"
rm -rf "$DOCS" && cp -r examples/demo_kb/v2 "$DOCS"
ragortune ingest "$DOCS" --kb "$KB" --json > "$WORK/ingest-v2.json"
python - "$WORK/ingest-v2.json" <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
docs = report["documents"]
print(f"documents: {docs['added']} added, {docs['updated']} updated, {docs['unchanged']} unchanged, "
      f"{docs['deleted']} deleted; chunks embedded: {report['chunks_embedded']}, "
      f"reused: {report['chunks_reused']}, embedding tokens: {report['embedding_tokens']}")
assert docs["unchanged"] > 0 and docs["updated"] > 0, "an incremental sync should keep unchanged files"
PY

step "4. Search again: the new facts are found, the old ones are gone"
ragortune search "How much does the Pro plan cost?" --kb "$KB" -k 1
ragortune search "API rate limit requests per minute" --kb "$KB" -k 1 --mode bm25

step "5. The same questions on v2: answers follow the new facts"
ragortune ask --questions examples/demo_kb/questions-v2.jsonl --kb "$KB"
