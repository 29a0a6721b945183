"""Join the rendered parts of a long letter into one PDF (pypdf), and number its pages.

Pages of a run of names are paired into two-column pages, links, named
destinations and bookmarks of every part are kept, and the page numbers
"N / M" are set last, with the glyphs WeasyPrint used for the footer.
"""

import io
from dataclasses import dataclass

from pypdf import PdfReader, PdfWriter
from pypdf.generic import (
    ArrayObject,
    ContentStream,
    DecodedStreamObject,
    DictionaryObject,
    EncodedStreamObject,
    Fit,
    IndirectObject,
    NameObject,
    StreamObject,
    TextStringObject,
)


def join(
    parts: list[tuple[str, bytes]], numbers: bytes, *, title: str, author: str | None, lang: str
) -> bytes:
    """One PDF of the parts in order, numbered "N / M"; "names" parts are paired as columns.

    `numbers` is the one-page PDF whose footer shows DIGITS, in the footer's font,
    size, colour and place; each page number is set from its glyphs. The parts'
    named destinations (the note calls link to the notes) and bookmarks are kept.
    """
    writer = PdfWriter()
    destinations: dict[str, ArrayObject] = {}  # a later part's wins: the notes over the body's
    for kind, data in parts:
        reader = PdfReader(io.BytesIO(data))
        pages, first = reader.pages, len(writer.pages)
        step = 2 if kind == "names" else 1
        for i in range(0, len(pages), step):
            page = writer.add_page(pages[i])
            if step == 2 and i + 1 < len(pages):
                _draw(writer, page, _form(writer, pages[i + 1]))
                _add_links(writer, page, pages[i + 1])
        joined = {page.indirect_reference.idnum: first + i // step for i, page in enumerate(pages)}
        destinations.update(_destinations(writer, reader, joined))
        _copy_outline(writer, reader, reader.outline, joined, None)
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
                ctm = _multiply([float(v) for v in operands], ctm)
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
        x, y = _apply(ctm, tm[4], tm[5])
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


def _multiply(m: list[float], n: list[float]) -> list[float]:
    """The matrix product m x n of two PDF matrices [a b c d e f]."""
    a, b, c, d, e, f = m
    p, q, r, s, t, u = n
    return [a * p + b * r, a * q + b * s, c * p + d * r, c * q + d * s,
            e * p + f * r + t, e * q + f * s + u]  # fmt: skip


def _apply(m: list[float], x: float, y: float) -> tuple[float, float]:
    a, b, c, d, e, f = m
    return a * x + c * y + e, b * x + d * y + f


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


def _draw(writer: PdfWriter, page, form) -> None:
    """Draw a form XObject over `page`, after the page's own drawing."""
    resources = DictionaryObject(page["/Resources"])
    xobjects = DictionaryObject(resources.get("/XObject", DictionaryObject()).get_object())
    xobjects[NameObject("/Column")] = form
    resources[NameObject("/XObject")] = xobjects
    page[NameObject("/Resources")] = resources
    _append(writer, page, "q /Column Do Q")


def _append(writer: PdfWriter, page, drawing: str) -> None:
    """Add `drawing` after the page's own, which is wrapped so it leaves no state behind."""
    push = writer._add_object(_stream(b"q\n"))
    pop = writer._add_object(_stream(f"\nQ\n{drawing}\n".encode()))
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
