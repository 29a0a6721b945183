"""Long PDFs are made by a background job, so that no web worker waits for them.

A letter with a short list renders in about a second, in the request. A long
one (from `pdf.PARTS_FROM` names) can take several seconds when nothing of it
is cached yet: the request starts a job and answers with a page that reloads
itself until the PDF is in the cache (`pdfcache`). A render that fails leaves
its message in the cache folder, shown instead of starting again and again,
until a coordinator asks for another try or the list changes.
"""

from contextlib import suppress
from datetime import date

from flask import current_app

from . import jobs, pdfcache, signatures
from .letters import Letter, load_letter, translate
from .pdf import PARTS_FROM, PDFError


def pdf_or_start(
    letter: Letter, *, as_of: date, notes: str = "endnotes", paper: str = "a4"
) -> bytes | None:
    """The PDF when cached or quick to make, else None while a job makes it.

    `letter` is in the language wanted. Raises PDFError when the render failed
    (now, or in an earlier job, see `forget_failure`).
    """
    names = signatures.approved_names(letter, as_of)
    options = {"as_of": as_of, "notes": notes, "paper": paper}
    if len(names) < PARTS_FROM:
        return pdfcache.get_pdf(letter, names, **options)
    return _cached_or_started(letter, names, options)


def prepare(letter: Letter) -> None:
    """Start the usual export of a long list in the background, if not cached yet.

    The export page calls this as it opens, with the options it offers first
    (today's list, endnotes, A4, the letter's own language), so the PDF is
    usually ready by the time the coordinator asks for it. A failure is kept
    for the export page to show.
    """
    as_of = letter.today()
    names = signatures.approved_names(letter, as_of)
    if len(names) >= PARTS_FROM:
        with suppress(PDFError):
            _cached_or_started(letter, names, {"as_of": as_of, "notes": "endnotes", "paper": "a4"})


def _cached_or_started(letter: Letter, names: list[str], options: dict) -> bytes | None:
    if (data := pdfcache.lookup(letter, names, **options)) is not None:
        return data
    if pdfcache.claim_job(letter, names, **options):
        as_of, notes, paper = options["as_of"].isoformat(), options["notes"], options["paper"]
        jobs.enqueue("letterapp.exports.render", letter.slug, letter.language, as_of, notes, paper)
    return None


def render(slug: str, language: str, as_of: str, notes: str, paper: str) -> None:
    """The job: render the letter's PDF into the cache (a failure is kept there too)."""
    letter = translate(load_letter(current_app.config["LETTERS_DIR"], slug), language)
    day = date.fromisoformat(as_of)
    names = signatures.approved_names(letter, day)
    pdfcache.get_pdf(letter, names, as_of=day, notes=notes, paper=paper)


def forget_failure(
    letter: Letter, *, as_of: date, notes: str = "endnotes", paper: str = "a4"
) -> None:
    """Let the next request try a failed render again."""
    names = signatures.approved_names(letter, as_of)
    pdfcache.forget_failure(letter, names, as_of=as_of, notes=notes, paper=paper)
