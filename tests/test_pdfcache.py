"""The PDF cache: a repeat download is a file read; any change of input is a new PDF."""

import dataclasses
import os
import time
from datetime import date

import pytest

from letterapp import create_app, pdf, pdfcache
from letterapp.letters import load_letter

from .conftest import LETTER

AS_OF = date(2023, 8, 11)
NAMES = ["Amnesty Test Section (ATS)", "THINK", "김민지"]


@pytest.fixture
def app(tmp_path):
    letters = tmp_path / "letters"
    letters.mkdir()
    (letters / "test-letter.md").write_text(LETTER, encoding="utf-8")
    return create_app(
        {
            "TESTING": True,
            "SECRET_KEY": "t",
            "LETTERS_DIR": str(letters),
            "PDF_CACHE_DIR": str(tmp_path / "pdf-cache"),
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        }
    )


@pytest.fixture
def letter(app):
    return load_letter(app.config["LETTERS_DIR"], "test-letter")


@pytest.fixture
def renders(monkeypatch):
    """Count the real renders behind the cache."""
    calls = []
    real = pdf.render_pdf

    def counting(*args, **kwargs):
        calls.append((args, kwargs))
        return real(*args, **kwargs)

    monkeypatch.setattr(pdf, "render_pdf", counting)
    return calls


def _folder(app):
    with app.app_context():
        return pdfcache.cache_dir()


def test_a_repeat_download_is_served_from_the_cache(app, letter, renders):
    with app.app_context():
        first = pdfcache.get_pdf(letter, NAMES, as_of=AS_OF)
        start = time.perf_counter()
        again = pdfcache.get_pdf(letter, NAMES, as_of=AS_OF)
        elapsed = time.perf_counter() - start
    assert first.startswith(b"%PDF") and again == first
    assert len(renders) == 1
    assert elapsed < 0.05
    assert [p.suffix for p in _folder(app).glob("*.pdf")] == [".pdf"]


def test_any_change_of_input_is_a_new_pdf(app, letter, renders):
    changes = [
        {"names": NAMES + ["Zoë Lefèvre"]},
        {"names": NAMES[:-1]},
        {"as_of": date(2023, 8, 12)},
        {"notes": "footnotes"},
        {"paper": "letter"},
        {"letter": dataclasses.replace(letter, body=letter.body + "\nOne more line.\n")},
        {"letter": dataclasses.replace(letter, title="Another title")},
    ]
    base = {"letter": letter, "names": NAMES, "as_of": AS_OF, "notes": "endnotes", "paper": "a4"}
    with app.app_context():
        keys = {pdfcache.cache_key(**base)}
        for change in changes:
            keys.add(pdfcache.cache_key(**{**base, **change}))
        assert len(keys) == len(changes) + 1
        # The same input is the same key, whatever the list object or the file's place.
        moved = dataclasses.replace(letter, path=letter.path.with_name("elsewhere.md"))
        assert pdfcache.cache_key(**{**base, "names": list(NAMES), "letter": moved}) in keys


def test_writes_are_atomic_and_leave_no_temporary_files(app, letter, monkeypatch):
    with app.app_context():
        pdfcache.get_pdf(letter, NAMES, as_of=AS_OF)
        folder = pdfcache.cache_dir()
        assert not list(folder.glob("*.tmp")) and not list(folder.glob(".*"))

        # A write that fails half-way leaves neither a partial PDF nor its temporary file.
        def broken_replace(source, target):
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(pdfcache.os, "replace", broken_replace)
        data = pdfcache.get_pdf(letter, NAMES, as_of=date(2023, 8, 12))
        assert data.startswith(b"%PDF")  # the download still works
        assert len(list(folder.glob("*.pdf"))) == 1
        assert not list(folder.glob(".*"))


def test_the_cache_keeps_under_its_size_by_evicting_the_oldest(app, letter):
    with app.app_context():
        folder = pdfcache.cache_dir()
        first = pdfcache.get_pdf(letter, NAMES, as_of=date(2023, 8, 1))
        size = len(first)
        app.config["PDF_CACHE_MB"] = 2.5 * size / 1024 / 1024  # room for two PDFs
        oldest = next(folder.glob("*.pdf"))
        os.utime(oldest, (time.time() - 60, time.time() - 60))
        for day in (2, 3):
            pdfcache.get_pdf(letter, NAMES, as_of=date(2023, 8, day))
        kept = list(folder.glob("*.pdf"))
        assert len(kept) == 2
        assert oldest not in kept


def test_a_failed_render_is_not_cached(app, letter):
    with app.app_context():
        with pytest.raises(pdf.PDFError):
            pdfcache.get_pdf(letter, ["Group \U0010fffd"], as_of=AS_OF)
        assert not list(pdfcache.cache_dir().glob("*.pdf"))


def test_public_download_workspace_export_and_cli_share_the_cache(app, letter, renders, tmp_path):
    from flask_migrate import upgrade

    with app.app_context():
        upgrade()
    client = app.test_client()
    first = client.get("/letters/test-letter.pdf")
    assert first.status_code == 200 and first.data.startswith(b"%PDF")
    again = client.get("/letters/test-letter.pdf")
    assert again.data == first.data
    assert len(renders) == 1
    output = tmp_path / "out.pdf"
    with app.app_context():
        today = letter.today().isoformat()
    result = app.test_cli_runner().invoke(
        args=["letter", "render", "test-letter", "-o", str(output), "--as-of", today]
    )
    assert result.exit_code == 0, result.output
    assert output.read_bytes() == first.data
    assert len(renders) == 1
