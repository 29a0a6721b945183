"""Folding and sorting of signatory names and emails."""

import re
import unicodedata

_SPACES = re.compile(r"\s+")


def fold(text: str) -> str:
    """Fold text for comparison: NFKC, case and runs of white space."""
    # Case folding can undo NFKC (and NFKC can undo folding), hence the sandwich.
    text = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())
    return _SPACES.sub(" ", text).strip()


def fold_email(email: str) -> str:
    """Fold an email so that fullwidth or differently-cased forms compare equal."""
    # Removing spaces can bring a letter and a combining mark together: normalise again.
    return unicodedata.normalize("NFKC", fold(email).replace(" ", ""))


# Letters with a stroke or ligature have no Unicode decomposition; sort them as
# English readers expect (`Đặng` with D, `Øresund` with O).
_BASE_LETTERS = str.maketrans(
    {"đ": "d", "ø": "o", "ł": "l", "ħ": "h", "ı": "i", "æ": "ae", "œ": "oe", "þ": "th"}
)


def _without_accents(folded: str) -> str:
    decomposed = unicodedata.normalize("NFKD", folded.translate(_BASE_LETTERS))
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def sort_key(name: str) -> tuple[str, str, str]:
    """Sort as the real letter does: digits before letters, case-insensitive.

    Accents are ignored first (`Álvarez` sorts with `Alvarez`), then used to
    break ties, so the order is stable and independent of input order.
    """
    folded = fold(name)
    return (_without_accents(folded), folded, name)


_PUNCTUATION = re.compile(r"[^\w\s]", re.UNICODE)
_PARENTHESES = re.compile(r"\(([^()]*)\)")


def _loose(text: str) -> str:
    return " ".join(_PUNCTUATION.sub(" ", fold(text)).split())


def likely_same_keys(name: str, acronym: str = "") -> set[str]:
    """Forms under which two sign-ons are likely the same signer.

    NFKC, case and punctuation are folded, and an acronym counts as a name of
    its own: `Transitional Justice Working Group (TJWG)` meets `TJWG`.
    """
    bare = _loose(_PARENTHESES.sub(" ", name))
    acronyms = [acronym, *_PARENTHESES.findall(name)]
    if len(bare.replace(" ", "")) <= 12:
        acronyms.append(bare)  # a short name may itself be an acronym: `T.J.W.G.`
    keys = {bare} | {_loose(a).replace(" ", "") for a in acronyms}
    return {key for key in keys if key}
