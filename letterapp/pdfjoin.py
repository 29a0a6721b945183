"""Join the rendered parts of a long letter into one PDF (pypdf), and number its pages.

The names of the galleys are set in two columns below the body's heading
(pdfflow), links, named destinations and bookmarks of the other parts are
kept, and the page numbers "N / M" are set last, with the glyphs WeasyPrint
used for the footer.
"""

import io
from dataclasses import dataclass

from pypdf import PdfReader, PdfWriter
from pypdf.generic import (
    ArrayObject,
    ContentStream,
    DecodedStreamObject,
    DictionaryObject,
    Fit,
    IndirectObject,
    NameObject,
    TextStringObject,
)

from . import pdfflow
from .pdfparts import MM, Geometry

START = "names-start"  # the body's mark below the heading (templates/pdf/part.html)


def set_out(body: bytes, names: list[bytes], geometry: Geometry) -> pdfflow.Flow:
    """Where the names of the galleys `names` go: from the body's mark START on."""
    top = PdfReader(io.BytesIO(body)).named_destinations[START].top
    galleys = [page for data in names for page in PdfReader(io.BytesIO(data)).pages]
    return pdfflow.flow(galleys, float(top), geometry)


def notes_space(names: pdfflow.Flow, geometry: Geometry) -> float:
    """The room the notes part leaves at the top of its first page for the names (points).

    The notes follow the list on its last page, as in a letter rendered whole:
    the join draws the last page's names in that room. When the list ends on
    the heading's page (a short list), the notes start a page of their own.
    """
    if len(names.pages) == 1:
        return 0.0
    # The room starts below the body's margin and never runs into the footer.
    room = (geometry.height - geometry.top - geometry.bottom - geometry.body_margin) * MM
    return max(0.0, min(names.depth - geometry.body_margin * MM, room))


def join(
    body: bytes,
    names: pdfflow.Flow,
    notes: bytes | None,
    numbers: bytes,
    *,
    title: str,
    author: str | None,
    lang: str,
) -> bytes:
    """One PDF of the body, the names and the notes, numbered "N / M".

    The names are set as `set_out` placed them, and the notes part (rendered
    with `notes_space` above it) shares the list's last page. `numbers` is the
    one-page PDF whose footer shows DIGITS, in the footer's font, size, colour
    and place; each page number is set from its glyphs. The parts' named
    destinations (the note calls link to the notes) and bookmarks are kept.
    """
    writer = PdfWriter()
    destinations: dict[str, ArrayObject] = {}  # a later part's wins: the notes over the body's
    _add_part(writer, body, destinations)
    heading = destinations.pop(START)[0].get_object()
    box = heading.mediabox
    pages = [heading, *(writer.add_blank_page(box.width, box.height) for _ in names.pages[1:-1])]
    notes_start = len(writer.pages)
    if notes:
        _add_part(writer, notes, destinations)
    if len(names.pages) > 1:  # the list's last page: the notes part left room at its top
        last = writer.pages[notes_start] if notes else writer.add_blank_page(box.width, box.height)
        pages.append(last)
    for page, slices in zip(pages, names.pages, strict=True):
        # After the body on the heading's page, before the notes on the page they
        # share: text extraction that follows the drawing order (pypdf) reads them so.
        _draw_names(writer, page, slices, first=page is not heading)
    if destinations:
        flat = ArrayObject()
        for name, target in sorted(destinations.items()):
            flat += [TextStringObject(name), target]
        dests = DictionaryObject({NameObject("/Names"): flat})
        writer.root_object[NameObject("/Names")] = DictionaryObject({NameObject("/Dests"): dests})
    footer = Footer.read(numbers, writer)
    for number, page in enumerate(writer.pages, start=1):
        footer.draw(writer, page, f"{number} / {len(writer.pages)}")
    metadata = {"/Title": title, "/Creator": "letterapp"}
    if author:
        metadata["/Author"] = author
    writer.add_metadata(metadata)
    writer.root_object[NameObject("/Lang")] = TextStringObject(lang)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def _add_part(writer: PdfWriter, data: bytes, destinations: dict) -> None:
    """The pages of one part, with its named destinations and bookmarks."""
    reader = PdfReader(io.BytesIO(data))
    first = len(writer.pages)
    for page in reader.pages:
        writer.add_page(page)
    joined = {page.indirect_reference.idnum: first + i for i, page in enumerate(reader.pages)}
    destinations.update(_destinations(writer, reader, joined))
    _copy_outline(writer, reader, reader.outline, joined, None)


def _draw_names(writer: PdfWriter, page, slices: list[pdfflow.Slice], first: bool) -> None:
    """Draw the slices of names on `page`, each a form XObject, after what the
    page holds or `first`."""
    resources = DictionaryObject(page.get("/Resources", DictionaryObject()))
    xobjects = DictionaryObject(resources.get("/XObject", DictionaryObject()).get_object())
    drawing = []
    for k, piece in enumerate(slices):
        name = f"/LetterappNames{k}"
        xobjects[NameObject(name)] = _form(writer, piece)
        drawing.append(f"q {name} Do Q")
    resources[NameObject("/XObject")] = xobjects
    page[NameObject("/Resources")] = resources
    _append(writer, page, "\n".join(drawing), first=first)


def _form(writer: PdfWriter, piece: pdfflow.Slice) -> IndirectObject:
    """A slice of a galley page as a form XObject of that page's resources.

    A form keeps its own resources, so font names of two documents cannot clash.
    """
    form = _stream(piece.content).flate_encode()
    form.update(
        {
            NameObject("/Type"): NameObject("/XObject"),
            NameObject("/Subtype"): NameObject("/Form"),
            NameObject("/BBox"): ArrayObject(piece.page.mediabox),
            NameObject("/Resources"): piece.page["/Resources"].clone(writer),
        }
    )
    return writer._add_object(form)


def _destinations(writer: PdfWriter, reader: PdfReader, joined: dict) -> list[tuple]:
    """The named destinations of one part (link targets), on its pages in the joined file."""
    names = reader.trailer["/Root"].get("/Names", DictionaryObject()).get("/Dests", {})
    flat = list(names.get("/Names", []))
    found = []
    for name, target in zip(flat[::2], flat[1::2], strict=True):
        place = target.get_object()
        page = writer.pages[joined[place[0].idnum]]
        found.append((str(name), ArrayObject([page.indirect_reference, *place[1:]])))
    return found


def _copy_outline(writer: PdfWriter, reader: PdfReader, items: list, joined: dict, parent) -> None:
    """The bookmarks of one part, pointing at its pages in the joined file."""
    last = parent
    for item in items:
        if isinstance(item, list):
            _copy_outline(writer, reader, item, joined, last)
            continue
        number = joined[item.page.idnum]
        fit = Fit.xyz(item.left, item.top)
        last = writer.add_outline_item(title=item.title, page_number=number, parent=parent, fit=fit)


DIGITS = "0123456789 /"  # the footer of the "numbers" page, templates/pdf/part.html


@dataclass
class Footer:
    """Where and how WeasyPrint set the footer, to set page numbers the same way."""

    font: IndirectObject  # in the joined file
    size: float  # points
    colour: list
    centre: float
    baseline: float
    glyphs: dict[str, tuple[bytes, float]]  # character: (code, advance in points)

    @classmethod
    def read(cls, numbers: bytes, writer: PdfWriter) -> "Footer":
        page = PdfReader(io.BytesIO(numbers)).pages[0]
        ctm, colour, tm, font, size, codes = [1, 0, 0, 1, 0, 0], [0, 0, 0], None, None, 0, b""
        for operands, operator in ContentStream(page.get_contents(), page.pdf).operations:
            if operator == b"cm":
                ctm = pdfflow.multiply([float(v) for v in operands], ctm)
            elif operator == b"rg":
                colour = operands
            elif operator == b"Tm":
                tm = [float(v) for v in operands]
            elif operator == b"Tf":
                font, size = operands[0], float(operands[1])
            elif operator == b"TJ":
                codes = b"".join(
                    p.original_bytes for p in operands[0] if hasattr(p, "original_bytes")
                )
        if tm is None or len(codes) != 2 * len(DIGITS):
            raise ValueError("the page-number template drew no footer of DIGITS")
        x, y = pdfflow.apply(ctm, tm[4], tm[5])
        size *= abs(tm[3] * ctm[3])
        font_ref = page["/Resources"]["/Font"].get_object().raw_get(font)
        widths = _widths(font_ref.get_object()["/DescendantFonts"][0].get_object()["/W"])
        glyphs = {}
        for i, char in enumerate(DIGITS):
            code = codes[2 * i : 2 * i + 2]
            glyphs[char] = (code, widths.get(int.from_bytes(code, "big"), 0) / 1000 * size)
        centre = x + sum(width for _, width in glyphs.values()) / 2
        return cls(font_ref.clone(writer), size, colour, centre, y, glyphs)

    def draw(self, writer: PdfWriter, page, text: str) -> None:
        resources = DictionaryObject(page["/Resources"])
        fonts = DictionaryObject(resources.get("/Font", DictionaryObject()).get_object())
        fonts[NameObject("/PageNumber")] = self.font
        resources[NameObject("/Font")] = fonts
        page[NameObject("/Resources")] = resources
        code = b"".join(self.glyphs[c][0] for c in text).hex()
        left = self.centre - sum(self.glyphs[c][1] for c in text) / 2
        r, g, b = (float(v) for v in self.colour)
        _append(
            writer,
            page,
            f"q {r:g} {g:g} {b:g} rg BT /PageNumber {self.size:g} Tf "
            f"{left:.3f} {self.baseline:.3f} Td <{code}> Tj ET Q",
        )


def _widths(array) -> dict[int, float]:
    """Glyph widths from a CID font's /W array: `first [w ...]` or `first last w`."""
    widths: dict[int, float] = {}
    items, i = list(array), 0
    while i < len(items):
        first = int(items[i])
        if isinstance(items[i + 1], ArrayObject):
            widths.update((first + k, float(w)) for k, w in enumerate(items[i + 1]))
            i += 2
        else:
            widths.update((gid, float(items[i + 2])) for gid in range(first, int(items[i + 1]) + 1))
            i += 3
    return widths


def _append(writer: PdfWriter, page, drawing: str, first: bool = False) -> None:
    """Add `drawing` after the page's own, which is wrapped so it leaves no state
    behind; or before it, `first`, wrapped itself."""
    if first:
        ahead = writer._add_object(_stream(f"q\n{drawing}\nQ\n".encode()))
        page[NameObject("/Contents")] = ArrayObject([ahead, *_contents(page)])
        return
    push = writer._add_object(_stream(b"q\n"))
    pop = writer._add_object(_stream(f"\nQ\n{drawing}\n".encode()))
    page[NameObject("/Contents")] = ArrayObject([push, *_contents(page), pop])


def _stream(data: bytes) -> DecodedStreamObject:
    stream = DecodedStreamObject()
    stream.set_data(data)
    return stream


def _contents(page) -> list:
    if "/Contents" not in page:
        return []  # a new page
    contents = page.raw_get("/Contents")
    resolved = contents.get_object()
    return list(resolved) if isinstance(resolved, ArrayObject) else [contents]
