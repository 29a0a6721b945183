import os
import re
import unicodedata
from functools import cache
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask_migrate import upgrade

from letterapp import create_app
from letterapp.db import db
from letterapp.fonts import missing_glyphs

PROJECT = Path(__file__).resolve().parent.parent
pytest_plugins = ["tests.fixtures_smtp"]

# The shapes of the August 2023 coalition letter, with our own short text.
LETTER = """\
---
title: Open letter on the rights of families of the disappeared
date: 2023-08-11
coalition: Test Coalition for Truth
addressee:
  - High Commissioner Amara Türk-Lindqvist
  - Office of the High Commissioner for Human Rights
  - Palais des Nations, CH-1211 Geneva 10, Switzerland
attn:
  - "Jean-Luc Ørsted, Chief of Section, who follows the file"
  - "김수진, Human Rights Officer, Asia-Pacific Section"
  - "Nadia Benali, Associate Officer"
re: The rights of families of the disappeared
salutation: Dear High Commissioner Türk-Lindqvist,
closes: 2099-12-31T23:59:00+09:00
---
We write about the families of the disappeared in the country.[^1] Their “right to know” is long established.[^2]

## 1. Background

The practice is documented in detail.[^3] See also the same report.[^4]

## 2. Way forward

We ask for an update.

Thank you.

[^1]: Report of the commission of inquiry, A/HRC/25/CRP.1, 7 February 2014, para. 12.
[^2]: Id., para. 1197.
[^3]: See <https://documents.example.org/en/hrc/session-25/A-HRC-25-CRP-1-report-of-the-detailed-findings-of-the-commission.pdf?lang=en&version=2>.
[^4]: Id.
"""


@pytest.fixture
def write_letter(tmp_path):
    """Write a letter file; `replace` edits its text, e.g. {"closes: 2099": "closes: 2000"}."""
    letters = tmp_path / "letters"
    letters.mkdir(exist_ok=True)

    def write(slug: str = "test-letter", text: str = LETTER, replace: dict | None = None) -> Path:
        for old, new in (replace or {}).items():
            assert old in text, old
            text = text.replace(old, new)
        path = letters / f"{slug}.md"
        path.write_text(text, encoding="utf-8")
        return path

    return write


@pytest.fixture
def app(tmp_path, write_letter):
    write_letter()
    # `make test-pg` runs every test on PostgreSQL too, through TEST_DATABASE_URL.
    database_url = os.environ.get("TEST_DATABASE_URL") or f"sqlite:///{tmp_path / 'test.sqlite3'}"
    app = create_app(
        {
            "TESTING": True,
            "SECRET_KEY": "test",
            "SQLALCHEMY_DATABASE_URI": database_url,
            "LETTERS_DIR": str(tmp_path / "letters"),
            "OUTBOX_DIR": str(tmp_path / "outbox"),
            "PDF_CACHE_DIR": str(tmp_path / "pdf-cache"),
            "SMTP_URL": None,  # never real email from tests, whatever the shell has
            "MAIL_BATCH_SECONDS": 0,  # each sign-on's confirmation sent after its response
        }
    )
    with app.app_context():
        if db.engine.dialect.name == "postgresql":
            with db.engine.begin() as connection:  # an empty database for each test
                connection.execute(sa.text("DROP SCHEMA public CASCADE"))
                connection.execute(sa.text("CREATE SCHEMA public"))
        upgrade()
    yield app
    with app.app_context():
        db.engine.dispose()  # PostgreSQL: no connection left to block the next test


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


def csrf_token(html: str) -> str:
    return re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html).group(1)


SIGNER = {
    "kind": "organization",
    "name": "Transitional Justice Working Group",
    "acronym": "TJWG",
    "contact_name": "Lee Young-hee",
    "email": "office@tjwg.example.org",
    "country": "South Korea",
    "authorised": "y",
    "consent": "y",
}


@pytest.fixture
def sign(client):
    """Sign on through the real form: fetch the page for its CSRF token, then post."""

    def sign(slug: str = "test-letter", **fields):
        page = client.get(f"/letters/{slug}")
        data = {**SIGNER, "csrf_token": csrf_token(page.text), **fields}
        # Buffered: the response is closed, so the confirmation, sent once the
        # response is (jobs.enqueue_pass), has gone when this returns.
        return client.post(
            f"/letters/{slug}",
            data={k: v for k, v in data.items() if v is not None},
            buffered=True,
        )

    return sign


@cache
def undrawable_character() -> str:
    """An assigned character that no font installed here can draw (emoji, rare scripts)."""
    candidates = (chr(c) for c in range(0x1F000, 0x30000))
    assigned = "".join(c for c in candidates if unicodedata.category(c)[0] in "LSN")
    return missing_glyphs(assigned)[0]


PASSWORD = "correct horse battery staple"


@pytest.fixture
def make_coordinator(app):
    """Create a coordinator with a role on a letter, through the real CLI."""

    def make(email: str = "coord@example.org", role: str = "owner", slug: str = "test-letter"):
        runner = app.test_cli_runner()
        result = runner.invoke(args=["user", "create", email], input=f"{PASSWORD}\n{PASSWORD}\n")
        assert result.exit_code == 0, result.output
        if role:
            result = runner.invoke(args=["user", "grant", email, slug, role])
            assert result.exit_code == 0, result.output
        return email

    return make


@pytest.fixture
def login(client):
    """Log the test client in through the real login form."""

    def login(email: str = "coord@example.org", password: str = PASSWORD):
        page = client.get("/manage/login")
        return client.post(
            "/manage/login",
            data={"email": email, "password": password, "csrf_token": csrf_token(page.text)},
        )

    return login


@pytest.fixture
def coordinator(make_coordinator, login):
    """A logged-in owner of the test letter."""
    email = make_coordinator()
    assert login(email).status_code == 302
    return email
