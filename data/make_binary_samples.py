"""Regenerate the binary and specially encoded sample files of the xsearch corpus.

Most of the sample corpus is plain UTF-8 text, Markdown, HTML, JSONL and CSV, kept in
git as written. The files made here cannot be edited comfortably as text, so their
content lives in this script instead:

* ``corpus/solar/eng_Latn_solar.pdf`` and ``corpus/volcano/fra_Latn_volcano.pdf``
  (reportlab, standard Helvetica font, so Latin script only);
* ``corpus/football/rus_Cyrl_football.docx`` and ``corpus/vaccines/hin_Deva_vaccines.docx``
  (python-docx);
* ``corpus/vaccines/fra_Latn_vaccines.txt`` saved in Windows-1252 (cp1252);
* ``corpus/volcano/rus_Cyrl_volcano.txt`` saved in UTF-16 with a byte order mark;
* the deliberately broken inputs in ``bad/``.

Output is deterministic: running the script twice gives byte-identical files
(reportlab ``invariant=1``; the .docx zip is rewritten with fixed timestamps).

Usage::

    python data/make_binary_samples.py
"""

from __future__ import annotations

import datetime as dt
import io
import random
import zipfile
from pathlib import Path
from xml.sax.saxutils import escape

from docx import Document
from docx.shared import Pt
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import getSampleStyleSheet
from reportlab.lib.units import cm
from reportlab.platypus import Flowable, Paragraph, SimpleDocTemplate, Spacer

DATA_DIR = Path(__file__).resolve().parent
CORPUS = DATA_DIR / "corpus"
BAD = DATA_DIR / "bad"

FIXED_TIME = dt.datetime(2024, 1, 1, 0, 0, 0)
ZIP_TIME = (2024, 1, 1, 0, 0, 0)

# --------------------------------------------------------------------------- PDF texts

ENG_SOLAR_TITLE = "Solar Panels for Homes and Villages"
ENG_SOLAR_PARAS = [
    "Solar panels turn sunlight directly into electricity. Each panel is made of "
    "photovoltaic cells, usually of silicon, which release electrons when light falls on "
    "them. A typical home system has eight to twelve panels on the roof, an inverter that "
    "converts direct current into alternating current, and sometimes a battery that stores "
    "energy for the evening. In sunny regions such a system can cover most of a household's "
    "electricity needs and pay for itself in six to ten years.",
    "For villages far from the national grid, solar power is often the cheapest way to get "
    "electricity at all. A small solar mini-grid with a shared battery bank can power lights, "
    "phone chargers, a water pump and a refrigerator for the village shop. Many families "
    "start with a single solar home kit: one panel, a small battery and a few LED lamps, "
    "which replaces expensive and smoky kerosene lamps.",
    "Solar panels need very little maintenance. Washing off dust every few weeks and "
    "checking the cables once a year keeps them working efficiently for twenty-five years "
    "or more.",
]

FRA_VOLCANO_TITLE = "Éruption volcanique : les habitants évacués"
FRA_VOLCANO_PARAS = [
    "Le volcan est entré en éruption dans la nuit de samedi à dimanche, après plusieurs "
    "jours d'activité sismique intense. Une fissure s'est ouverte sur le flanc sud, et des "
    "fontaines de lave hautes de plusieurs dizaines de mètres ont illuminé le ciel. Les "
    "coulées de lave se dirigent lentement vers la mer et ont déjà recouvert une portion de "
    "la route nationale.",
    "Par précaution, la préfecture a ordonné l'évacuation de trois hameaux situés en "
    "contrebas. Les habitants ont été accueillis dans des gymnases et des salles "
    "municipales. Un épais panache de cendres et de gaz volcaniques s'élève au-dessus du "
    "cratère ; les autorités recommandent aux personnes fragiles de rester chez elles et de "
    "porter un masque.",
    "Les volcanologues de l'observatoire surveillent l'évolution de l'éruption jour et nuit "
    "grâce à des sismographes, à des capteurs de gaz et à des images satellites.",
]

# -------------------------------------------------------------------------- DOCX texts

RUS_FOOTBALL_TITLE = "Чемпионат по футболу: столичное дерби завершилось вничью"
RUS_FOOTBALL_PARAS = [
    "В воскресенье на центральном стадионе столицы состоялось дерби, на которое пришли "
    "более шестидесяти тысяч болельщиков. Хозяева поля начали матч активно и уже на "
    "десятой минуте открыли счёт: полузащитник принял мяч на грудь и точно пробил в нижний "
    "угол ворот. Гости отвечали быстрыми контратаками, но вратарь дважды выручил команду.",
    "Во втором тайме игра стала жёстче, судья показал шесть жёлтых карточек. На "
    "семьдесят пятой минуте нападающий гостей сравнял счёт ударом головой после подачи "
    "углового. В концовке обе команды пытались вырвать победу, однако счёт 1:1 так и не "
    "изменился.",
    "После матча главный тренер хозяев сказал журналистам, что доволен игрой обороны, но "
    "команде не хватает реализации голевых моментов. В турнирной таблице обе команды "
    "остаются в пятёрке лучших.",
]

HIN_VACCINES_TITLE = "पोलियो और खसरा टीकाकरण अभियान"
HIN_VACCINES_PARAS = [
    "स्वास्थ्य विभाग ने रविवार से पूरे ज़िले में पल्स पोलियो और खसरा टीकाकरण अभियान शुरू किया है। "
    "इस अभियान में पाँच साल से कम उम्र के सभी बच्चों को पोलियो की दो बूँदें पिलाई जाएँगी, और "
    "जिन बच्चों को खसरे का टीका नहीं लगा है, उन्हें टीका लगाया जाएगा।",
    "आंगनवाड़ी केंद्रों, स्कूलों, रेलवे स्टेशनों और बस अड्डों पर टीकाकरण बूथ बनाए गए हैं। आशा "
    "कार्यकर्ता और स्वास्थ्य कर्मचारी घर-घर जाकर उन बच्चों को भी टीका देंगे जो बूथ तक नहीं पहुँच "
    "सके। टीका लगने के बाद बच्चे की उँगली पर स्याही से निशान लगाया जाता है।",
    "डॉक्टरों का कहना है कि टीके शरीर में रोग प्रतिरोधक क्षमता बढ़ाते हैं और बच्चों को गंभीर "
    "बीमारियों से बचाते हैं। माता-पिता से अपील की गई है कि वे अफ़वाहों पर ध्यान न दें और अपने "
    "बच्चों का टीकाकरण अवश्य कराएँ।",
]

# ------------------------------------------------------------------ specially encoded texts

# Saved as cp1252: contains é, ñ, ü, « », €, and the curly apostrophe ’ (0x92 in cp1252).
FRA_VACCINES_CP1252 = """\
Campagne de vaccination contre la rougeole

La mairie et l’Agence régionale de santé lancent cette semaine une grande campagne de \
vaccination contre la rougeole. « La rougeole n’est pas une maladie bénigne : elle est très \
contagieuse et peut provoquer des complications graves », rappelle le docteur Jürgen Müller, \
pédiatre au centre de vaccination du quartier.

Les enfants et les jeunes adultes qui n’ont pas reçu leurs deux doses peuvent se faire \
vacciner gratuitement, sans rendez-vous, du lundi au samedi. Le vaccin, qui protège aussi \
contre les oreillons et la rubéole, coûte d’habitude environ 15 € en pharmacie.

L’infirmière Ana Muñoz explique que la vaccination crée une immunité durable : le corps \
fabrique des anticorps et garde la mémoire du virus. Quand plus de 95 % de la population \
est immunisée, l’épidémie ne peut plus se propager, et les bébés trop jeunes pour être \
vaccinés sont protégés eux aussi. Pensez à apporter votre carnet de santé.
"""

# Saved as UTF-16 with BOM.
RUS_VOLCANO_UTF16 = """\
Извержение вулкана на Камчатке

На Камчатке началось мощное извержение одного из самых активных вулканов полуострова. \
Столб пепла поднялся на высоту до десяти километров над уровнем моря, а пепельный шлейф \
протянулся на сотни километров. В ближайших посёлках пепел покрыл дома, машины и улицы \
серым слоем толщиной в несколько сантиметров.

Местным жителям рекомендовали не выходить на улицу без необходимости, закрыть окна и \
носить защитные маски. Для авиации объявлен «красный» код опасности, поэтому самолёты \
облетают район извержения стороной. По склону вулкана стекают потоки раскалённой лавы, а в \
долинах рек возможны грязевые потоки — лахары.

Учёные вулканологической станции ведут круглосуточное наблюдение и сообщают, что \
сейсмическая активность остаётся высокой. Туристам запрещено подниматься к кратеру.
"""

# ------------------------------------------------------------------------- bad inputs

BROKEN_JSONL = (
    '{"id": "ok-1", "title": "Good record", "text": "A valid first record.", "lang": "eng_Latn"}\n'
    '{"id": "broken-2", "title": "Malformed", "text": "this line never closes its brace\n'
    '{"id": "ok-3", "title": "Good record", "text": "A valid third record.", "lang": "eng_Latn"}\n'
)

BROKEN_CSV = (
    "id,text,lang\n"
    'ok-1,"A valid row, with a comma inside quotes.",eng_Latn\n'
    "missing-text,eng_Latn\n"
    'unterminated-3,"This quoted field is never closed,eng_Latn\n'
)

FAKE_PDF = (
    "%PDF-1.4 (not really)\n"
    "This is a plain text file with a .pdf extension. It has no PDF objects, no xref table\n"
    "and no trailer, so any PDF parser must reject it.\n"
)

FAKE_DOCX = (
    "This is plain text saved with a .docx extension.\n"
    "A real .docx file is a zip archive; this one is not.\n"
)


# ------------------------------------------------------------------------------ writers


def write_pdf(path: Path, title: str, paragraphs: list[str], lang: str) -> None:
    """Write a small one-page PDF with a title and body paragraphs."""
    styles = getSampleStyleSheet()
    doc = SimpleDocTemplate(
        str(path),
        pagesize=A4,
        leftMargin=2.5 * cm,
        rightMargin=2.5 * cm,
        topMargin=2.5 * cm,
        bottomMargin=2.5 * cm,
        title=title,
        author="xsearch sample corpus",
        subject="xsearch sample corpus (CC0)",
        creator="data/make_binary_samples.py",
        lang=lang,
        invariant=1,
    )
    story: list[Flowable] = [Paragraph(escape(title), styles["Title"]), Spacer(1, 0.4 * cm)]
    for para in paragraphs:
        story.append(Paragraph(escape(para), styles["BodyText"]))
        story.append(Spacer(1, 0.25 * cm))
    doc.build(story)


def _normalize_zip(data: bytes) -> bytes:
    """Rewrite a zip archive with fixed timestamps so the output is reproducible."""
    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(data)) as src,
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst,
    ):
        for item in src.infolist():
            info = zipfile.ZipInfo(item.filename, date_time=ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            dst.writestr(info, src.read(item.filename))
    return out.getvalue()


def write_docx(path: Path, title: str, paragraphs: list[str], lang: str) -> None:
    """Write a .docx with a heading and body paragraphs, with fixed metadata."""
    document = Document()
    document.add_heading(title, level=1)
    for para in paragraphs:
        p = document.add_paragraph(para)
        for run in p.runs:
            run.font.size = Pt(12)
    props = document.core_properties
    props.title = title
    props.author = "xsearch sample corpus"
    props.last_modified_by = "xsearch sample corpus"
    props.language = lang
    props.comments = "Written for the xsearch sample corpus (CC0)."
    props.created = FIXED_TIME
    props.modified = FIXED_TIME
    props.last_printed = FIXED_TIME
    props.revision = 1
    buf = io.BytesIO()
    document.save(buf)
    path.write_bytes(_normalize_zip(buf.getvalue()))


def write_text(path: Path, text: str, encoding: str) -> None:
    """Write text with an explicit encoding and LF line endings."""
    path.write_bytes(text.encode(encoding))


def write_bad_files() -> list[Path]:
    """Write the deliberately broken inputs used by the tests."""
    BAD.mkdir(parents=True, exist_ok=True)
    rng = random.Random(20240101)
    # Start with NUL bytes so the file is unmistakably binary, then 2 KB of noise.
    binary = b"\x00\x00\xff\xfe" + rng.randbytes(2044)
    files = {
        BAD / "empty.txt": b"",
        BAD / "binary.txt": binary,
        BAD / "broken.jsonl": BROKEN_JSONL.encode("utf-8"),
        BAD / "broken.csv": BROKEN_CSV.encode("utf-8"),
        BAD / "fake.pdf": FAKE_PDF.encode("utf-8"),
        BAD / "fake.docx": FAKE_DOCX.encode("utf-8"),
    }
    for path, data in files.items():
        path.write_bytes(data)
    return list(files)


def main() -> None:
    written: list[Path] = []

    pdf_jobs = [
        (CORPUS / "solar" / "eng_Latn_solar.pdf", ENG_SOLAR_TITLE, ENG_SOLAR_PARAS, "en"),
        (CORPUS / "volcano" / "fra_Latn_volcano.pdf", FRA_VOLCANO_TITLE, FRA_VOLCANO_PARAS, "fr"),
    ]
    for path, title, paras, lang in pdf_jobs:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_pdf(path, title, paras, lang)
        written.append(path)

    docx_jobs = [
        (
            CORPUS / "football" / "rus_Cyrl_football.docx",
            RUS_FOOTBALL_TITLE,
            RUS_FOOTBALL_PARAS,
            "ru-RU",
        ),
        (
            CORPUS / "vaccines" / "hin_Deva_vaccines.docx",
            HIN_VACCINES_TITLE,
            HIN_VACCINES_PARAS,
            "hi-IN",
        ),
    ]
    for path, title, paras, lang in docx_jobs:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_docx(path, title, paras, lang)
        written.append(path)

    cp1252_path = CORPUS / "vaccines" / "fra_Latn_vaccines.txt"
    write_text(cp1252_path, FRA_VACCINES_CP1252, "cp1252")
    written.append(cp1252_path)

    utf16_path = CORPUS / "volcano" / "rus_Cyrl_volcano.txt"
    # Explicit little-endian BOM + UTF-16-LE, so the bytes do not depend on the machine.
    utf16_path.write_bytes(b"\xff\xfe" + RUS_VOLCANO_UTF16.encode("utf-16-le"))
    written.append(utf16_path)

    written.extend(write_bad_files())

    for path in written:
        print(f"{path.relative_to(DATA_DIR)}\t{path.stat().st_size} bytes")


if __name__ == "__main__":
    main()
