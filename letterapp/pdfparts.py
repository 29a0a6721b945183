"""Long letters rendered as parts in parallel, then joined into one PDF.

WeasyPrint's `columns: 2` lays every page out twice, and one process does the
whole letter. So a long list is set differently: the letter body, the notes
and runs of names are separate documents, rendered in the worker processes in
parallel and cached each by its own content. A run of names is one narrow
column whose pages alternate between the left and the right column position
(`@page names:right` / `names:left`); joining each pair of pages makes one
two-column page. Page numbers "N / M" are drawn last, over the joined file.

Runs of names start on a page of their own and end where the names say
(`plan`), so one more sign-on changes one run, not every page after it.
"""

import hashlib
import io
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from fontTools.ttLib import TTFont
from pypdf import PdfReader, PdfWriter
from pypdf.generic import (
    ArrayObject,
    DecodedStreamObject,
    DictionaryObject,
    EncodedStreamObject,
    NameObject,
    StreamObject,
    TextStringObject,
)

MM = 72 / 25.4  # points per millimetre


@dataclass(frozen=True)
class Geometry:
    """The page and column sizes of pdf.css, in millimetres."""

    width: float
    height: float
    top: float = 24
    side: float = 22
    bottom: float = 22
    gap: float = 8  # between the columns
    body_margin: float = 8 * 25.4 / 96  # the browser's 8px body margin, kept in print
    font_pt: float = 10.5
    line_height: float = 1.42
    indent: float = 4  # hanging indent of a long name

    @property
    def outer(self) -> float:
        """From the edge of the paper to the text."""
        return self.side + self.body_margin

    @property
    def text_width(self) -> float:
        return self.width - 2 * self.outer

    @property
    def column(self) -> float:
        return (self.text_width - self.gap) / 2

    @property
    def inner(self) -> float:
        """The margin on the far side of one column: the other column and the gap."""
        return self.outer + self.column + self.gap

    @property
    def line_mm(self) -> float:
        return self.font_pt * self.line_height / MM

    @property
    def column_lines(self) -> int:
        # One line short of what fits: the estimate of a name's lines may be short.
        return int((self.height - self.top - self.bottom) / self.line_mm) - 1


GEOMETRY = {"a4": Geometry(210, 297), "letter": Geometry(215.9, 279.4)}

PAIRS_PER_RUN = 4  # two-column pages per run of names: ~270 names, ~0.3 s each
SLACK = 16  # lines: a run may end this much short of full, at a name the hash picks
PICK = 4  # ... one name in PICK


# ---------------------------------------------------------------- the plan


@lru_cache(maxsize=1)
def _advances() -> tuple[dict[int, float], float]:
    """Advance widths (em) of the body font's characters, and the width of a space."""
    try:
        path = subprocess.run(
            ["fc-match", "-f", "%{file}", "Noto Serif"],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        ).stdout
        font = TTFont(path, lazy=True)
    except (OSError, subprocess.SubprocessError):
        return {}, 0.26
    units = font["head"].unitsPerEm
    metrics = font["hmtx"].metrics
    widths = {code: metrics[glyph][0] / units for code, glyph in font.getBestCmap().items()}
    return widths, widths.get(32, 0.26)


def text_width(text: str, font_pt: float) -> float:
    """Width in millimetres, a little generous: other fonts (Hangul, bold) are wider."""
    widths, _ = _advances()
    # A character the body font lacks comes from a CJK font, a full em wide.
    return sum(widths.get(ord(c), 1.0) for c in text) * 1.03 * font_pt / MM


def line_count(text: str, first: float, rest: float, font_pt: float) -> int:
    """Lines of `text` broken at spaces, `first` mm for the first line, then `rest`."""
    space = _advances()[1] * font_pt / MM
    lines, used, width = 1, 0.0, first
    for word in text.split():
        size = text_width(word, font_pt)
        if used and used + space + size > width:
            lines, used, width = lines + 1, 0.0, rest
        used += (space if used else 0) + size
    return lines


def heading_lines(heading: str, geometry: Geometry) -> int:
    return line_count(heading, geometry.text_width, geometry.text_width, geometry.font_pt * 1.08)


def plan(names: list[str], geometry: Geometry, heading: str) -> list[list[str]]:
    """The names in runs, each run filling at most PAIRS_PER_RUN two-column pages.

    A run ends near full at a name whose hash picks it, so the runs after a new
    name start where they did and are found in the cache.
    """
    g = geometry
    capacity = 2 * PAIRS_PER_RUN * g.column_lines
    # The heading (and its margin, ~1 line) takes its height off both columns.
    room = capacity - 2 * (heading_lines(heading, g) + 1)
    runs: list[list[str]] = [[]]
    used = 0
    for name in names:
        lines = line_count(name, g.column, g.column - g.indent, g.font_pt)
        if runs[-1] and used + lines > room:
            runs.append([])
            used, room = 0, capacity
        runs[-1].append(name)
        used += lines
        if used >= room - SLACK and _picked(name):
            runs.append([])
            used, room = 0, capacity
    return [run for run in runs if run]


def _picked(name: str) -> bool:
    return hashlib.sha256(name.encode()).digest()[0] % PICK == 0


# ---------------------------------------------------------------- the join


def numbers_pages(count: int) -> int:
    """Pages of the page-number document for a letter of `count` pages (a few sizes only)."""
    return -(-count // 64) * 64


def join(
    parts: list[tuple[str, bytes]],
    numbers: Callable[[int], tuple[bytes, bytes]],
    *,
    title: str,
    author: str | None,
    lang: str,
) -> bytes:
    """One PDF of the parts in order; "names" parts have their pages paired as columns.

    `numbers(count)` is two PDFs of at least `count` pages whose page i shows
    "i / " left of the middle of the footer, and "i" right of it: page N of
    the result gets page N of the first and page M of the second drawn over it.
    """
    writer = PdfWriter()
    for kind, data in parts:
        pages = PdfReader(io.BytesIO(data)).pages
        step = 2 if kind == "names" else 1
        for i in range(0, len(pages), step):
            page = writer.add_page(pages[i])
            if step == 2 and i + 1 < len(pages):
                _draw(writer, page, "/Column", _form(writer, pages[i + 1]))
                _add_links(writer, page, pages[i + 1])
    count = len(writer.pages)
    numbers_pdf, totals_pdf = numbers(count)
    numbers_pages = PdfReader(io.BytesIO(numbers_pdf)).pages
    totals = PdfReader(io.BytesIO(totals_pdf)).pages
    if min(len(numbers_pages), len(totals)) < count:
        raise ValueError(f"{len(numbers_pages)} page numbers for {count} pages")
    total = _form(writer, totals[count - 1])
    for page, number in zip(writer.pages, numbers_pages, strict=False):
        _draw(writer, page, "/PageNumber", _form(writer, number))
        _draw(writer, page, "/PageCount", total)
    metadata = {"/Title": title, "/Creator": "letterapp"}
    if author:
        metadata["/Author"] = author
    writer.add_metadata(metadata)
    writer.root_object[NameObject("/Lang")] = TextStringObject(lang)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def _form(writer: PdfWriter, page):
    """The drawing of a page as a form XObject of its own resources.

    A form keeps its own resources, so font names of two documents cannot clash.
    """
    form = _form_stream(_contents(page))
    form.update(
        {
            NameObject("/Type"): NameObject("/XObject"),
            NameObject("/Subtype"): NameObject("/Form"),
            NameObject("/BBox"): ArrayObject(page.mediabox),
            NameObject("/Resources"): page["/Resources"].clone(writer),
        }
    )
    return writer._add_object(form)


def _draw(writer: PdfWriter, page, name: str, form) -> None:
    """Draw a form XObject over `page`, after the page's own drawing."""
    resources = DictionaryObject(page["/Resources"])
    xobjects = DictionaryObject(resources.get("/XObject", DictionaryObject()).get_object())
    xobjects[NameObject(name)] = form
    resources[NameObject("/XObject")] = xobjects
    page[NameObject("/Resources")] = resources
    push = writer._add_object(_stream(b"q\n"))
    pop = writer._add_object(_stream(f"\nQ\nq {name} Do Q\n".encode()))
    page[NameObject("/Contents")] = ArrayObject([push, *_contents(page), pop])


def _add_links(writer: PdfWriter, page, other) -> None:
    annots = [a.clone(writer) for a in other.get("/Annots") or []]
    if annots:
        page[NameObject("/Annots")] = ArrayObject([*(page.get("/Annots") or []), *annots])


def _form_stream(contents: list) -> StreamObject:
    """The drawing of a page as one stream, still compressed when it was one stream."""
    if len(contents) == 1:
        source = contents[0].get_object()
        if source.get("/Filter") == "/FlateDecode" and "/DecodeParms" not in source:
            form = EncodedStreamObject()
            form._data = source._data
            form[NameObject("/Filter")] = NameObject("/FlateDecode")
            return form
    return _stream(b"\n".join(c.get_object().get_data() for c in contents)).flate_encode()


def _stream(data: bytes) -> DecodedStreamObject:
    stream = DecodedStreamObject()
    stream.set_data(data)
    return stream


def _contents(page) -> list:
    contents = page.raw_get("/Contents")
    resolved = contents.get_object()
    return list(resolved) if isinstance(resolved, ArrayObject) else [contents]
