"""`ragortune report DIR`: rebuild report.html and report.md from a `compare --out` folder."""

from __future__ import annotations

from pathlib import Path

import typer

from ragortune.cli.app import JSON_OPTION, app, console, emit_json

FOLDER_ARGUMENT = typer.Argument(..., help="The --out folder of `ragortune compare` "
                                 "(evidence.json, decision.json, cost.json, answers.csv, "
                                 "run.json; any may be missing).")


@app.command("report")
def report_command(
    folder: Path = FOLDER_ARGUMENT,
    json_output: bool = JSON_OPTION,
) -> None:
    """Rebuild the report from an existing folder without running anything."""
    from ragortune.report import build_report

    model, paths = build_report(folder)
    v = model.verdict
    payload = {
        "files": {k: str(p) for k, p in paths.items()},
        "inputs": model.present,
        "recommendation": v.recommendation if v else None,
        "confidence": v.confidence if v else None,
        "arms": [a.name for a in model.arms],
        "disagreements": len(model.disagreements),
    }
    if json_output:
        emit_json(payload)
        return
    if v:
        console.print(f"Recommendation: {v.label}" + (f" ({v.confidence})" if v.confidence
                                                       else ""), markup=False, highlight=False)
    missing = [name for name, here in model.present.items() if not here]
    if missing:
        console.print(f"not in the folder (shown as not measured): {', '.join(missing)}",
                      markup=False, highlight=False)
    for kind, path in paths.items():
        console.print(f"{kind}: {path}", markup=False, highlight=False)
