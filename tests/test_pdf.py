"""The exported PDF, read back as an addressee would: text order, pages, links, fonts."""

import dataclasses
import io
import re
import subprocess
from datetime import date

import pytest
from fontTools.pens.boundsPen import BoundsPen
from fontTools.ttLib import TTFont
from pypdf import PdfReader
from weasyprint.urls import FatalURLFetchingError

from letterapp import create_app
from letterapp.letters import load_letter
from letterapp.names import sort_key
from letterapp.pdf import PDFError, StaticFetcher, render_pdf

from .conftest import LETTER, undrawable_character

LONG_URL = (
    "https://documents.example.org/en/hrc/session-25/"
    "A-HRC-25-CRP-1-report-of-the-detailed-findings-of-the-commission.pdf?lang=en&version=2"
)
NAMES = [
    "Transitional Justice Working Group (TJWG)",
    "THINK",
    "1969 KAL Abductees' Families Association",
    "Citizens’ Alliance for North Korean Human Rights (NKHR)",
    "김민지",
    "사단법인 평화와 인권",
    "Zoë Lefèvre",
    "Đặng Thu Hà",
    "Álvarez Legal Clinic – Madrid",
    "think tank on governance",
    "2nd Chance Network",
    "Amnesty Test Section (ATS)",
]
MANY = [f"Member Organisation {n:03d} for Human Rights" for n in range(1, 121)]


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    letters = tmp_path_factory.mktemp("letters")
    (letters / "test-letter.md").write_text(LETTER, encoding="utf-8")
    return create_app({"TESTING": True, "SECRET_KEY": "t", "LETTERS_DIR": str(letters)})


@pytest.fixture(scope="module")
def letter(app):
    return load_letter(app.config["LETTERS_DIR"], "test-letter")


def render(app, letter, names, **options) -> PdfReader:
    with app.app_context():
        data = render_pdf(letter, sorted(names, key=sort_key), as_of=date(2023, 8, 11), **options)
    assert data.startswith(b"%PDF")
    return PdfReader(io.BytesIO(data))


def text_of(reader: PdfReader) -> list[str]:
    return [page.extract_text() for page in reader.pages]


@pytest.fixture(scope="module")
def endnotes(app, letter):
    return render(app, letter, NAMES + MANY)


@pytest.fixture(scope="module")
def endnotes_text(endnotes):
    return "\n".join(text_of(endnotes))


def positions(text: str, items: list[str]) -> list[int]:
    """Where each item starts in the text, lines joined (long names wrap in columns)."""
    text = " ".join(text.split())
    found = [text.find(item) for item in items]
    assert -1 not in found, [i for i, p in zip(items, found, strict=True) if p == -1]
    return found


def test_every_element_in_the_layout_order(endnotes_text):
    order = [
        "Open letter on the rights of families of the disappeared",
        "August 11, 2023",
        "High Commissioner Amara Türk-Lindqvist",
        "Office of the High Commissioner for Human Rights",
        "Palais des Nations, CH-1211 Geneva 10, Switzerland",
        "ATTN:",
        "Jean-Luc Ørsted, Chief of Section",
        "김수진, Human Rights Officer",
        "Nadia Benali, Associate Officer",
        "Re: The rights of families of the disappeared",
        "Dear High Commissioner Türk-Lindqvist,",
        "We write about the families",
        "1. Background",
        "2. Way forward",
        "Thank you.",
        "Sincerely,",
        "Signature organizations and individuals (as of August 11, 2023)",
        "1969 KAL Abductees' Families Association",
        "사단법인 평화와 인권",
        "Report of the commission of inquiry, A/HRC/25/CRP.1",
        "Id., para. 1197.",
    ]
    found = positions(endnotes_text, order)
    assert found == sorted(found)


def test_signatories_sorted_as_the_real_letter(endnotes_text):
    expected = [
        "1969 KAL Abductees' Families Association",
        "2nd Chance Network",
        "Álvarez Legal Clinic – Madrid",
        "Amnesty Test Section (ATS)",
        "Citizens’ Alliance for North Korean Human Rights (NKHR)",
        "Đặng Thu Hà",
        "Member Organisation 001 for Human Rights",
        "Member Organisation 120 for Human Rights",
        "THINK",
        "think tank on governance",
        "Transitional Justice Working Group (TJWG)",
        "Zoë Lefèvre",
        "김민지",
        "사단법인 평화와 인권",
    ]
    found = positions(endnotes_text, expected)
    assert found == sorted(found)


def test_notes_come_after_the_signatory_list(endnotes_text):
    last_name = endnotes_text.find("사단법인 평화와 인권")
    assert endnotes_text.find("A/HRC/25/CRP.1") > last_name
    assert endnotes_text.rfind("Id.") > last_name
    # Backlinks are for the web page only.
    assert "↩" not in endnotes_text


def test_superscript_note_calls_follow_the_punctuation(endnotes_text):
    text = " ".join(endnotes_text.split())
    assert re.search(r"in the country\. ?1 Their", text)
    assert re.search(r"long established\. ?2 ", text)


def test_title_and_date_on_page_one_only_and_page_numbers(endnotes):
    pages = text_of(endnotes)
    assert len(pages) >= 3
    assert "Open letter on the rights" in pages[0]
    for number, text in enumerate(pages, start=1):
        assert f"{number} / {len(pages)}" in text
        if number > 1:
            assert "Open letter on the rights" not in text
            assert "August 11, 2023" not in text.replace("(as of August 11, 2023)", "")


def test_long_list_is_set_in_two_columns(endnotes):
    page = next(p for p in endnotes.pages if "Member Organisation 060" in p.extract_text())
    lefts = set()

    def visit(text, cm, tm, font, size):
        if text.startswith("Member Organisation"):
            lefts.add(round(tm[4]))

    page.extract_text(visitor_text=visit)
    assert len(lefts) == 2, lefts


def test_long_urls_stay_whole_clickable_and_inside_the_margins(endnotes):
    links = []
    for page in endnotes.pages:
        width = float(page.mediabox.width)
        for ref in page.get("/Annots") or []:
            annot = ref.get_object()
            uri = annot.get("/A", {}).get("/URI")
            if uri:
                links.append(uri)
                left, _, right, _ = (float(v) for v in annot["/Rect"])
                assert 0 <= left and right <= width, (uri, annot["/Rect"])
    assert LONG_URL in links


def test_metadata_title_author_language(endnotes):
    assert endnotes.metadata.title == "Open letter on the rights of families of the disappeared"
    assert endnotes.metadata.author == "Test Coalition for Truth"
    assert endnotes.trailer["/Root"]["/Lang"] == "en"


def _drawn_characters(reader: PdfReader) -> dict[str, set[str]]:
    """For each embedded font, the characters it draws with a real glyph (not .notdef)."""
    drawn: dict[str, set[str]] = {}
    for page in reader.pages:
        for ref in page["/Resources"]["/Font"].values():
            font = ref.get_object()
            cmap = font["/ToUnicode"].get_object().get_data().decode()
            glyphs = _glyph_outlines(font)
            chars = drawn.setdefault(str(font["/BaseFont"]), set())
            for gid, code in re.findall(r"<([0-9a-f]{4})> <([0-9a-f]+)>", cmap):
                if int(gid, 16) != 0 and glyphs(int(gid, 16)):
                    chars.update(bytes.fromhex(code).decode("utf-16-be"))
    return drawn


def _glyph_outlines(font):
    """A function telling whether the embedded font has an outline for a glyph id."""
    descriptor = font["/DescendantFonts"][0].get_object()["/FontDescriptor"]
    stream = descriptor.get("/FontFile2") or descriptor.get("/FontFile3")
    ttfont = TTFont(io.BytesIO(stream.get_object().get_data()))
    order = ttfont.getGlyphOrder()
    glyph_set = ttfont.getGlyphSet()

    def has_outline(gid: int) -> bool:
        if gid >= len(order):
            return False
        pen = BoundsPen(glyph_set)
        glyph_set[order[gid]].draw(pen)
        return pen.bounds is not None

    return has_outline


def test_hangul_and_accents_are_drawn_by_fonts_that_have_them(endnotes, endnotes_text):
    for name in ("김민지", "사단법인 평화와 인권", "Zoë Lefèvre", "Đặng Thu Hà", "김수진"):
        assert name in endnotes_text
    drawn = _drawn_characters(endnotes)
    hangul = set("김민지사단법인평화와권수진")
    cjk = set().union(*(chars for font, chars in drawn.items() if "CJK" in font))
    assert hangul <= cjk
    everything = set().union(*drawn.values())
    assert set("ëèĐặàü’–") <= everything


def test_pdffonts_lists_only_embedded_fonts(app, letter, tmp_path):
    path = tmp_path / "letter.pdf"
    with app.app_context():
        path.write_bytes(render_pdf(letter, ["김민지"], as_of=date(2023, 8, 11)))
    listing = subprocess.run(["pdffonts", str(path)], capture_output=True, text=True, check=True)
    rows = listing.stdout.splitlines()[2:]
    assert rows and all(" yes yes yes " in row for row in rows), listing.stdout
    assert any("CJK" in row for row in rows)


def test_a4_by_default_letter_on_request(app, letter, endnotes):
    assert [round(v) for v in endnotes.pages[0].mediabox[2:]] == [595, 842]
    us = render(app, letter, NAMES, paper="letter")
    assert [round(v) for v in us.pages[0].mediabox[2:]] == [612, 792]


def test_footnotes_at_the_foot_of_each_page(app, letter):
    reader = render(app, letter, NAMES, notes="footnotes")
    pages = text_of(reader)
    whole = "\n".join(pages)
    page_of_call = next(i for i, p in enumerate(pages) if "right to know" in p)
    assert "Id., para. 1197." in pages[page_of_call]
    # The note sits below the body text of its page, and there is no endnote list as well.
    assert pages[page_of_call].find("Id., para. 1197.") > pages[page_of_call].find("right to know")
    assert whole.count("A/HRC/25/CRP.1") == 1
    links = [
        a.get_object()["/A"]["/URI"]
        for p in reader.pages
        for a in p.get("/Annots") or []
        if "/URI" in a.get_object().get("/A", {})
    ]
    assert LONG_URL in links


def test_a_name_no_font_can_draw_is_refused_before_export(app, letter):
    char = undrawable_character()
    with app.app_context(), pytest.raises(PDFError, match=rf"U\+{ord(char):04X}"):
        render_pdf(letter, [f"Group {char}"], as_of=date(2023, 8, 11))


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "http://127.0.0.1:1/",
        "https://example.org/style.css",
        "https://letterapp.invalid/static/../../../../etc/passwd",
        "https://letterapp.invalid/static/missing.css",
        "data:text/css,body{}",
    ],
)
def test_fetcher_refuses_anything_but_own_static_files(app, url):
    fetcher = StaticFetcher(app.static_folder)
    with pytest.raises(FatalURLFetchingError):
        fetcher.fetch(url)


def test_fetcher_serves_the_stylesheet(app):
    response = StaticFetcher(app.static_folder).fetch("https://letterapp.invalid/static/pdf.css")
    assert b"@page" in response.read()
    assert response.content_type == "text/css"


# ---------------------------------------------------------------- worker limits


@pytest.fixture
def limited(app):
    """Set PDF_TIMEOUT / PDF_MEMORY_MB for one test, then restore the defaults."""
    saved = {k: app.config.get(k) for k in ("PDF_TIMEOUT", "PDF_MEMORY_MB")}

    def limit(**settings):
        app.config.update(settings)

    yield limit
    app.config.update(saved)


def test_deeply_nested_letter_is_a_clear_error_not_a_dead_worker(app, letter):
    deep = dataclasses.replace(letter, body="> " * 5000 + "Too deep.\n\n" + letter.body)
    with app.app_context(), pytest.raises(PDFError, match="nested too deeply"):
        render_pdf(deep, NAMES, as_of=date(2023, 8, 11))
    with app.app_context():  # the same workers go on rendering
        assert render_pdf(letter, NAMES, as_of=date(2023, 8, 11)).startswith(b"%PDF")


def test_a_render_over_the_time_limit_is_stopped(app, letter, limited):
    limited(PDF_TIMEOUT=0.05)
    with app.app_context(), pytest.raises(PDFError, match="longer than 0.05 s"):
        render_pdf(letter, NAMES + MANY, as_of=date(2023, 8, 11))
    limited(PDF_TIMEOUT=None)
    with app.app_context():
        assert render_pdf(letter, NAMES, as_of=date(2023, 8, 11)).startswith(b"%PDF")


def test_a_render_over_the_memory_limit_is_a_clear_error(app, letter, limited):
    limited(PDF_MEMORY_MB=64)
    with app.app_context(), pytest.raises(PDFError, match="memory"):
        render_pdf(letter, NAMES, as_of=date(2023, 8, 11))
    limited(PDF_MEMORY_MB=None)
    with app.app_context():
        assert render_pdf(letter, NAMES, as_of=date(2023, 8, 11)).startswith(b"%PDF")
