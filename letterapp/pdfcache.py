"""Rendered PDFs kept on disk, so a repeat download is a file read, not a render.

A PDF is found by a hash of everything it is made from: the letter (front
matter and body), the sorted names, the "as of" date, the options, and the
rendering code itself. A new sign-on, an edited letter or a new day is a new
key; nothing needs to be invalidated by hand. Files are written atomically
(temporary file, then rename) and the folder is kept under a size limit by
removing the least recently used files.

The folder is `<instance>/pdf-cache/`, or `PDF_CACHE_DIR`; its size limit is
`PDF_CACHE_MB` (default 512).

A long letter is rendered in parts (`pdfparts`); the parts are kept in the same
folder as `part-<hash of their HTML>.pdf`, so after one more sign-on only the
part that holds the new name is rendered again.
"""

import dataclasses
import fcntl
import hashlib
import json
import logging
import os
import tempfile
import time
from datetime import date
from functools import cache
from pathlib import Path

from flask import current_app
from weasyprint import __version__ as weasyprint_version

from . import pdf
from .letters import Letter

log = logging.getLogger(__name__)

# Bump when the PDF changes for the same input in a way the hashed files below miss.
CODE_VERSION = 1
_RENDERING_FILES = (
    "pdf.py",
    "pdfparts.py",
    "pdfjoin.py",
    "pdfflow.py",
    "static/pdf.css",
    "../templates/pdf/letter.html",
    "../templates/pdf/part.html",
    "../templates/_letter.html",
    "../translations/ko/LC_MESSAGES/messages.mo",  # the PDF's own words, in Korean
)


@cache
def _code_version() -> str:
    """CODE_VERSION, WeasyPrint's version and a hash of the files that shape the PDF."""
    digest = hashlib.sha256(f"{CODE_VERSION}:{weasyprint_version}".encode())
    here = Path(__file__).resolve().parent
    for name in _RENDERING_FILES:
        path = here / name
        digest.update(path.read_bytes() if path.exists() else name.encode())
    return digest.hexdigest()[:16]


def cache_key(letter: Letter, names: list[str], *, as_of: date, notes: str, paper: str) -> str:
    fields = dataclasses.asdict(letter)
    fields["path"] = letter.slug  # where the file lives does not change the PDF
    del fields["closes"]  # nor when sign-on closes (closing by hand changes it)
    payload = json.dumps(
        [_code_version(), fields, list(names), as_of.isoformat(), notes, paper],
        default=str,
        ensure_ascii=False,
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode()).hexdigest()


def cache_dir() -> Path:
    configured = current_app.config.get("PDF_CACHE_DIR") or os.environ.get("PDF_CACHE_DIR")
    return Path(configured or Path(current_app.instance_path) / "pdf-cache")


def max_bytes() -> int:
    megabytes = current_app.config.get("PDF_CACHE_MB") or os.environ.get("PDF_CACHE_MB") or 512
    return int(float(megabytes) * 1024 * 1024)


def get_pdf(
    letter: Letter,
    names: list[str],
    *,
    as_of: date,
    notes: str = "endnotes",
    paper: str = "a4",
) -> bytes:
    """The PDF from the cache, or rendered (pdf.render_pdf) and stored; PDFError as render_pdf.

    A failed render is remembered beside the cache (`<key>.error`) for `lookup`.
    """
    key = cache_key(letter, names, as_of=as_of, notes=notes, paper=paper)
    folder = cache_dir()
    path = folder / f"{key}.pdf"
    if (data := _read(path)) is not None:
        return data
    folder.mkdir(parents=True, exist_ok=True)
    # One render per key at a time, across threads and processes: a hundred
    # downloads right after a sign-on wait for the one render, then read it.
    with open(folder / f"{key}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if (data := _read(path)) is not None:
                return data
            try:
                data = pdf.render_pdf(
                    letter, names, as_of=as_of, notes=notes, paper=paper, parts=PartCache(folder)
                )
            except pdf.PDFError as error:
                _keep(folder / f"{key}.error", str(error).encode())
                raise
            _unlink(folder / f"{key}.error")
            _keep(path, data)
            _evict(folder, max_bytes(), keep=path)
            return data
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def lookup(letter: Letter, names: list[str], **options) -> bytes | None:
    """The cached PDF, or None; PDFError if its last render failed."""
    path = cache_dir() / f"{cache_key(letter, names, **options)}.pdf"
    if (data := _read(path)) is not None:
        return data
    try:
        message = path.with_suffix(".error").read_text()
    except FileNotFoundError:
        return None
    raise pdf.PDFError(message)


def claim_job(letter: Letter, names: list[str], **options) -> bool:
    """True for the first caller to ask for a render job of this PDF in the last few minutes.

    The waiting page reloads every few seconds; this keeps it from starting a
    job each time (a lost job is started again once its claim is stale).
    """
    folder = cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    claim = folder / f"{cache_key(letter, names, **options)}.job"
    try:
        if claim.stat().st_mtime > time.time() - pdf.limits()[0]:
            return False
    except FileNotFoundError:
        pass
    claim.touch()
    return True


def forget_failure(letter: Letter, names: list[str], **options) -> None:
    """Let the next `lookup` start the render again."""
    key = cache_key(letter, names, **options)
    _unlink(cache_dir() / f"{key}.error")
    _unlink(cache_dir() / f"{key}.job")


class PartCache:
    """Rendered parts of long letters, found by a hash of their HTML and the rendering code."""

    def __init__(self, folder: Path):
        self.folder = folder

    def path(self, html: str) -> Path:
        digest = hashlib.sha256(f"{_code_version()}:{html}".encode()).hexdigest()
        return self.folder / f"part-{digest}.pdf"

    def get(self, html: str) -> bytes | None:
        return _read(self.path(html))

    def put(self, html: str, data: bytes) -> None:
        _keep(self.path(html), data)


def _read(path: Path) -> bytes | None:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    try:
        os.utime(path)  # recently used: evicted last
    except OSError:
        pass
    return data


def _keep(path: Path, data: bytes) -> None:
    """Write to the cache; a full disk costs the cache, not the download."""
    try:
        _write(path, data)
    except OSError as error:
        log.error("could not keep %s: %s", path, error)


def _write(path: Path, data: bytes) -> None:
    """Write whole or not at all: readers never see a half-written PDF."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.replace(temporary, path)
    except BaseException:
        _unlink(Path(temporary))
        raise


def _evict(folder: Path, limit: int, keep: Path | None = None) -> None:
    """Remove the least recently used PDFs until the folder is under `limit` bytes."""
    for pattern in ("*.lock", "*.job", "*.error"):  # small files, one per key
        for path in folder.glob(pattern):
            try:
                if path.stat().st_mtime < time.time() - 3600:
                    path.unlink()
            except FileNotFoundError:
                pass
    entries = []
    for path in folder.glob("*.pdf"):
        try:
            stat = path.stat()
        except FileNotFoundError:
            continue
        entries.append((stat.st_mtime, stat.st_size, path))
    total = sum(size for _, size, _ in entries)
    for _, size, path in sorted(entries, key=lambda entry: entry[0]):
        if total <= limit:
            break
        if path == keep:
            continue
        _unlink(path)
        total -= size


def _unlink(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass


def clear() -> None:
    """Remove every cached PDF (benchmarks use this to measure a cold render)."""
    folder = cache_dir()
    for path in folder.glob("*.pdf"):
        _unlink(path)
