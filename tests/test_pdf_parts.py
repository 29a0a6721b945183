"""A long letter rendered in parts, joined and numbered, read back as an addressee would."""

import io
import random
import re
import statistics
import subprocess
from datetime import date
from pathlib import Path

import pytest
from pypdf import PageObject, PdfReader
from pypdf.generic import DecodedStreamObject, NameObject

from letterapp import create_app, pdf, pdfcache, pdfflow, pdfjoin, pdfparts
from letterapp.letters import load_letter
from letterapp.names import sort_key

from .conftest import LETTER, undrawable_character
from .test_pdf import positions

AS_OF = date(2023, 8, 11)
LONG_URL = (
    "https://documents.example.org/en/hrc/session-25/"
    "A-HRC-25-CRP-1-report-of-the-detailed-findings-of-the-commission.pdf?lang=en&version=2"
)
FEW = [
    "1969 KAL Abductees' Families Association",
    "Transitional Justice Working Group (TJWG)",
    "THINK",
    "김민지",
    "사단법인 평화와 인권",
    "Zoë Lefèvre",
    "Đặng Thu Hà",
    "AT&T <b>Workers</b> Union",  # escaped inside a block of lines, read back as typed
    "International Federation for the Protection of Human Rights Defenders and Civic Space",
]
MEMBERS = [f"Member Organisation {n:03d} for Human Rights" for n in range(1, 321)]
NAMES = sorted(FEW + MEMBERS, key=sort_key)
NEW_NAME = "Member Organisation 300a for Human Rights"  # in the last run of names


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    folder = tmp_path_factory.mktemp("parts")
    (folder / "test-letter.md").write_text(LETTER, encoding="utf-8")
    return create_app(
        {
            "TESTING": True,
            "SECRET_KEY": "t",
            "LETTERS_DIR": str(folder),
            "PDF_CACHE_DIR": str(folder / "pdf-cache"),
        }
    )


@pytest.fixture(scope="module")
def letter(app):
    return load_letter(app.config["LETTERS_DIR"], "test-letter")


@pytest.fixture(scope="module")
def rendered(app, letter, tmp_path_factory):
    assert len(NAMES) >= pdf.PARTS_FROM  # the parts path, not the single render
    with app.app_context():
        data = pdfcache.get_pdf(letter, NAMES, as_of=AS_OF)
    path = tmp_path_factory.mktemp("out") / "letter.pdf"
    path.write_bytes(data)
    return path


@pytest.fixture(scope="module")
def reader(rendered):
    return PdfReader(rendered)


def pdftotext(path, *options) -> str:
    args = ["pdftotext", "-enc", "UTF-8", *options, str(path), "-"]
    return subprocess.run(args, capture_output=True, text=True, check=True).stdout


def test_reading_order_of_the_whole_letter(rendered):
    text = pdftotext(rendered)  # reading order, as an addressee copies it
    order = [
        "Open letter on the rights of families of the disappeared",
        "August 11, 2023",
        "Dear High Commissioner Türk-Lindqvist,",
        "Thank you.",
        "Sincerely,",
        "Signature organizations and individuals (as of August 11, 2023)",
        *NAMES,
        "Report of the commission of inquiry, A/HRC/25/CRP.1",
        "Id., para. 1197.",
    ]
    found = positions(text, order)
    assert found == sorted(found)


def test_every_page_is_numbered_n_of_m(reader, rendered):
    pages = pdftotext(rendered).split("\f")[:-1]  # pdftotext ends each page with a form feed
    assert len(pages) == len(reader.pages) >= 6
    for number, text in enumerate(pages, start=1):
        # pdftotext drops the spaces of "1 / 9", evenly spaced like a letter-spaced word.
        footers = [line for line in text.split("\n") if re.fullmatch(r"\d+ ?/ ?\d+", line)]
        assert footers == [text.split("\n")[-3]], (number, text[-40:])  # the last line
        assert footers[0].replace(" ", "") == f"{number}/{len(pages)}"


def test_names_are_set_in_two_aligned_columns(reader):
    width = float(reader.pages[0].mediabox.width)
    pages = [p for p in reader.pages if "Member Organisation 100" in p.extract_text()]
    lefts: set[int] = set()
    tops: dict[int, float] = {}

    def visit(text, cm, tm, font, size):
        if text.startswith("Member Organisation"):
            x = round(cm[4] + tm[4])
            lefts.add(x)
            tops[x] = max(tops.get(x, 0), cm[5] + tm[5])

    pages[0].extract_text(visitor_text=visit)
    assert len(lefts) == 2, lefts
    left, right = sorted(lefts)
    assert left < width / 2 < right
    assert abs(tops[left] - tops[right]) < 1.5  # the right is 1pt lower, see part.html


def words(path) -> list[list[tuple[float, float, str]]]:
    """For each page, its words as pdftotext sees them: (left, bottom, text), in
    points from the top left of the page."""
    pages = []
    for page in pdftotext(path, "-bbox").split("<page ")[1:]:
        found = re.findall(
            r'<word xMin="([\d.]+)" yMin="[\d.]+" xMax="[\d.]+" yMax="([\d.]+)">([^<]*)<', page
        )
        pages.append([(float(x), float(bottom), text) for x, bottom, text in found])
    return pages


def columns(path, middle: float) -> list[tuple[list[float], list[float]]]:
    """For each page, the bottoms of its lines of text (rounded, top line first)
    left of `middle` and right of it."""
    pages = []
    for on_page in words(path):
        lines: tuple[set, set] = (set(), set())
        for x, bottom, _ in on_page:
            lines[x > middle].add(round(bottom))
        pages.append(tuple(sorted(side) for side in lines))
    return pages


A4 = pdfparts.GEOMETRY["a4"]
FOOT = (297 - A4.bottom) * pdfparts.MM  # points from the top: where the columns end
PITCH = A4.line_mm * pdfparts.MM  # points between two lines of names


def test_the_list_starts_below_the_closing_and_fills_both_columns(reader, rendered):
    texts = [page.extract_text() for page in reader.pages]
    first = next(i for i, text in enumerate(texts) if "Sincerely," in text)
    last = max(i for i, text in enumerate(texts) if "Member Organisation" in text)
    assert "Signature organizations and individuals" in texts[first]
    assert NAMES[0] in texts[first]  # below the heading, on the same page
    assert last > first + 1
    pages = columns(rendered, float(reader.pages[0].mediabox.width) / 2)
    for number in range(first, last):  # each column runs to the foot of the page
        left, right = ([y for y in side if y < FOOT] for side in pages[number])  # not the footer
        assert FOOT - 2 * PITCH < left[-1] <= FOOT + 1, number
        assert FOOT - 2 * PITCH < right[-1] <= FOOT + 1, number
    # The notes follow the list on its last page, below the rule, as in a whole render.
    notes = first_note(rendered)
    assert notes[0] == last
    left, right = ([y for y in side if y < notes[1] - PITCH] for side in pages[last])
    assert left[0] == pytest.approx(right[0], abs=1.5)  # the last page is balanced
    assert 0 <= len(left) - len(right) <= 2, (len(left), len(right))
    gap = notes[1] - max(left) - PITCH  # from the last name's line to the first note's
    assert 8 * pdfparts.MM < gap < 8 * pdfparts.MM + 3 * PITCH, gap


def first_note(path) -> tuple[int, float]:
    """The page of the first note (numbered from 0) and the bottom of its first line."""
    for number, on_page in enumerate(words(path)):
        texts = [text for _, _, text in on_page]
        found = [
            on_page[i][1] for i in range(len(texts) - 1) if texts[i : i + 2] == ["Report", "of"]
        ]
        if found:
            return number, found[0]
    raise AssertionError("the first note is not in the PDF")


def test_every_name_is_set_once(rendered):
    text = " ".join(pdftotext(rendered).split())
    assert [name for name in NAMES if text.count(name) != 1] == []


def test_columns_take_names_while_they_fit_and_the_last_page_is_balanced():
    top, bottom = 200.0, A4.bottom * pdfparts.MM  # points from the foot of the page
    rows = int((top - bottom) // PITCH)
    per_column = int(((297 - A4.top - A4.bottom) * pdfparts.MM + 0.5) // PITCH)
    heights = [PITCH] * (2 * rows + 2 * per_column + 7) + [3 * PITCH, PITCH]
    pages = pdfflow._columns(heights, top, A4, 297 * pdfparts.MM)
    counts = [[len(indexes) for _, indexes in page] for page in pages]
    assert counts[:2] == [[rows, rows], [per_column, per_column]]
    # Seven one-line names, one of three lines, then one: six lines left, five right.
    assert counts[2] == [6, 3]
    order = [i for page in pages for _, indexes in page for i in indexes]
    assert order == list(range(len(heights)))  # every name once, in order


def test_the_notes_leave_room_for_the_last_page_of_names_unless_it_is_the_headings():
    margin = A4.body_margin * pdfparts.MM  # the notes part's body starts below it
    room = (297 - A4.top - A4.bottom) * pdfparts.MM - margin
    one_page, two_pages = [[]], [[], []]
    assert pdfjoin.notes_space(pdfflow.Flow(one_page, 300.0), A4) == 0.0  # a page of their own
    assert pdfjoin.notes_space(pdfflow.Flow(two_pages, 300.0), A4) == pytest.approx(300 - margin)
    assert pdfjoin.notes_space(pdfflow.Flow(two_pages, room + margin + 5), A4) == pytest.approx(
        room
    )


def test_links_metadata_and_fonts_survive_the_join(reader, rendered):
    uris = [
        annot.get_object()["/A"]["/URI"]
        for page in reader.pages
        for annot in page.get("/Annots") or []
        if "/URI" in annot.get_object().get("/A", {})
    ]
    assert LONG_URL in uris
    assert reader.metadata.title == "Open letter on the rights of families of the disappeared"
    assert reader.metadata.author == "Test Coalition for Truth"
    assert reader.trailer["/Root"]["/Lang"] == "en"
    listing = ["pdffonts", str(rendered)]
    fonts = subprocess.run(listing, capture_output=True, text=True, check=True).stdout
    rows = fonts.splitlines()[2:]
    assert rows and all(" yes yes yes " in row for row in rows), fonts
    assert any("CJK" in row for row in rows)


def test_note_calls_link_to_the_notes_after_the_list_and_bookmarks_remain(reader):
    calls = [
        number
        for number, page in enumerate(reader.pages)
        for annot in page.get("/Annots") or []
        if annot.get_object().get("/Dest") == "fn:1"
    ]
    assert calls and "right to know" in reader.pages[calls[0]].extract_text()
    target = reader.get_destination_page_number(reader.named_destinations["fn:1"])
    assert target > calls[0]
    text = reader.pages[target].extract_text()  # in drawing order
    # The notes start on the list's last page, after its names.
    found = positions(text, [NAMES[-1], "A/HRC/25/CRP.1"])
    assert found == sorted(found)
    assert pdfjoin.START not in reader.named_destinations  # the join's own mark is gone

    def titles(items):
        for item in items:
            yield from titles(item) if isinstance(item, list) else [item.title]

    assert list(titles(reader.outline)) == [
        "Open letter on the rights of families of the disappeared",
        "1. Background",
        "2. Way forward",
        "Signature organizations and individuals (as of August 11, 2023)",
    ]


def test_names_that_surely_fit_one_line_are_set_as_blocks_of_lines():
    run = [("Kim", True), ("Lee", True), ("A long name that may wrap", False),
           ("Two  spaces", True), ("Line\nbreak", True), ("Park", True), ("Yoon", True)]  # fmt: skip
    assert pdfparts.blocks(run) == [
        (False, ["Kim", "Lee"]),
        (True, ["A long name that may wrap"]),
        (True, ["Two  spaces"]),  # a preformatted block would keep both spaces
        (True, ["Line\nbreak"]),  # ... and this line break
        (False, ["Park", "Yoon"]),
    ]


def test_one_more_sign_on_renders_its_run_of_names_and_the_notes_again(app, letter, rendered):
    with app.app_context():
        folder = pdfcache.cache_dir()
        before = set(folder.glob("part-*.pdf"))
        data = pdfcache.get_pdf(letter, sorted([*NAMES, NEW_NAME], key=sort_key), as_of=AS_OF)
        new = set(folder.glob("part-*.pdf")) - before
    assert len(before) >= 4  # body, notes, page numbers and at least one run of names
    # The run that holds the new name, and the notes: the list's last page grew by a line.
    texts = [" ".join(pdftotext(path).split()) for path in new]
    assert len(texts) == 2
    assert len([text for text in texts if NEW_NAME in text]) == 1
    assert len([text for text in texts if "A/HRC/25/CRP.1" in text]) == 1
    text = " ".join(pdftotext_bytes(data).split())
    found = positions(text, ["Member Organisation 300 ", NEW_NAME, "Member Organisation 301"])
    assert found == sorted(found)


def test_one_more_name_mostly_changes_one_run_of_names(app):
    """Runs end at names the hash picks, so the runs after a new name stay the same."""
    rnd = random.Random(6)
    words = ["Legal", "Aid", "Network", "Zoë", "Ørsted", "Centre", "for", "Human", "Rights",
             "Institute", "Democracy", "Geneva", "Seoul", "김민지", "평화와", "인권"]  # fmt: skip
    names = sorted(
        {" ".join(rnd.choices(words, k=rnd.randint(2, 9))) + f" {n}" for n in range(3000)},
        key=sort_key,
    )
    geometry = pdfparts.GEOMETRY["a4"]
    before = {tuple(run) for run in pdfparts.plan(names, geometry)}
    assert len(before) >= 5
    changed = []
    for position in range(10, len(names), 97):
        more = sorted([*names, names[position] + " Jr."], key=sort_key)
        changed.append(sum(tuple(run) not in before for run in pdfparts.plan(more, geometry)))
    assert statistics.mean(changed) <= 1.3, changed
    assert changed.count(1) >= 0.8 * len(changed), changed


def pdftotext_bytes(data: bytes) -> str:
    args = ["pdftotext", "-enc", "UTF-8", "-", "-"]
    return subprocess.run(args, input=data, capture_output=True, check=True).stdout.decode()


def test_the_same_names_render_the_same_pdf_without_a_cache(app, letter, reader):
    with app.app_context():
        data = pdf.render_pdf(letter, NAMES, as_of=AS_OF)
    again = PdfReader(io.BytesIO(data))
    assert [p.extract_text() for p in again.pages] == [p.extract_text() for p in reader.pages]


def test_letter_paper_and_footnotes_keep_their_options(app, letter):
    with app.app_context():
        us = PdfReader(io.BytesIO(pdf.render_pdf(letter, NAMES, as_of=AS_OF, paper="letter")))
        footnotes = pdf.render_pdf(letter, NAMES, as_of=AS_OF, notes="footnotes")
    assert {tuple(round(v) for v in p.mediabox[2:]) for p in us.pages} == {(612, 792)}
    assert "Member Organisation 001" in "".join(p.extract_text() for p in us.pages)
    # Page-bottom notes take the single render: every note once, at the foot of a page.
    assert pdftotext_bytes(footnotes).count("A/HRC/25/CRP.1") == 1


def test_a_name_no_font_can_draw_stops_a_long_render(app, letter):
    char = undrawable_character()
    names = [*NAMES[:100], f"Group {char}", *NAMES[100:]]
    with app.app_context(), pytest.raises(pdf.PDFError) as refused:
        pdf.render_pdf(letter, names, as_of=AS_OF)
    assert f"U+{ord(char):04X}" in str(refused.value)


def test_a_page_of_names_with_other_drawing_is_refused_with_a_message():
    page = PageObject.create_blank_page(width=595, height=842)
    stream = DecodedStreamObject()
    stream.set_data(b"q\n0 0 10 10 re f\nBT\n1 0 0 -1 91 106 Tm\n[<0024>0] TJ\nET\nQ\n")
    page[NameObject("/Contents")] = stream
    with pytest.raises(pdfflow.FlowError, match="drawing other than text"):
        pdfflow.flow([page], 500.0, A4)


def test_names_the_join_cannot_read_fail_the_render_with_a_message(app, letter):
    """Parts drawn otherwise (say, by another WeasyPrint) stop the render, never draw it wrong."""
    with app.app_context():
        (underlined,) = pdf.run_jobs([("whole", '<p style="text-decoration: underline">Kim</p>')])

        class Parts:  # every run of names as that page
            def get(self, html: str) -> bytes | None:
                return underlined if 'class="part part-names"' in html else None

            def put(self, html: str, data: bytes) -> None:
                pass

        with pytest.raises(pdf.PDFError, match="could not be set in columns: .* other than text"):
            pdf.render_pdf(letter, NAMES, as_of=AS_OF, parts=Parts())


def test_a_letter_without_notes_ends_with_its_last_page_of_names(app):
    text = re.sub(r"\[\^\d\](: .*\n)?", "", LETTER)
    folder = app.config["LETTERS_DIR"]
    (Path(folder) / "no-notes.md").write_text(text, encoding="utf-8")
    with app.app_context():
        data = pdf.render_pdf(load_letter(folder, "no-notes"), NAMES, as_of=AS_OF)
    pages = pdftotext_bytes(data).split("\f")[:-1]
    assert "A/HRC/25/CRP.1" not in "".join(pages)
    assert NAMES[-1] in " ".join(pages[-1].split())  # no blank page after the list
    assert pages[-1].split("\n")[-3].replace(" ", "") == f"{len(pages)}/{len(pages)}"
    text = " ".join(" ".join(pages).split())
    assert [name for name in NAMES if text.count(name) != 1] == []
