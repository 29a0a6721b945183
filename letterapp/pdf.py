"""The exported letter as PDF, rendered by WeasyPrint from `templates/pdf/letter.html`."""

import logging
import mimetypes
from datetime import date
from pathlib import Path

from flask import current_app, render_template
from weasyprint import HTML
from weasyprint.urls import FatalURLFetchingError, URLFetcher, URLFetcherResponse

from .fonts import missing_glyphs
from .letters import Letter
from .markup import render_body

log = logging.getLogger(__name__)

# A real https base: WeasyPrint silently drops relative stylesheets under a
# custom scheme. The `.invalid` domain can never resolve; the fetcher maps it.
BASE_URL = "https://letterapp.invalid/"
PAPERS = {"a4": "A4", "letter": "letter"}
TWO_COLUMNS_FROM = 40  # names; fewer read better as one list


class PDFError(Exception):
    """The letter cannot be exported as it stands; the message says why."""


class StaticFetcher(URLFetcher):
    """Serve only the app's own static files; refuse every other URL.

    A letter must never make the server read its files or reach the network.
    """

    def __init__(self, static_dir: str | Path):
        super().__init__(allowed_protocols={"https"}, allow_redirects=False)
        self.static_dir = Path(static_dir).resolve()

    def fetch(self, url, headers=None):
        prefix = BASE_URL + "static/"
        if url.startswith(prefix):
            path = (self.static_dir / url.removeprefix(prefix).split("?")[0]).resolve()
            if path.is_relative_to(self.static_dir) and path.is_file():
                content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
                return URLFetcherResponse(url, path.read_bytes(), {"Content-Type": content_type})
        log.warning("refused to fetch %.200s while rendering a PDF", url)
        raise FatalURLFetchingError(f"refused to fetch {url[:200]}")


def letter_html(
    letter: Letter,
    names: list[str],
    *,
    as_of: date,
    notes: str = "endnotes",
    paper: str = "a4",
) -> str:
    """The print HTML of a letter with its sorted signatory names."""
    return render_template(
        "pdf/letter.html",
        letter=letter,
        body=render_body(letter.body, notes),
        names=names,
        as_of=as_of,
        notes_style=notes,
        paper=PAPERS[paper],
        two_columns_from=TWO_COLUMNS_FROM,
    )


def check_printable(letter: Letter, names: list[str]) -> list[str]:
    """One message per name or letter text with characters no installed font can draw."""
    problems = []
    for name in names:
        if missing := missing_glyphs(name):
            problems.append(f"{name!r}: no installed font can draw {_describe(missing)}")
    texts = (letter.title, letter.re, letter.salutation, letter.closing,
             letter.signatories_heading, letter.coalition, letter.body, *letter.addressee,
             *letter.attn)  # fmt: skip
    if missing := missing_glyphs("".join(texts)):
        problems.append(f"the letter text: no installed font can draw {_describe(missing)}")
    return problems


def _describe(chars: str) -> str:
    return ", ".join(f"{c} (U+{ord(c):04X})" for c in chars)


def render_pdf(
    letter: Letter,
    names: list[str],
    *,
    as_of: date,
    notes: str = "endnotes",
    paper: str = "a4",
) -> bytes:
    """Render the letter to PDF bytes; raise PDFError if a name cannot be drawn."""
    if problems := check_printable(letter, names):
        raise PDFError("; ".join(problems))
    html = letter_html(letter, names, as_of=as_of, notes=notes, paper=paper)
    fetcher = StaticFetcher(current_app.static_folder)
    return HTML(string=html, base_url=BASE_URL, url_fetcher=fetcher).write_pdf()
