"""The exported letter as PDF, rendered by WeasyPrint from `templates/pdf/letter.html`."""

import gc
import logging
import mimetypes
import multiprocessing
import os
import re
import resource
import threading
import time
from collections.abc import Iterable
from concurrent.futures import CancelledError, ProcessPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures.process import BrokenProcessPool
from datetime import date
from pathlib import Path
from typing import Protocol

from flask import current_app, render_template
from flask_babel import force_locale
from flask_babel import gettext as _
from weasyprint import HTML
from weasyprint.urls import FatalURLFetchingError, URLFetcher, URLFetcherResponse

from . import pdfflow, pdfjoin, pdfparts
from .fonts import missing_glyphs
from .letters import Letter
from .markup import render_body

log = logging.getLogger(__name__)

# A real https base: WeasyPrint silently drops relative stylesheets under a
# custom scheme. The `.invalid` domain can never resolve; the fetcher maps it.
BASE_URL = "https://letterapp.invalid/"
PAPERS = {"a4": "A4", "letter": "letter"}
TWO_COLUMNS_FROM = 40  # names; fewer read better as one list
PARTS_FROM = 200  # names; a longer list is rendered in parts (pdfparts.py), in parallel


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
    """The print HTML of a letter with its sorted signatory names, in the letter's language."""
    with _in_letters_language(letter):
        return render_template(
            "pdf/letter.html",
            letter=letter,
            body=render_body(letter.body, notes),
            names=names,
            heading=signatories_heading(letter, as_of),
            notes_style=notes,
            paper=PAPERS[paper],
            two_columns_from=TWO_COLUMNS_FROM,
        )


def _in_letters_language(letter: Letter):
    """A context where the PDF's own words ("ATTN:", the "as of" date) follow the letter."""
    return force_locale(letter.language.replace("-", "_"))


def signatories_heading(letter: Letter, as_of: date) -> str:
    """The heading above the names, with the date the list stands at."""
    as_of_text = current_app.jinja_env.filters["letter_date"](as_of, letter)
    with _in_letters_language(letter):
        return _(
            "%(heading)s (as of %(date)s)", heading=letter.signatories_heading, date=as_of_text
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


class PartCache(Protocol):
    """Where rendered parts are kept (pdfcache.PartCache), found by their HTML."""

    def get(self, html: str) -> bytes | None: ...

    def put(self, html: str, data: bytes) -> None: ...


def render_pdf(
    letter: Letter,
    names: list[str],
    *,
    as_of: date,
    notes: str = "endnotes",
    paper: str = "a4",
    parts: PartCache | None = None,
) -> bytes:
    """Render the letter to PDF bytes; raise PDFError if it cannot be made.

    WeasyPrint runs in worker processes with a time and a memory limit
    (`PDF_TIMEOUT`, `PDF_MEMORY_MB`), so a pathological letter costs an error
    message, never the web worker. A long list with endnotes is rendered in
    parts, taken from `parts` when already rendered.
    """
    try:
        if notes == "endnotes" and len(names) >= PARTS_FROM:
            return _render_in_parts(letter, names, as_of=as_of, paper=paper, cache=parts)
        _check_printable(letter, names)
        html = letter_html(letter, names, as_of=as_of, notes=notes, paper=paper)
    except RecursionError:
        raise PDFError(TOO_DEEP) from None
    (data,) = run_jobs([("whole", html)])
    return data


def _check_printable(letter: Letter, names: list[str]) -> None:
    if problems := check_printable(letter, names):
        raise PDFError("; ".join(problems))


def _render_in_parts(
    letter: Letter, names: list[str], *, as_of: date, paper: str, cache: PartCache | None
) -> bytes:
    """The body and runs of names rendered in parallel, then the notes below the list, joined."""
    geometry = pdfparts.GEOMETRY[paper]
    body = render_body(letter.body, "endnotes")
    heading = signatories_heading(letter, as_of)

    def html(kind: str, **context) -> str:
        with _in_letters_language(letter):
            return render_template(
                "pdf/part.html", kind=kind, letter=letter, body=body, paper=PAPERS[paper],
                geometry=geometry, **context,
            )  # fmt: skip

    def documents():
        # The parts that do not depend on the names go to the workers first, so
        # they start while the names are checked and planned here.
        # The body part holds empty targets for its note calls, so WeasyPrint keeps
        # them as links; the join points them at the notes part. It ends with the
        # list's heading, below which the join sets the names.
        note_ids = re.findall(r'<li id="([^"]+)"', body.notes or "")
        yield html("body", note_ids=note_ids, heading=heading)
        yield html("numbers")  # the footer's glyphs, from which the page numbers are set
        _check_printable(letter, names)
        for run in pdfparts.plan(names, geometry):
            yield html("names", blocks=pdfparts.blocks(run))

    first, numbers, *runs = _cached_jobs(documents(), cache)
    try:
        placed = pdfjoin.set_out(first, runs, geometry)
    except pdfflow.FlowError as error:
        raise PDFError(f"the names could not be set in columns: {error}") from None
    notes = None
    if body.notes:
        # Only now is it known how far down its last page the list reaches.
        space = pdfjoin.notes_space(placed, geometry)
        (notes,) = _cached_jobs([html("notes", space=space)], cache)
    return pdfjoin.join(
        first, placed, notes, numbers,
        title=letter.title, author=letter.coalition, lang=letter.language,
    )  # fmt: skip


def _cached_jobs(documents: Iterable[str], cache: PartCache | None) -> list[bytes]:
    """Each HTML as PDF, in order: from the cache, or rendered (the missing ones in parallel).

    A missing document goes to a worker as soon as `documents` yields it.
    """
    made: list[tuple[str, bytes | None]] = []

    def missing():
        for html in documents:
            made.append((html, cache.get(html) if cache else None))
            if made[-1][1] is None:
                yield ("whole", html)

    rendered = iter(run_jobs(missing()))
    found = []
    for html, cached in made:
        data = cached or next(rendered)
        if cache and cached is None:
            cache.put(html, data)
        found.append(data)
    return found


# ---------------------------------------------------------------- worker processes
#
# A small pool of warm worker processes does the WeasyPrint work. Importing
# WeasyPrint and loading the fonts costs ~0.7 s, so workers outlive one render;
# they come from a fork server that has already imported this module.

TOO_DEEP = (
    "the letter is nested too deeply to be laid out (RecursionError): "
    "simplify its quotations or lists"
)
WORKERS = 2  # the machines have two cores
TASKS_PER_WORKER = 500  # then a fresh process, so memory cannot creep up (a part is a task)


class _Workers:
    """The pool of worker processes, made on first use and remade after a failure."""

    def __init__(self):
        self.pool: ProcessPoolExecutor | None = None
        self.memory_mb: int | None = None
        self.lock = threading.Lock()

    def get(self, memory_mb: int) -> ProcessPoolExecutor:
        with self.lock:
            if self.pool is None or self.memory_mb != memory_mb:
                if self.pool is not None:
                    self._discard(self.pool)
                context = multiprocessing.get_context("forkserver")
                context.set_forkserver_preload([__name__])
                self.pool = ProcessPoolExecutor(
                    max_workers=WORKERS,
                    mp_context=context,
                    initializer=_init_worker,
                    initargs=(memory_mb,),
                    max_tasks_per_child=TASKS_PER_WORKER,
                )
                # Start every worker now, not on the first long render that needs both.
                for _ in range(WORKERS):
                    self.pool.submit(_job, ("start",))
                self.memory_mb = memory_mb
            return self.pool

    def discard(self, pool: ProcessPoolExecutor | None = None) -> None:
        """Stop a pool whose workers may be stuck or dead (the current one by default)."""
        with self.lock:
            self._discard(pool or self.pool)

    def _discard(self, pool: ProcessPoolExecutor | None) -> None:
        if pool is None:
            return
        # The executor has no public way to stop a busy worker.
        for process in list((pool._processes or {}).values()):
            if process.is_alive():
                process.kill()
        pool.shutdown(wait=False, cancel_futures=True)
        if self.pool is pool:
            self.pool = None


_workers = _Workers()


def limits() -> tuple[float, int]:
    """(seconds, megabytes) allowed for one render, from the app config or the environment."""
    config = current_app.config if current_app else {}

    def setting(name: str, default: float) -> float:
        value = config.get(name) or os.environ.get(name) or default
        return float(value)

    return setting("PDF_TIMEOUT", 120), int(setting("PDF_MEMORY_MB", 2048))


def shutdown_workers() -> None:
    """Stop the worker processes (tests and benchmarks use this to start cold)."""
    _workers.discard()


def run_jobs(jobs: Iterable[tuple]) -> list:
    """Run rendering jobs in the worker processes, in parallel; their results in order.

    Each job is handed to a worker as soon as `jobs` yields it.
    """
    seconds, memory_mb = limits()
    pool = _workers.get(memory_mb)
    deadline = time.monotonic() + seconds
    futures = []
    try:
        futures = [pool.submit(_job, job) for job in jobs]
        return [f.result(timeout=max(0.0, deadline - time.monotonic())) for f in futures]
    except FutureTimeout:
        # A job still waiting for a worker is simply withdrawn; a running one
        # can only be stopped with its worker.
        stopped = [f.cancel() or f.done() for f in futures]  # cancel every waiting job
        if not all(stopped):
            _workers.discard(pool)
        raise PDFError(
            f"rendering the PDF took longer than {seconds:g} s and was stopped"
        ) from None
    except (BrokenProcessPool, CancelledError):
        _workers.discard(pool)
        raise PDFError(
            "the PDF renderer stopped unexpectedly (it may have run out of its "
            f"{memory_mb} MB of memory, or another render was stopped); try again"
        ) from None


def _init_worker(memory_mb: int) -> None:
    if memory_mb:
        limit = memory_mb * 1024 * 1024
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        if hard != resource.RLIM_INFINITY:
            limit = min(limit, hard)
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    # Load the fonts a letter uses once per process. Then the garbage collector
    # leaves what is loaded by now (WeasyPrint, fonts, caches) out of its passes:
    # a render grows a large tree of boxes, which triggers full passes over
    # everything, and those took ~15 % of a long letter's CPU time (measured).
    try:
        _html(WARM_HTML).write_pdf()
    except MemoryError:
        return  # the first job reports it, with its message
    gc.collect()
    gc.freeze()


def _job(job: tuple):
    """One job in a worker process; errors come back as PDFError with a clear message."""
    kind, *args = job
    # No collection during a render, one after it: cheaper than the passes a
    # growing tree of boxes sets off, and memory stays as low (measured).
    gc.disable()
    try:
        if kind == "whole":
            (html,) = args
            return _html(html).write_pdf()
        if kind == "start":  # the process is ready once its initializer has run
            return None
        raise ValueError(f"unknown job {kind!r}")
    except RecursionError:
        raise PDFError(TOO_DEEP) from None
    except MemoryError:
        raise PDFError("rendering the PDF needed more memory than it is allowed") from None
    finally:
        gc.enable()
        gc.collect()


WARM_HTML = '<link rel="stylesheet" href="static/pdf.css"><p>Letter, <b>Türk</b> 서명</p>'


def _html(html: str) -> HTML:
    return HTML(string=html, base_url=BASE_URL, url_fetcher=StaticFetcher(STATIC_DIR))


STATIC_DIR = Path(__file__).resolve().parent / "static"
