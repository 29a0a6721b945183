"""Long letters rendered as parts in parallel, then joined into one PDF.

WeasyPrint's `columns: 2` lays every page out twice, and one process does the
whole letter. So a long list is set differently: the letter body (ending with
the list's heading), the notes and runs of names are separate documents,
rendered in the worker processes in parallel and cached each by its own
content. A run of names is a galley, one column of names a page; the join
(`pdfjoin`, `pdfflow`) sets the names again in two columns from below the
heading, and the page numbers "N / M" last, over the joined file.

Runs of names end where the names say (`plan`), so one more sign-on changes
one run, not every run after it.
"""

import hashlib
import subprocess
from dataclasses import dataclass
from functools import lru_cache

from fontTools.ttLib import TTFont

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

PAGES_PER_RUN = 12  # galley pages (columns) per run of names: ~900 names, ~0.5 s of CPU each
SLACK = 40  # lines: a run may end this much short of full, at a name the hash picks
PICK = 8  # ... one name in PICK (measured: one more name changes 1.08 runs on average)
SURE_FIT = 0.9  # of the column: a name estimated narrower is set without line breaking


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


def plan(names: list[str], geometry: Geometry) -> list[list[tuple[str, bool]]]:
    """The names in runs, each run filling at most PAGES_PER_RUN galley pages.

    A run ends near full at a name whose hash picks it, so the runs after a new
    name start where they did and are found in the cache. Each name comes with
    whether it surely fits on one line: WeasyPrint sets such a line ~20 % faster
    when it need not look for breaks (`blocks`, `white-space: pre`).
    """
    g = geometry
    capacity = PAGES_PER_RUN * g.column_lines
    runs: list[list[tuple[str, bool]]] = [[]]
    used = 0
    for name in names:
        lines = line_count(name, g.column, g.column - g.indent, g.font_pt)
        if runs[-1] and used + lines > capacity:
            runs.append([])
            used = 0
        runs[-1].append((name, text_width(name, g.font_pt) < SURE_FIT * g.column))
        used += lines
        if used >= capacity - SLACK and _picked(name):
            runs.append([])
            used = 0
    return [run for run in runs if run]


def blocks(run: list[tuple[str, bool]]) -> list[tuple[bool, list[str]]]:
    """The names of a run as blocks: (True, [one name]) for a name that may wrap,
    (False, names) for consecutive names that surely fit one line each.

    The second kind is set as one block, a line per name (`white-space: pre`):
    one element instead of one per name costs WeasyPrint less styling and
    layout (measured: ~9 % fewer instructions for a run).
    """
    found: list[tuple[bool, list[str]]] = []
    for name, one_line in run:
        # A name with a line break or a run of spaces is never set preformatted.
        if one_line and " ".join(name.split()) == name:
            if found and not found[-1][0]:
                found[-1][1].append(name)
            else:
                found.append((False, [name]))
        else:
            found.append((True, [name]))
    return found


def _picked(name: str) -> bool:
    return hashlib.sha256(name.encode()).digest()[0] % PICK == 0
