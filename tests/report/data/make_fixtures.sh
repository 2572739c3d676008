#!/usr/bin/env bash
# Regenerates the report test fixtures from REAL command outputs (nothing hand-written):
#   demo/     the demo KB (examples/demo_kb): `eval answers` (base, rag) on 8 v1 questions,
#             `eval update` v1 -> v2 on the same questions, then `cost --json` and
#             `decide --json` on a scenario with that evidence. No qrels: no retrieval metrics.
#   scifact/  `eval retrieval` on a SciFact subset (first 400 documents, the test queries whose
#             relevant documents all lie in it), then `cost` and `decide` with that evidence.
# Run: tests/report/data/make_fixtures.sh [demo|scifact|all]  (all by default). On 2 idle
# cores the demo part takes a few minutes (it loads SmolLM2 twice); on a loaded machine much
# longer. The scifact part needs ../shared/datasets/scifact and is skipped when it is absent.
PART=${1:-all}
set -euo pipefail
cd "$(dirname "$0")/../../.."
export PATH="$PWD/.venv/bin:$PATH" HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
DATA=tests/report/data
SCENARIO=examples/scenarios/weekly-changing-knowledge.toml
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

# --- demo ---------------------------------------------------------------------------------
if [[ $PART == all || $PART == demo ]]; then
OUT=$DATA/demo
rm -rf "$OUT" && mkdir -p "$OUT"
for v in v1 v2; do  # 5 changed facts, 1 added, 1 stable, 1 unanswerable
    python - "examples/demo_kb/questions-$v.jsonl" "$TMP/questions-$v.jsonl" <<'PY'
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
keep = {"chg-": 5, "new-": 1, "stb-": 1, "una-": 1}
with open(sys.argv[2], "w") as out:
    for row in rows:
        kind = row["_id"][:4]
        if keep.get(kind, 0) > 0:
            keep[kind] -= 1
            out.write(json.dumps(row) + "\n")
PY
done
ragortune ingest examples/demo_kb/v1 --kb "$TMP/kb" --json > /dev/null
ragortune eval answers --questions "$TMP/questions-v1.jsonl" --kb "$TMP/kb" --arms base,rag \
    --max-tokens 32 --work "$TMP/work" --out "$OUT" --json > /dev/null
ragortune eval update --v1 examples/demo_kb/v1 --v2 examples/demo_kb/v2 \
    --questions-v1 "$TMP/questions-v1.jsonl" --questions-v2 "$TMP/questions-v2.jsonl" \
    --arms base,rag --max-tokens 32 --work "$TMP/work" --out "$OUT" --json > /dev/null
ragortune cost --scenario "$SCENARIO" --evidence "$OUT/evidence.json" --no-png --json > "$OUT/cost.json"
ragortune decide --scenario "$SCENARIO" --evidence "$OUT/evidence.json" --json > "$OUT/decision.json"
cp "$TMP/questions-v1.jsonl" "$OUT/questions.jsonl"  # the gold answers the report shows
fi

# --- scifact subset -----------------------------------------------------------------------
[[ $PART == all || $PART == scifact ]] || exit 0
SCIFACT=../shared/datasets/scifact
if [[ ! -d $SCIFACT ]]; then
    echo "skipped scifact fixture: $SCIFACT not found"
    exit 0
fi
OUT=$DATA/scifact
rm -rf "$OUT" && mkdir -p "$OUT" "$TMP/scifact-mini/qrels"
python - "$SCIFACT" "$TMP/scifact-mini" <<'PY'
import csv, json, sys
from pathlib import Path
src, dst = Path(sys.argv[1]), Path(sys.argv[2])
docs = [line for line in open(src / "corpus.jsonl") if line.strip()][:400]
ids = {json.loads(line)["_id"] for line in docs}
(dst / "corpus.jsonl").write_text("".join(docs))
rows = list(csv.reader(open(src / "qrels/test.tsv"), delimiter="\t"))
header, rows = rows[0], rows[1:]
by_query = {}
for q, d, s in rows:
    by_query.setdefault(q, []).append((d, s))
kept = {q for q, pairs in by_query.items() if all(d in ids for d, _ in pairs)}
with open(dst / "qrels/test.tsv", "w", newline="") as fh:
    w = csv.writer(fh, delimiter="\t")
    w.writerow(header)
    w.writerows(r for r in rows if r[0] in kept)
with open(dst / "queries.jsonl", "w") as fh:
    for line in open(src / "queries.jsonl"):
        if line.strip() and json.loads(line)["_id"] in kept:
            fh.write(line)
PY
ragortune eval retrieval --dataset "$TMP/scifact-mini" --work "$TMP/work" --out "$OUT" --json > /dev/null
ragortune cost --scenario "$SCENARIO" --evidence "$OUT/evidence.json" --no-png --json > "$OUT/cost.json"
ragortune decide --scenario "$SCENARIO" --evidence "$OUT/evidence.json" --json > "$OUT/decision.json"
echo "fixtures written under $DATA"
