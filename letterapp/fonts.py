"""Which characters the installed fonts can draw, so no name prints as empty boxes.

WeasyPrint draws a character that no font covers as a blank box and logs
nothing, so names are checked against fontconfig's coverage before export.
"""

import bisect
import subprocess
import unicodedata
from functools import lru_cache


@lru_cache(maxsize=1)
def _coverage() -> tuple[list[int], list[int]]:
    """Merged (starts, ends) of the code point ranges that some installed font covers."""
    try:
        output = subprocess.run(
            ["fc-list", "--format", "%{charset}\n"],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout
    except FileNotFoundError:
        raise RuntimeError(
            "fc-list not found: install fontconfig (apt-get install fontconfig)"
        ) from None
    ranges = []
    for token in output.split():
        first, _, last = token.partition("-")
        ranges.append((int(first, 16), int(last or first, 16)))
    starts: list[int] = []
    ends: list[int] = []
    for start, end in sorted(ranges):
        if ends and start <= ends[-1] + 1:
            ends[-1] = max(ends[-1], end)
        else:
            starts.append(start)
            ends.append(end)
    return starts, ends


def _drawable(char: str) -> bool:
    if char.isspace() or unicodedata.category(char) == "Cf":
        return True  # spaces and joiners have no glyph of their own
    starts, ends = _coverage()
    index = bisect.bisect_right(starts, ord(char)) - 1
    return index >= 0 and ord(char) <= ends[index]


def missing_glyphs(text: str) -> str:
    """The distinct characters of `text` that no installed font can draw, in order."""
    return "".join(dict.fromkeys(c for c in text if not _drawable(c)))
