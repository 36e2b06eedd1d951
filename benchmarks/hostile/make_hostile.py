"""Generate the hostile-input files of the robustness campaign (issue #7).

Nothing here is committed as a blob: every case is written on demand into a folder.

    python benchmarks/hostile/make_hostile.py OUT_DIR [CASE ...]

Each generator takes the corpus folder and a ``scale`` (1.0 = the size the campaign found;
tests use smaller scales where that still proves the point) and returns the paths it wrote.
The good companion file every campaign corpus also holds is written by :func:`good_file`.
"""

from __future__ import annotations

import argparse
import os
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

GOOD_TEXT = (
    "The lighthouse keeper on the northern island counts the migrating geese every autumn.\n"
    "His notebook records the weather, the tides and the number of ships passing the cape.\n"
)
ENGLISH = (
    "Rivers carry sediment from the mountains to the sea, building deltas over centuries. "
    "Farmers along the banks depend on the seasonal floods for fertile soil.\n"
)
HINDI = "नदियाँ पहाड़ों से समुद्र तक मिट्टी ले जाती हैं और सदियों में डेल्टा बनाती हैं। किसान बाढ़ पर निर्भर हैं।\n"
CHINESE = (
    "河流把泥沙从山上带到海里，几百年来形成了三角洲。"
    "沿岸的农民依靠季节性洪水获得肥沃的土壤。\n"
)
ARABIC = (
    "تحمل الأنهار الطمي من الجبال إلى البحر وتبني الدلتا عبر القرون. "
    "يعتمد المزارعون على الفيضانات.\n"
)

Generator = Callable[[Path, float], list[Path]]
CASES: dict[str, Generator] = {}


def case(name: str) -> Callable[[Generator], Generator]:
    def register(fn: Generator) -> Generator:
        CASES[name] = fn
        return fn

    return register


def good_file(corpus: Path) -> Path:
    return _write(corpus / "good.txt", GOOD_TEXT)


def _write(path: Path, data: bytes | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return path


# --------------------------------------------------------------------------- records


@case("jsonl-huge-int")
def jsonl_huge_int(corpus: Path, scale: float = 1.0) -> list[Path]:
    """A record holding an integer of 5,000 digits (Python refuses > 4,300) between good ones."""
    big = "9" * 5000
    lines = [
        '{"id": "r1", "text": "Glaciers retreat a few metres every summer."}',
        '{"id": "r2", "text": "A record with a huge number.", "n": ' + big + "}",
        '{"id": "r3", "text": "Moss grows on the north side of old oak trees."}',
    ]
    return [_write(corpus / "huge-int.jsonl", "\n".join(lines) + "\n")]


@case("jsonl-surrogates")
def jsonl_surrogates(corpus: Path, scale: float = 1.0) -> list[Path]:
    r"""Lone surrogates (\ud800 in a text, \udc80 in an id and a title) as JSON escapes."""
    lines = [
        r'{"id": "s1", "text": "Broken \ud800 text about harbour cranes."}',
        r'{"id": "\udc80", "text": "A record whose id is a lone low surrogate.", '
        r'"title": "T\udfff", "tags": ["\ud801"]}',
        r'{"id": "s3", "text": "A clean record about tram lines."}',
    ]
    return [_write(corpus / "surrogates.jsonl", "\n".join(lines) + "\n")]


@case("jsonl-deep-nesting")
def jsonl_deep_nesting(corpus: Path, scale: float = 1.0) -> list[Path]:
    """A record nested 100,000 arrays deep next to a good record."""
    depth = max(1000, int(100_000 * scale))
    deep = '{"id": "d", "text": "deep", "x": ' + "[" * depth + "]" * depth + "}"
    good = '{"id": "ok", "text": "Beekeepers move their hives to the clover fields in May."}'
    return [_write(corpus / "deep.jsonl", deep + "\n" + good + "\n")]


@case("csv-nul")
def csv_nul(corpus: Path, scale: float = 1.0) -> list[Path]:
    """One NUL byte inside a CSV row."""
    data = (
        "id,text\n"
        "1,Bakers knead the dough before dawn.\n"
        "2,The ferry leaves \x00at seven every morning.\n"
        "3,Owls hunt at night in the pine forest.\n"
    )
    return [_write(corpus / "nul.csv", data)]


@case("csv-oversized-record")
def csv_oversized_record(corpus: Path, scale: float = 1.0) -> list[Path]:
    """One record of 2.5M characters (over the 2M --max-chars default) among good rows."""
    n = max(3000, int(2_500_000 * scale))
    huge = ("word " * (n // 5 + 1))[:n]
    data = (
        "id,text\n"
        "1,Copper roofs turn green as they weather.\n"
        f"2,{huge}\n"
        "3,Salt marshes shelter young fish from predators.\n"
    )
    return [_write(corpus / "oversized.csv", data)]


# --------------------------------------------------------------------------- text encodings


@case("txt-nul")
def txt_nul(corpus: Path, scale: float = 1.0) -> list[Path]:
    """English text with one stray NUL byte."""
    return [_write(corpus / "nul.txt", ENGLISH * 3 + "Stray\x00 byte here.\n" + ENGLISH)]


def _utf16_nobom(corpus: Path, name: str, text: str) -> list[Path]:
    return [_write(corpus / name, (text * 4).encode("utf-16-le"))]


@case("utf16-nobom-hindi")
def utf16_hindi(corpus: Path, scale: float = 1.0) -> list[Path]:
    return _utf16_nobom(corpus, "hindi-utf16.txt", HINDI)


@case("utf16-nobom-chinese")
def utf16_chinese(corpus: Path, scale: float = 1.0) -> list[Path]:
    return _utf16_nobom(corpus, "chinese-utf16.txt", CHINESE)


@case("utf16-nobom-arabic")
def utf16_arabic(corpus: Path, scale: float = 1.0) -> list[Path]:
    return _utf16_nobom(corpus, "arabic-utf16.txt", ARABIC)


@case("invalid-utf8-english")
def invalid_utf8_english(corpus: Path, scale: float = 1.0) -> list[Path]:
    """ASCII English with a few bytes that are not UTF-8 (truncated sequences, stray 0xFF)."""
    data = ENGLISH.encode() + b"Broken \xc3\x28 bytes \xff and \xe2\x82 here.\n" + ENGLISH.encode()
    return [_write(corpus / "invalid-utf8.txt", data)]


@case("one-line-10mb")
def one_line_10mb(corpus: Path, scale: float = 1.0) -> list[Path]:
    n = int(10 * 2**20 * scale)
    line = ("tidal energy " * (n // 13 + 1))[:n]
    return [_write(corpus / "one-line.txt", line)]


@case("crlf-cr-only")
def crlf_cr(corpus: Path, scale: float = 1.0) -> list[Path]:
    data = "Windows line one.\r\nWindows line two.\r\n\r\nOld Mac line.\rAnother Mac line.\r"
    return [_write(corpus / "newlines.txt", data)]


@case("empty-file")
def empty_file(corpus: Path, scale: float = 1.0) -> list[Path]:
    return [_write(corpus / "empty.txt", b"")]


# --------------------------------------------------------------------------- documents


def _docx_skeleton(archive: zipfile.ZipFile) -> None:
    archive.writestr(
        "[Content_Types].xml",
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" '
        'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        '<Override PartName="/word/document.xml" ContentType="application/'
        'vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>',
    )
    archive.writestr(
        "_rels/.rels",
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
        'relationships/officeDocument" Target="word/document.xml"/></Relationships>',
    )


def docx_bomb(path: Path, xml_bytes: int) -> Path:
    """A .docx whose word/document.xml inflates to about ``xml_bytes`` (streamed, low memory)."""
    head = (
        b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        b'<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
        b"<w:body>"
    )
    tail = b"</w:body></w:document>"
    para = b"<w:p><w:r><w:t>" + b"flood plain " * 40 + b"</w:t></w:r></w:p>"
    block = para * (2**20 // len(para))
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        _docx_skeleton(archive)
        with archive.open("word/document.xml", "w", force_zip64=True) as fh:
            fh.write(head)
            written = len(head)
            while written < xml_bytes:
                fh.write(block)
                written += len(block)
            fh.write(tail)
    return path


@case("docx-bomb-1gb")
def docx_bomb_big(corpus: Path, scale: float = 1.0) -> list[Path]:
    return [docx_bomb(corpus / "bomb.docx", int(1_000_000_000 * scale))]


@case("docx-bomb-1gb-streamed")
def docx_bomb_streamed(corpus: Path, scale: float = 1.0) -> list[Path]:
    """The 1 GB bomb again; the campaign raises --max-text-mb past its declared size so the
    streaming text budget (--max-chars) has to stop it."""
    return [docx_bomb(corpus / "bomb.docx", int(1_000_000_000 * scale))]


@case("docx-bomb-300mb")
def docx_bomb_small(corpus: Path, scale: float = 1.0) -> list[Path]:
    return [docx_bomb(corpus / "small-bomb.docx", int(300_000_000 * scale))]


def deep_html(depth: int) -> bytes:
    return (
        b"<!doctype html><html><head><title>Deep</title></head><body>"
        + b"<div>" * depth
        + b"Text at the bottom of a very deep tree."
        + b"</div>" * depth
        + b"<p>Text after the deep tree.</p></body></html>"
    )


@case("html-deep-100k")
def html_deep_100k(corpus: Path, scale: float = 1.0) -> list[Path]:
    return [_write(corpus / "deep100k.html", deep_html(int(100_000 * scale)))]


@case("html-deep-200k")
def html_deep_200k(corpus: Path, scale: float = 1.0) -> list[Path]:
    return [_write(corpus / "deep200k.html", deep_html(int(200_000 * scale)))]


@case("html-unclosed-tags")
def html_unclosed(corpus: Path, scale: float = 1.0) -> list[Path]:
    """A million "<a" with no ">", then 2,000 "<p><b>" (active formatting elements)."""
    n = int(1_000_000 * scale)
    data = b"<html><body>" + b"<a" * n + b">x" + b"<p><b>z" * (n // 500) + b"</body></html>"
    return [_write(corpus / "unclosed.html", data)]


def pdf_with_stream(content: bytes) -> bytes:
    """A one-page PDF whose page content stream is ``content``, Flate-compressed."""
    stream = zlib.compress(content, 9)
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(stream) + stream
        + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


@case("pdf-flate-bomb")
def pdf_bomb(corpus: Path, scale: float = 1.0) -> list[Path]:
    """A PDF page whose content stream inflates to 200 MB (text operator, then padding)."""
    content = b"BT /F1 12 Tf 72 712 Td (Tidal bores travel up the estuary.) Tj ET\n"
    content += b" " * int(200_000_000 * scale)
    return [_write(corpus / "bomb.pdf", pdf_with_stream(content))]


# --------------------------------------------------------------------------- file system


@case("non-utf8-filename")
def non_utf8_name(corpus: Path, scale: float = 1.0) -> list[Path]:
    """A file whose name is Latin-1 bytes (not valid UTF-8)."""
    corpus.mkdir(parents=True, exist_ok=True)
    raw = os.path.join(os.fsencode(corpus), b"caf\xe9-notes.txt")
    with open(raw, "wb") as fh:
        fh.write(b"Notes from the cafe about espresso machines and milk foam.\n")
    return [Path(os.fsdecode(raw))]


@case("symlink-out")
def symlink_out(corpus: Path, scale: float = 1.0) -> list[Path]:
    """A file symlink and a folder symlink pointing outside the corpus."""
    outside = corpus.parent / "outside"
    _write(outside / "secret.txt", "Private diary entry that lives outside the corpus.\n")
    corpus.mkdir(parents=True, exist_ok=True)
    (corpus / "secret-link.txt").symlink_to(outside / "secret.txt")
    (corpus / "outside-dir").symlink_to(outside, target_is_directory=True)
    return [corpus / "secret-link.txt", corpus / "outside-dir"]


@case("fifo")
def fifo(corpus: Path, scale: float = 1.0) -> list[Path]:
    corpus.mkdir(parents=True, exist_ok=True)
    path = corpus / "pipe.txt"
    os.mkfifo(path)
    return [path]


@case("symlink-dir-loop")
def dir_loop(corpus: Path, scale: float = 1.0) -> list[Path]:
    """Folders linking back to their ancestors (a/loop -> corpus, a/b/up -> ../..)."""
    (corpus / "a" / "b").mkdir(parents=True, exist_ok=True)
    _write(corpus / "a" / "b" / "leaf.txt", "A leaf file at the bottom of the loop.\n")
    (corpus / "a" / "loop").symlink_to(corpus, target_is_directory=True)
    (corpus / "a" / "b" / "up").symlink_to(Path("..") / "..", target_is_directory=True)
    return [corpus / "a"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("cases", nargs="*", help=f"default: all of {', '.join(CASES)}")
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--flat", action="store_true",
                        help="write the cases straight into OUT instead of OUT/CASE/corpus")
    args = parser.parse_intermixed_args()
    for name in args.cases or list(CASES):
        corpus = args.out if args.flat else args.out / name / "corpus"
        corpus.mkdir(parents=True, exist_ok=True)
        good_file(corpus)
        paths = CASES[name](corpus, args.scale)
        print(name, *(os.fsencode(p).decode("utf-8", "backslashreplace") for p in paths))


if __name__ == "__main__":
    main()
