"""Render the demo knowledge base's PDF files from their Markdown sources.

Every `pdf_sources/<version>/<path>.md` becomes `<version>/<path>.pdf` next to
this script, for example `pdf_sources/v2/policies/sla.md` -> `v2/policies/sla.pdf`.

The sources use a tiny Markdown subset: one `# Title` line, `##`/`###` headings,
`- ` bullet items and paragraphs separated by blank lines. Text must be
latin-1 (the PDF core fonts cannot encode anything else).

The output is deterministic: the creation date and all metadata are fixed, so
rerunning the script gives byte-identical PDFs, and a PDF whose source did not
change between v1 and v2 is byte-identical in both trees (an incremental
indexer must see it as unchanged).

    /work/main/.venv/bin/python examples/demo_kb/make_pdfs.py
"""

from __future__ import annotations

import sys
from datetime import datetime, timezone
from pathlib import Path

from fpdf import FPDF

HERE = Path(__file__).resolve().parent
SOURCES = HERE / "pdf_sources"
FIXED_DATE = datetime(2024, 6, 1, 9, 0, 0, tzinfo=timezone.utc)
AUTHOR = "Brindlewick Telemetry, Inc."


def parse(text: str) -> tuple[str, list[tuple[str, str]]]:
    """(title, blocks); a block is ("h2" | "h3" | "li" | "p", text)."""
    title = ""
    blocks: list[tuple[str, str]] = []
    paragraph: list[str] = []

    def flush() -> None:
        if paragraph:
            blocks.append(("p", " ".join(paragraph)))
            paragraph.clear()

    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            flush()
        elif line.startswith("# ") and not title:
            flush()
            title = line[2:].strip()
        elif line.startswith("### "):
            flush()
            blocks.append(("h3", line[4:].strip()))
        elif line.startswith("## "):
            flush()
            blocks.append(("h2", line[3:].strip()))
        elif line.startswith("- "):
            flush()
            blocks.append(("li", line[2:].strip()))
        else:
            paragraph.append(line)
    flush()
    if not title:
        raise ValueError("source has no '# Title' line")
    return title, blocks


def render(source: Path, target: Path) -> None:
    text = source.read_text(encoding="utf-8")
    text.encode("latin-1")  # fail early on characters the core fonts cannot draw
    title, blocks = parse(text)

    pdf = FPDF(format="A4", unit="mm")
    pdf.set_creation_date(FIXED_DATE)
    pdf.set_title(title)
    pdf.set_author(AUTHOR)
    pdf.set_subject("Fleetline documentation")
    pdf.set_creator("examples/demo_kb/make_pdfs.py")
    pdf.set_producer("ragortune demo_kb")
    pdf.set_margins(20, 20, 20)
    pdf.set_auto_page_break(auto=True, margin=20)
    pdf.add_page()

    pdf.set_font("Helvetica", "B", 18)
    pdf.multi_cell(0, 9, title, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)
    pdf.set_font("Helvetica", "", 9)
    pdf.cell(0, 5, AUTHOR + " - internal and customer documentation",
             new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)

    for kind, content in blocks:
        if kind == "h2":
            pdf.ln(2)
            pdf.set_font("Helvetica", "B", 13)
            pdf.multi_cell(0, 7, content, new_x="LMARGIN", new_y="NEXT")
            pdf.ln(1)
        elif kind == "h3":
            pdf.set_font("Helvetica", "B", 11)
            pdf.multi_cell(0, 6, content, new_x="LMARGIN", new_y="NEXT")
        elif kind == "li":
            pdf.set_font("Helvetica", "", 10.5)
            pdf.set_x(pdf.l_margin + 4)
            pdf.multi_cell(0, 5.5, "- " + content, new_x="LMARGIN", new_y="NEXT")
            pdf.ln(0.5)
        else:
            pdf.set_font("Helvetica", "", 10.5)
            pdf.multi_cell(0, 5.5, content, new_x="LMARGIN", new_y="NEXT")
            pdf.ln(2.5)

    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(bytes(pdf.output()))


def main() -> int:
    sources = sorted(SOURCES.glob("*/**/*.md"))
    if not sources:
        print(f"no sources under {SOURCES}", file=sys.stderr)
        return 1
    for source in sources:
        rel = source.relative_to(SOURCES)  # <version>/<path>.md
        target = HERE / rel.with_suffix(".pdf")
        render(source, target)
        print(f"{source.relative_to(HERE)} -> {target.relative_to(HERE)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
