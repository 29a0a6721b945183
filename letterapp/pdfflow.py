"""Set the names of a long letter in two columns, cut from the galleys they were rendered on.

A run of names (pdfparts.py) is rendered as a galley: one column of names a
page, at the left column's place. Here each name is found on its galley page
and the names are set again: down the left column, then the right, from below
the heading on the letter's last page on to as many pages as they need, the
columns of the last page balanced. A name is never split, and the text stays
text: each column's names are a slice of their galley page's own drawing,
shifted into place (pdfjoin draws each slice as a form XObject).

WeasyPrint 70 draws a galley page as a few graphics-state operators, then one
text object with an absolute text matrix (`Tm`) per line; anything else is
refused with FlowError rather than drawn wrong.
"""

import re
from dataclasses import dataclass

from pypdf import PageObject

from .pdfparts import MM, Geometry

# The right column sits this much lower (points): text extraction (pdftotext)
# reads the higher column first, and a line of Hangul sits ~0.5pt lower than Latin.
LOWER = 0.35 * MM
FIT = 0.5  # points a full column may overrun by rounding

_PAGE = re.compile(
    rb"(?P<prefix>(?:(?:q|[^\n]* (?:cm|gs|rg|RG))\n)*)BT\n(?P<text>.*?)ET\n(?P<suffix>(?:Q\s*)*)\Z",
    re.DOTALL,
)
_CM = re.compile(rb"^([-\d.]+) ([-\d.]+) ([-\d.]+) ([-\d.]+) ([-\d.]+) ([-\d.]+) cm$", re.MULTILINE)
_TM = re.compile(rb"1 0 0 -1 ([-\d.]+) ([-\d.]+) Tm")
_TEXT_OPERATORS = {b"Tm", b"Tf", b"TJ", b"Tj"}


class FlowError(ValueError):
    """A galley page is drawn in a way the names cannot be cut from."""


@dataclass
class Galley:
    """One galley page, its drawing split around its one text object."""

    page: PageObject
    prefix: bytes  # graphics state: the user space and the colour of the text
    text: bytes  # the lines, between BT and ET
    suffix: bytes


@dataclass
class Name:
    """One name's lines on its galley page."""

    galley: Galley
    start: int  # in galley.text
    end: int
    font: bytes  # the font operator in force at `start`
    baseline: float  # of its first line, points from the bottom of the page
    height: float  # points, to where the next name starts


@dataclass
class Slice:
    """Names cut from one galley page: its drawing of them, shifted into place."""

    page: PageObject
    content: bytes


@dataclass
class Flow:
    """Where the names go: the slices to draw on each page, the heading's page first."""

    pages: list[list[Slice]]
    depth: float  # how far the names reach down the last page, points below its top margin


def flow(pages: list[PageObject], top: float, geometry: Geometry) -> Flow:
    """The names of the galley `pages` set from `top` points above the foot of
    the heading's page, then on new pages.
    """
    height = float(pages[0].mediabox.height) if pages else 0.0
    margin = height - geometry.top * MM
    found = [on_page for page in pages if (on_page := _names(page, geometry))]
    if not found:
        return Flow([[]], margin - top)
    names = [name for on_page in found for name in on_page]
    # Where a line box starts above its baseline: on a galley page the first
    # name's line box starts at the top margin (Latin lines sit highest).
    above = min(margin - on_page[0].baseline for on_page in found)
    columns = _columns([n.height for n in names], top, geometry, height)
    right = (geometry.column + geometry.gap) * MM
    result = []
    for page in columns:
        slices, ends = [], []
        for column, (column_top, indexes) in enumerate(page):
            cursor, dx = column_top - column * LOWER, column * right
            for group in _by_galley([names[i] for i in indexes]):
                first = group[0]
                slices.append(_slice(group, dx, cursor - (first.baseline + above)))
                cursor -= sum(n.height for n in group)
            ends.append(cursor)
        result.append(slices)
    return Flow(result, margin - min(ends))


def _columns(heights: list[float], top: float, geometry: Geometry, page_height: float):
    """Pages of two columns, each (top, indexes of its names), filled in order:
    a column takes names while they fit, and the last page is balanced.
    """
    bottom = geometry.bottom * MM
    full_top = page_height - geometry.top * MM
    pages = [[(top, []), (top, [])]]
    column, used = 0, 0.0
    for i, height in enumerate(heights):
        while used + height > pages[-1][column][0] - bottom + FIT:
            if column == 0:
                column = 1
            elif pages[-1][0][0] == full_top and not pages[-1][0][1]:
                raise FlowError("a name is taller than a column")
            else:
                pages.append([(full_top, []), (full_top, [])])
                column = 0
            used = 0.0
        pages[-1][column][1].append(i)
        used += height
    _balance(pages[-1], heights, bottom)
    return pages


def _balance(page: list, heights: list[float], bottom: float) -> None:
    """Share the names of the last page out evenly, the left column no shorter
    than the right (as CSS balances columns), if the left column has room.
    """
    (top, left), (_, right) = page
    indexes = left + right
    half, taken, k = sum(heights[i] for i in indexes) / 2, 0.0, 0
    while taken < half:
        taken += heights[indexes[k]]
        k += 1
    if taken <= top - bottom + FIT:
        page[0] = (top, indexes[:k])
        page[1] = (top, indexes[k:])


def _by_galley(names: list[Name]) -> list[list[Name]]:
    groups: list[list[Name]] = []
    for name in names:
        if groups and groups[-1][-1].galley is name.galley:
            groups[-1].append(name)
        else:
            groups.append([name])
    return groups


def _slice(names: list[Name], dx: float, dy: float) -> Slice:
    galley = names[0].galley
    text = galley.text[names[0].start : names[-1].end]
    # The shift is part of the drawing, so text extraction sees where the names are.
    shift = f"1 0 0 1 {dx:.3f} {dy:.3f} cm\n".encode()
    content = shift + galley.prefix + b"BT\n" + names[0].font + text + b"ET\n" + galley.suffix
    return Slice(galley.page, content)


def _names(page: PageObject, geometry: Geometry) -> list[Name]:
    """The names on one galley page, each with where its lines are in the drawing."""
    contents = page.get_contents()
    data = contents.get_data() if contents is not None else b""
    if b"BT\n" not in data:
        return []  # a blank page
    match = _PAGE.match(data)
    if not match:
        raise FlowError("a page of names has drawing other than text")
    galley = Galley(page, match["prefix"], match["text"], match["suffix"])
    ctm = [1.0, 0, 0, 1, 0, 0]
    for found in _CM.finditer(galley.prefix):
        ctm = multiply([float(v) for v in found.groups()], ctm)
    lines = _lines(galley.text)
    # A name's first line starts at the left edge; the lines of a long name after
    # it are indented (the hanging indent of pdf.css).
    left = min(x for _, x, _, _ in lines)
    starts = [line for line in lines if line[1] < left + 1]
    names = []
    for (start, _, y, font), after in zip(starts, [*starts[1:], None], strict=True):
        baseline = apply(ctm, 0, y)[1]
        if after:
            end, height = after[0], baseline - apply(ctm, 0, after[2])[1]
        else:
            last = apply(ctm, 0, lines[-1][2])[1]
            end, height = len(galley.text), baseline - last + geometry.line_mm * MM
        names.append(Name(galley, start, end, font, baseline, height))
    return names


def _lines(text: bytes) -> list[tuple[int, float, float, bytes]]:
    """Each line of a text object: (offset of its Tm, x, y, the font in force there)."""
    lines: list[tuple[int, float, float, bytes]] = []
    font, offset = b"", 0
    for row in text.splitlines(keepends=True):
        operator = row.rstrip().rsplit(b" ", 1)[-1]
        if operator not in _TEXT_OPERATORS:
            raise FlowError(f"a page of names uses the text operator {operator[:20]!r}")
        if operator == b"Tm":
            found = _TM.fullmatch(row.rstrip())
            if not found:
                raise FlowError("a page of names has a rotated or scaled line")
            x, y = float(found[1]), float(found[2])
            # Runs of one line (a change of script) share its baseline.
            if not lines or abs(y - lines[-1][2]) > 1:
                lines.append((offset, x, y, font))
            else:
                start, x0, y0, font0 = lines[-1]
                lines[-1] = (start, min(x, x0), y0, font0)
        elif operator == b"Tf":
            font = row
        offset += len(row)
    if not lines:
        raise FlowError("a page of names has text without lines")
    return lines


def multiply(m: list[float], n: list[float]) -> list[float]:
    """The matrix product m x n of two PDF matrices [a b c d e f]."""
    a, b, c, d, e, f = m
    p, q, r, s, t, u = n
    return [a * p + b * r, a * q + b * s, c * p + d * r, c * q + d * s,
            e * p + f * r + t, e * q + f * s + u]  # fmt: skip


def apply(m: list[float], x: float, y: float) -> tuple[float, float]:
    """The point (x, y) of the user space `m`, in the space `m` maps to."""
    a, b, c, d, e, f = m
    return a * x + c * y + e, b * x + d * y + f
