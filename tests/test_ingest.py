"""Tests for xsearch.ingest, on real files written to tmp_path."""

from __future__ import annotations

import codecs
import json
import os
import time
import unicodedata
from pathlib import Path

import pytest

from xsearch.errors import IngestError
from xsearch.ingest import (
    SUPPORTED_SUFFIXES,
    ReadOptions,
    SourceDoc,
    file_fingerprint,
    iter_files,
    read_bytes_as_text,
    read_file,
)

MULTILINGUAL = (
    "Cross-lingual search\n"
    "English: the cat sleeps on the sofa.\n"
    "Deutsch: Die Katze schläft auf dem Sofa.\n"
    "Русский: Кошка спит на диване.\n"
    "中文：猫在沙发上睡觉。\n"
    "हिन्दी: बिल्ली सोफे पर सो रही है।\n"
    "العربية: القطة نائمة على الأريكة.\n"
)


def write(path: Path, data: bytes | str) -> Path:
    if isinstance(data, str):
        data = data.encode("utf-8")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def only_doc(path: Path, options: ReadOptions | None = None) -> SourceDoc:
    result = read_file(path, options)
    assert len(result.docs) == 1
    return result.docs[0]


# --------------------------------------------------------------------------- text and encodings


def test_utf8_multilingual_txt(tmp_path: Path) -> None:
    path = write(tmp_path / "multi.txt", MULTILINGUAL)
    result = read_file(path)
    assert result.encoding == "utf-8"
    assert result.warnings == []
    doc = result.docs[0]
    assert doc.record_id == ""
    assert doc.text == MULTILINGUAL.strip()
    assert doc.title == "Cross-lingual search"


def test_cp1252_decodes_right(tmp_path: Path) -> None:
    text = "café déjà vu – naïve € “quotes”"
    path = write(tmp_path / "legacy.txt", (text + "\r\n").encode("cp1252"))
    result = read_file(path)
    assert result.encoding == "cp1252"
    assert result.docs[0].text == text


@pytest.mark.parametrize(
    ("text", "encoding"),
    [
        ("Não há razão para ação; a informação é pública e o coração está em São Paulo.", "cp1252"),
        ("Perché è così difficile? La città più bella è lì, però non so perché.", "cp1252"),
        ("Hyvää päivää! Tämä on suomenkielinen teksti, ja se on melko lyhyt.", "cp1252"),
        ("Zażółć gęślą jaźń. Łódź jest pięknym miastem w Polsce. Książka leży na stole.", "cp1250"),
        ("Včera jsem šel do obchodu a koupil chléb, máslo a mléko pro děti.", "cp1250"),
        ("Привет, мир! Это русский текст в кодировке Windows.", "cp1251"),
        ("日本語のテキストです。東京は日本の首都です。", "shift_jis"),
        ("中文文本。北京是中国的首都。我们喜欢学习新的语言。", "gb18030"),
    ],
)
def test_legacy_encodings(tmp_path: Path, text: str, encoding: str) -> None:
    path = write(tmp_path / "legacy.txt", text.encode(encoding))
    assert only_doc(path).text == text


def test_utf16_le_with_bom(tmp_path: Path) -> None:
    text = "Привет, мир!\nЭто русский текст в UTF-16."
    path = write(tmp_path / "ru.txt", codecs.BOM_UTF16_LE + text.encode("utf-16-le"))
    result = read_file(path)
    assert result.encoding == "utf-16-le"
    assert result.docs[0].text == text
    assert result.docs[0].title == "Привет, мир!"


def test_utf16_without_bom_and_utf32_with_bom(tmp_path: Path) -> None:
    text = "plain ASCII-heavy text written by Windows tools, ok"
    no_bom = write(tmp_path / "a.txt", text.encode("utf-16-le"))
    assert only_doc(no_bom).text == text
    utf32 = write(tmp_path / "b.txt", codecs.BOM_UTF32_LE + "Grüße".encode("utf-32-le"))
    assert only_doc(utf32).text == "Grüße"


def test_utf8_bom_crlf_and_nfc() -> None:
    decomposed = "cafe\u0301\r\nline two\rline three"
    text = read_bytes_as_text(codecs.BOM_UTF8 + decomposed.encode("utf-8"), "x.txt")
    assert text == "café\nline two\nline three"
    assert unicodedata.is_normalized("NFC", text)


def test_mostly_utf8_with_a_bad_byte_stays_utf8(tmp_path: Path) -> None:
    data = ("Größe über Äpfel, schön. Москва. " * 5).encode("utf-8") + b"\xff tail"
    result = read_file(write(tmp_path / "broken.txt", data))
    assert result.encoding == "utf-8"
    assert "Москва" in result.docs[0].text
    assert len(result.warnings) == 1 and "replaced" in result.warnings[0]


def test_markdown_title(tmp_path: Path) -> None:
    md = "Intro line\n\n```sh\n# not a heading\n```\n\n## Real *Heading* for my_var ##\n\nBody.\n"
    assert only_doc(write(tmp_path / "a.md", md)).title == "Real Heading for my_var"
    front = '---\ntitle: "Front Matter Title"\ndate: 2024-01-01\n---\n\n# Other\n'
    assert only_doc(write(tmp_path / "b.markdown", front)).title == "Front Matter Title"
    long_line = "x" * 300
    title = only_doc(write(tmp_path / "c.txt", long_line)).title
    assert len(title) == 100 and title.endswith("…")


# --------------------------------------------------------------------------- HTML


HTML = """<!DOCTYPE html>
<html><head><meta charset="windows-1252"><title> Le   Café </title>
<style>.secret { color: red } STYLETEXT</style>
<script>var x = "SCRIPTTEXT";</script></head>
<body>
<nav><a href="/">NAVTEXT Home</a> <a href="/about">About</a></nav>
<h1>Menu du jour</h1>
<p>Un   café
 crème et un croissant, s’il vous plaît.</p>
<ul><li>Thé</li><li>Chocolat</li></ul>
<table><tr><th>Plat</th><th>Prix</th></tr><tr><td>Crêpe</td><td>4 €</td></tr></table>
<div hidden>HIDDENTEXT</div>
<noscript>NOSCRIPTTEXT</noscript><template>TEMPLATETEXT</template>
<svg><text>SVGTEXT</text></svg><iframe>IFRAMETEXT</iframe>
Ligne<br>suivante
</body></html>
"""


def test_html_visible_text_and_title(tmp_path: Path) -> None:
    path = write(tmp_path / "page.html", HTML.encode("cp1252"))
    result = read_file(path)
    doc = result.docs[0]
    assert result.encoding == "cp1252"
    assert doc.title == "Le Café"
    for hidden in (
        "SCRIPTTEXT", "STYLETEXT", "NAVTEXT", "HIDDENTEXT", "NOSCRIPTTEXT", "TEMPLATETEXT",
        "SVGTEXT", "IFRAMETEXT", "color",
    ):  # fmt: skip
        assert hidden not in doc.text
    assert "Un café crème et un croissant, s’il vous plaît." in doc.text
    assert "Menu du jour\n\nUn café" in doc.text
    assert "Thé\nChocolat" in doc.text
    assert "Plat\tPrix\nCrêpe\t4 €" in doc.text
    assert "Ligne\nsuivante" in doc.text


def test_html_without_title_uses_h1_and_detects_utf8(tmp_path: Path) -> None:
    html = (
        "<html><body><svg><title>icon</title></svg><h1>Заголовок</h1>"
        "<p>Текст страницы.</p></body></html>"
    )
    doc = only_doc(write(tmp_path / "ru.htm", html))
    assert doc.title == "Заголовок"
    assert doc.text == "Заголовок\n\nТекст страницы."


def test_html_wrong_meta_charset_falls_back(tmp_path: Path) -> None:
    html = '<meta charset="utf-8"><title>x</title><p>café déjà vu – naïve € “quotes”</p>'
    doc = only_doc(write(tmp_path / "wrong.html", html.encode("cp1252")))
    assert doc.text == "café déjà vu – naïve € “quotes”"


def test_html_without_visible_text(tmp_path: Path) -> None:
    path = write(tmp_path / "empty.html", "<html><head><script>x()</script></head></html>")
    with pytest.raises(IngestError, match="no visible text"):
        read_file(path)


# --------------------------------------------------------------------------- PDF


def make_pdf(path: Path, pages: list[str], **canvas_kwargs: object) -> Path:
    from reportlab.pdfgen import canvas

    c = canvas.Canvas(str(path), **canvas_kwargs)
    c.setTitle("Annual Report")
    for page in pages:
        y = 800
        for line in page.split("\n"):
            c.drawString(72, y, line)
            y -= 16
        c.showPage()
    c.save()
    return path


def test_pdf_text_extracted(tmp_path: Path) -> None:
    path = make_pdf(
        tmp_path / "report.pdf",
        ["Quarterly results were strong.\nRevenue grew by twelve percent.", "Second page here."],
    )
    result = read_file(path)
    doc = result.docs[0]
    assert doc.title == "Annual Report"
    assert "Quarterly results were strong." in doc.text
    assert "Revenue grew by twelve percent." in doc.text
    assert doc.text.endswith("Second page here.")
    assert "\n\n" in doc.text  # pages are separated by a blank line
    assert doc.metadata == {"pages": 2}


def test_pdf_without_text(tmp_path: Path) -> None:
    from reportlab.pdfgen import canvas

    path = tmp_path / "scan.pdf"
    c = canvas.Canvas(str(path))
    c.rect(100, 100, 200, 200, fill=1)
    c.showPage()
    c.save()
    with pytest.raises(IngestError, match=r"no extractable text \(scanned PDF\?\)"):
        read_file(path)


def test_pdf_encrypted(tmp_path: Path) -> None:
    path = make_pdf(tmp_path / "secret.pdf", ["Top secret."], encrypt="s3cret")
    with pytest.raises(IngestError, match="not a readable PDF: encrypted"):
        read_file(path)


def test_pdf_with_empty_user_password_is_read(tmp_path: Path) -> None:
    from reportlab.lib.pdfencrypt import StandardEncryption

    encryption = StandardEncryption("", ownerPassword="owner", canPrint=0, canCopy=0)
    path = make_pdf(tmp_path / "locked.pdf", ["Copying is restricted."], encrypt=encryption)
    assert "Copying is restricted." in only_doc(path).text


def test_fake_pdf(tmp_path: Path) -> None:
    path = write(tmp_path / "fake.pdf", "This is just plain text pretending to be a PDF.\n")
    with pytest.raises(IngestError, match="not a readable PDF: no %PDF header") as info:
        read_file(path)
    assert str(path) in str(info.value)
    assert "\n" not in str(info.value)


# --------------------------------------------------------------------------- DOCX


def test_docx_paragraphs_and_table(tmp_path: Path) -> None:
    import docx

    document = docx.Document()
    document.add_heading("Bilingual notes", level=1)
    document.add_paragraph("The monsoon arrives in June.")
    document.add_paragraph("मानसून जून में आता है।")
    table = document.add_table(rows=2, cols=2)
    table.cell(0, 0).text = "City"
    table.cell(0, 1).text = "शहर"
    table.cell(1, 0).text = "Delhi"
    table.cell(1, 1).text = "दिल्ली"
    document.add_paragraph("Closing line.")
    path = tmp_path / "notes.docx"
    document.save(str(path))

    doc = only_doc(path)
    assert doc.title == "Bilingual notes"
    assert doc.text == (
        "Bilingual notes\n\nThe monsoon arrives in June.\n\nमानसून जून में आता है।\n\n"
        "City\tशहर\nDelhi\tदिल्ली\n\nClosing line."
    )


def test_fake_docx(tmp_path: Path) -> None:
    import zipfile

    path = write(tmp_path / "fake.docx", "not a zip at all")
    with pytest.raises(IngestError, match=r"not a valid \.docx"):
        read_file(path)
    other_zip = tmp_path / "other.docx"
    with zipfile.ZipFile(other_zip, "w") as archive:
        archive.writestr("hello.txt", "a zip, but not a Word document")
    with pytest.raises(IngestError, match=r"not a valid \.docx"):
        read_file(other_zip)


def test_truncated_pdf(tmp_path: Path) -> None:
    data = make_pdf(tmp_path / "ok.pdf", ["Some text."]).read_bytes()
    path = write(tmp_path / "truncated.pdf", data[: len(data) // 3])
    try:
        doc = only_doc(path)  # pypdf may recover what it can ...
    except IngestError as exc:  # ... or give up; either way no other exception type escapes
        assert "truncated.pdf" in str(exc)
    else:
        assert "Some text." in doc.text


# --------------------------------------------------------------------------- JSONL


def test_jsonl_malformed_line_is_a_warning(tmp_path: Path) -> None:
    lines = [
        json.dumps({"id": "a", "text": "First record", "title": "One", "lang": "en"}),
        "",
        '{"id": "b", "text": "broken',
        json.dumps({"id": 7, "text": "Dritter Datensatz"}, ensure_ascii=False),
    ]
    path = write(tmp_path / "data.jsonl", "\n".join(lines) + "\n")
    result = read_file(path)
    assert [d.record_id for d in result.docs] == ["a", "7"]
    assert result.docs[0] == SourceDoc("a", "First record", "One", {"lang": "en"})
    assert result.docs[1].text == "Dritter Datensatz"
    assert len(result.warnings) == 1
    assert "line 3" in result.warnings[0] and "invalid JSON" in result.warnings[0]
    assert str(path) in result.warnings[0]


def test_jsonl_custom_fields_missing_text_duplicates_and_fallback_ids(tmp_path: Path) -> None:
    rows = [
        {"doc": "x1", "body": "Erster Text"},
        {"doc": "x2", "other": "no body here"},
        {"doc": "x1", "body": "duplicate id"},
        {"body": "no id, uses the line number"},
        {"doc": "x5", "body": "   "},
        ["not", "an", "object"],
    ]
    path = write(tmp_path / "custom.jsonl", "\n".join(json.dumps(r) for r in rows))
    result = read_file(path, ReadOptions(text_field="body", id_field="doc"))
    assert [(d.record_id, d.text) for d in result.docs] == [
        ("x1", "Erster Text"),
        ("4", "no id, uses the line number"),
    ]
    joined = "\n".join(result.warnings)
    assert "line 2: no 'body' field" in joined
    assert "line 3: duplicate id 'x1' (first at line 1)" in joined
    assert "line 5: empty text" in joined
    assert "line 6: expected a JSON object" in joined


def test_jsonl_record_without_id_never_takes_another_records_id(tmp_path: Path) -> None:
    # A line number that is also an explicit id, before (line 2) or after (lines 3, 4) the
    # record without one, gives way; so does "line 4". Only line 8 is a duplicate, and an id
    # of a skipped record (line 10) takes nothing.
    rows = [
        {"id": "2", "text": "Coffee grows on shaded hillsides."},
        {"text": "Quokkas live on Rottnest Island near Perth."},
        {"text": "Tea is picked by hand in Darjeeling."},
        {"text": "Pepper vines climb trees."},
        {"id": "3", "text": "Cocoa pods grow on the trunk."},
        {"id": "line 4", "text": "Vanilla is an orchid."},
        {"id": 4, "text": "Cloves are dried flower buds."},
        {"id": "3", "text": "a real duplicate id"},
        {"text": "Saffron is the stigma of a crocus."},
        {"id": "11", "text": "  "},
        {"text": "Ginger is a rhizome."},
    ]
    path = write(tmp_path / "ids.jsonl", "\n".join(json.dumps(r) for r in rows) + "\n")
    result = read_file(path)
    assert [(d.record_id, d.text.split()[0]) for d in result.docs] == [
        ("2", "Coffee"), ("line 2", "Quokkas"), ("line 3", "Tea"), ("line 4 (2)", "Pepper"),
        ("3", "Cocoa"), ("line 4", "Vanilla"), ("4", "Cloves"), ("9", "Saffron"),
        ("11", "Ginger"),
    ]  # fmt: skip
    assert result.warnings == [
        f"{path}: line 8: duplicate id '3' (first at line 5), skipped",
        f"{path}: line 10: empty text, skipped",
    ]
    assert read_file(path) == result  # the same file always gets the same ids


def test_jsonl_raw_line_separator_inside_string(tmp_path: Path) -> None:
    path = write(tmp_path / "sep.jsonl", '{"id": 1, "text": "a\u2028b"}\n')
    assert only_doc(path).text == "a\nb"


def test_jsonl_without_any_good_record(tmp_path: Path) -> None:
    path = write(tmp_path / "bad.jsonl", "not json\n{}\n")
    with pytest.raises(IngestError, match="no usable records"):
        read_file(path)


# --------------------------------------------------------------------------- CSV


def test_csv_quoted_commas_and_newlines(tmp_path: Path) -> None:
    content = (
        "id,title,text,lang\r\n"
        '1,First,"Hello, world",en\r\n'
        '2,Second,"Line one\r\nLine two, with comma",en\r\n'
        '3,Third,"He said ""hi""",en\r\n'
    )
    result = read_file(write(tmp_path / "data.csv", content))
    assert result.warnings == []
    assert [(d.record_id, d.title, d.text) for d in result.docs] == [
        ("1", "First", "Hello, world"),
        ("2", "Second", "Line one\nLine two, with comma"),
        ("3", "Third", 'He said "hi"'),
    ]
    assert result.docs[0].metadata == {"lang": "en"}


def test_csv_semicolon_cp1252_and_fallback_ids(tmp_path: Path) -> None:
    content = "text;note\nCafé crème;a\nDéjà vu;b\n"
    result = read_file(write(tmp_path / "semi.csv", content.encode("cp1252")))
    assert [(d.record_id, d.text) for d in result.docs] == [("2", "Café crème"), ("3", "Déjà vu")]


def test_csv_row_without_id_never_takes_another_rows_id(tmp_path: Path) -> None:
    rows = [
        "id,text",
        "3,Coffee grows on shaded hillsides.",
        ",Quokkas live on Rottnest Island.",  # line 3: "3" is taken before it
        ",Tea is picked by hand.",  # line 4: "4" is taken after it
        "4,Cocoa pods grow on the trunk.",
        "3,a real duplicate id",
        ',"Pepper vines,\nclimbing trees."',  # a row starting on line 7
        ",Saffron is the stigma of a crocus.",
    ]
    path = write(tmp_path / "ids.csv", "\n".join(rows) + "\n")
    result = read_file(path)
    assert [(d.record_id, d.text.split()[0]) for d in result.docs] == [
        ("3", "Coffee"), ("line 3", "Quokkas"), ("line 4", "Tea"), ("4", "Cocoa"),
        ("7", "Pepper"), ("9", "Saffron"),
    ]  # fmt: skip
    assert result.warnings == [f"{path}: line 6: duplicate id '3' (first at line 2), skipped"]
    assert read_file(path) == result


def test_csv_without_text_column(tmp_path: Path) -> None:
    path = write(tmp_path / "nope.csv", "id,body,lang\n1,hello,en\n")
    with pytest.raises(IngestError, match="no 'text' column") as info:
        read_file(path)
    assert "'id', 'body', 'lang'" in str(info.value)


def test_csv_unterminated_quote_and_bad_rows_are_warnings(tmp_path: Path) -> None:
    rows = [
        "id,text",
        "1,good one",
        '2,"unterminated quote',
        "3,still parsed",
        "4,too,many,fields",
        "5",
        "6,last",
    ]
    content = "\n".join(rows) + "\n"
    result = read_file(write(tmp_path / "messy.csv", content))
    assert [d.record_id for d in result.docs] == ["1", "3", "6"]
    joined = "\n".join(result.warnings)
    assert "line 3: malformed CSV row" in joined
    assert "line 5: 4 fields" in joined
    assert "line 6: no 'text' value" in joined


def test_csv_big_field(tmp_path: Path) -> None:
    big = "word " * 100_000  # 500 KB: over the csv module's default 128 KiB field limit
    path = write(tmp_path / "big.csv", f'id,text\n1,"{big}"\n')
    assert only_doc(path).text == big.strip()


# --------------------------------------------------------------------------- refusals


def test_empty_and_whitespace_files(tmp_path: Path) -> None:
    for name, data in [("zero.txt", b""), ("blank.md", b" \n\t\r\n"), ("zero.pdf", b"")]:
        with pytest.raises(IngestError, match="empty file"):
            read_file(write(tmp_path / name, data))


def test_binary_file_with_nul_bytes(tmp_path: Path) -> None:
    data = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4
    with pytest.raises(IngestError, match="binary file, skipped"):
        read_file(write(tmp_path / "image.txt", data))
    with pytest.raises(IngestError, match="binary file"):
        read_bytes_as_text(b"abc\x01\x02\x03\x04\x05\x06\x07\x08def", "x.txt")
    with pytest.raises(IngestError, match="binary file"):
        read_bytes_as_text(b"\x00\x01\x02abc", "tiny.txt")
    with pytest.raises(IngestError, match="binary file"):  # NULs in a UTF-16-like pattern
        read_bytes_as_text(b"\x01\x00\x02\x00\x03\x00" * 20, "ctl.txt")


def test_unsupported_suffix_in_read_file(tmp_path: Path) -> None:
    with pytest.raises(IngestError, match=r"unsupported file type \.xyz; supported: \.csv"):
        read_file(write(tmp_path / "a.xyz", "hello"))


def test_missing_file_and_folder(tmp_path: Path) -> None:
    with pytest.raises(IngestError, match="cannot read"):
        read_file(tmp_path / "missing.txt")
    folder = tmp_path / "dir.txt"
    folder.mkdir()
    with pytest.raises(IngestError, match="not a regular file"):
        read_file(folder)
    if hasattr(os, "mkfifo"):
        fifo = tmp_path / "pipe.txt"
        os.mkfifo(fifo)
        with pytest.raises(IngestError, match="not a regular file"):
            read_file(fifo)  # must not block waiting for a writer
        assert list(iter_files([tmp_path])) == []


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root can read mode-000 files"
)
def test_unreadable_file(tmp_path: Path) -> None:
    path = write(tmp_path / "secret.txt", "hidden")
    path.chmod(0)
    try:
        with pytest.raises(IngestError, match="cannot read: Permission denied"):
            read_file(path)
    finally:
        path.chmod(0o600)


def test_large_single_line_file_is_read(tmp_path: Path) -> None:
    chunk = "Größe café naïve 東京 Москва "
    n = 20_000_000 // len(chunk.encode("utf-8")) + 1
    path = write(tmp_path / "big.txt", chunk * n)
    assert path.stat().st_size > 20_000_000
    start = time.monotonic()
    doc = only_doc(path)
    assert time.monotonic() - start < 10
    assert len(doc.text) == len((chunk * n).strip())
    assert len(doc.title) == 100


def test_max_bytes_refuses(tmp_path: Path) -> None:
    path = write(tmp_path / "small.txt", "x" * 2000)
    with pytest.raises(IngestError, match="file too large: 2,000 bytes .* limit of 1,000 bytes"):
        read_file(path, ReadOptions(max_bytes=1000))
    assert only_doc(path, ReadOptions(max_bytes=None)).text == "x" * 2000


# --------------------------------------------------------------------------- finding files


def test_iter_files_order_hidden_and_suffixes(tmp_path: Path) -> None:
    root = tmp_path / "docs"
    for rel in [
        "b.txt", "a.MD", "z.pdf", "notes.xyz", "README", ".hidden.txt",
        ".git/config.txt", "sub/c.html", "sub/deeper/d.jsonl", "sub/.cache/e.txt", "aa/f.csv",
    ]:  # fmt: skip
        write(root / rel, "x")
    found = [p.relative_to(root).as_posix() for p in iter_files([root])]
    assert found == ["a.MD", "aa/f.csv", "b.txt", "sub/c.html", "sub/deeper/d.jsonl", "z.pdf"]
    only_txt = [p.name for p in iter_files([root], suffixes={".txt"})]
    assert only_txt == ["b.txt"]


def test_iter_files_explicit_paths(tmp_path: Path) -> None:
    a = write(tmp_path / "a.txt", "x")
    hidden = write(tmp_path / ".secret.md", "x")
    # Explicit files come in argument order; explicit hidden files are honoured; no duplicates.
    assert list(iter_files([hidden, a, tmp_path])) == [hidden, a]
    with pytest.raises(IngestError, match=r"unsupported file type \.xyz; supported: "):
        list(iter_files([write(tmp_path / "b.xyz", "x")]))
    with pytest.raises(IngestError, match="path not found"):
        list(iter_files([tmp_path / "missing"]))


def test_iter_files_on_error_collects_and_continues(tmp_path: Path) -> None:
    a = write(tmp_path / "a.txt", "x")
    errors: list[str] = []
    found = list(iter_files([tmp_path / "missing", a], on_error=lambda p, e: errors.append(str(e))))
    assert found == [a]
    assert len(errors) == 1 and "path not found" in errors[0]


def test_iter_files_symlink_loop(tmp_path: Path) -> None:
    root = tmp_path / "root"
    write(root / "sub" / "a.txt", "x")
    try:
        (root / "sub" / "loop").symlink_to(root, target_is_directory=True)
        (root / "link.txt").symlink_to(root / "sub" / "a.txt")
        (root / "broken.txt").symlink_to(root / "nowhere.txt")
    except OSError:
        pytest.skip("symlinks not supported here")
    found = [p.relative_to(root).as_posix() for p in iter_files([root])]
    assert found == ["link.txt"]  # the same file is yielded once, under its first name


def test_supported_suffixes() -> None:
    assert {".txt", ".md", ".markdown", ".html", ".htm", ".pdf", ".docx", ".jsonl", ".csv"} == set(
        SUPPORTED_SUFFIXES
    )


def test_file_fingerprint(tmp_path: Path) -> None:
    import hashlib

    data = os.urandom(3 * 1024 * 1024 + 17)
    path = write(tmp_path / "blob.bin", data)
    digest, size, mtime = file_fingerprint(path)
    assert digest == hashlib.sha256(data).hexdigest()
    assert size == len(data)
    assert mtime == path.stat().st_mtime
    with pytest.raises(IngestError, match="cannot read"):
        file_fingerprint(tmp_path / "missing.bin")


def test_a_file_over_the_size_limit_is_not_read_whole_to_be_fingerprinted(tmp_path):
    """A 4 GB file over --max-mb was hashed whole on every run (12 s for a run that changed
    nothing); it is refused unread, so its fingerprint reads only its ends."""
    from xsearch.ingest import file_fingerprint

    big = tmp_path / "big.jsonl"
    with open(big, "wb") as fh:
        fh.truncate(64 * 2**20)
    digest, size, _ = file_fingerprint(big, max_bytes=2**20)
    assert digest.startswith("over:") and size == 64 * 2**20
    assert file_fingerprint(big, max_bytes=2**20)[0] == digest  # unchanged: the same
    with open(big, "r+b") as fh:  # an edit at its end changes it
        fh.seek(64 * 2**20 - 10)
        fh.write(b"changed!")
    assert file_fingerprint(big, max_bytes=2**20)[0] != digest
    assert not file_fingerprint(big)[0].startswith("over:")  # without a limit: read whole
