from pathlib import Path

import pytest

from ragortune.documents.loaders import Document, discover, load_file


def write_pdf(path: Path, lines: list[str]) -> None:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("Helvetica", size=12)
    for line in lines:
        pdf.multi_cell(w=pdf.epw, h=8, text=line, new_x="LMARGIN", new_y="NEXT")
    pdf.output(str(path))


def loaded(paths):
    """What an ingest reads, the way `kb.sync` reads it: `discover`, then `load_file` per file,
    whose ValueError/OSError is the reason a file is skipped."""
    files, skipped_files = discover(paths)
    skipped = {Path(s.path).name: s.reason for s in skipped_files}
    docs = []
    for file in files:
        try:
            docs.extend(load_file(file))
        except (OSError, ValueError) as exc:
            skipped[file.name] = str(exc) or type(exc).__name__
    return docs, skipped


def test_folder_is_walked_recursively_and_every_format_is_read(tmp_path):
    (tmp_path / "sub" / "deeper").mkdir(parents=True)
    (tmp_path / "guide.md").write_text("# Guide\n\nThe refund window is 14 days.\n")
    (tmp_path / "sub" / "notes.txt").write_text("Support hours are 9 to 17 CET.\n")
    (tmp_path / "sub" / "deeper" / "page.html").write_text(
        "<html><head><title>Pricing</title><style>.x{color:red}</style>"
        "<script>var secret = 'hidden';</script></head><body><nav>Home | About</nav>"
        "<h1>Plans</h1><p>The Pro plan costs $49 per month.</p></body></html>")
    write_pdf(tmp_path / "sub" / "policy.pdf", ["Security policy", "Passwords rotate every 90 days."])
    (tmp_path / "corpus.jsonl").write_text(
        '{"_id": "d1", "title": "Alpha", "text": "First abstract."}\n'
        '{"_id": "d2", "title": "Beta", "text": "Second abstract."}\n')
    docs, skipped = loaded([tmp_path])
    assert skipped == {}
    by_format = {d.format: d for d in docs}
    assert set(by_format) == {"markdown", "text", "html", "pdf", "jsonl"}
    assert by_format["markdown"].title == "Guide"
    html = by_format["html"]
    assert html.title == "Pricing"
    assert "$49 per month" in html.text and "# Plans" in html.text
    assert "secret" not in html.text and "color" not in html.text and "Home | About" not in html.text
    assert "every 90 days" in by_format["pdf"].text
    jsonl = [d for d in docs if d.format == "jsonl"]
    assert [(d.doc_id, d.title, d.text) for d in jsonl] == [
        ("d1", "Alpha", "First abstract."), ("d2", "Beta", "Second abstract.")]
    assert jsonl[0].key.endswith("corpus.jsonl#d1")


def test_unreadable_files_are_skipped_with_a_reason_and_the_rest_indexed(tmp_path):
    (tmp_path / "good.md").write_text("# Good\n\nReadable text.\n")
    (tmp_path / "empty.txt").write_text("")
    (tmp_path / "blank.md").write_text("   \n\n")
    (tmp_path / "binary.txt").write_bytes(b"\x00\x01\x02binary\x00")
    (tmp_path / "latin1.txt").write_bytes("caf\xe9".encode("latin-1"))
    (tmp_path / "corrupt.pdf").write_bytes(b"%PDF-1.4 truncated garbage")
    (tmp_path / "bad.jsonl").write_text('{"_id": "a", "text": "ok"}\nnot json\n')
    (tmp_path / "dangling.md").symlink_to(tmp_path / "missing-target.md")
    (tmp_path / "image.png").write_bytes(b"\x89PNG")
    docs, skipped = loaded([tmp_path])
    assert [d.title for d in docs] == ["Good"]
    assert skipped["empty.txt"] == "empty file"
    assert skipped["blank.md"] == "empty file"
    assert "binary" in skipped["binary.txt"]
    assert "UTF-8" in skipped["latin1.txt"]
    assert "PDF" in skipped["corrupt.pdf"]
    assert "line 2" in skipped["bad.jsonl"]
    assert "No such file" in skipped["dangling.md"]
    assert "unsupported" in skipped["image.png"]


def test_a_missing_path_is_reported_not_raised(tmp_path):
    docs, skipped = loaded([tmp_path / "nope"])
    assert docs == [] and skipped == {"nope": "no such file or folder"}


def test_content_hash_changes_with_the_text_only():
    a = Document("k", "k", "s", "T", "text one", "text")
    assert a.content_hash == Document("k2", "k2", "s2", "T", "text one", "text").content_hash
    assert a.content_hash != Document("k", "k", "s", "T", "text two", "text").content_hash


@pytest.mark.parametrize("line", ['{"title": "no id"}', '[1, 2]', '{"_id": 1}'])
def test_malformed_jsonl_lines_name_the_line(tmp_path, line):
    (tmp_path / "c.jsonl").write_text('{"_id": "ok", "text": "fine"}\n' + line + "\n")
    _, skipped = loaded([tmp_path])
    assert "line 2" in skipped["c.jsonl"]
