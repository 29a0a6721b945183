"""End to end in a real headless Chromium (Debian's), driven by Playwright."""

import email
import email.policy
import re
import shutil
import threading

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect, sync_playwright
from pypdf import PdfReader
from werkzeug.serving import make_server

from letterapp.db import db
from letterapp.models import OutgoingMail

from .conftest import PASSWORD

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture
def live(app):
    """The test app served on 127.0.0.1 by a real HTTP server in a thread."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


@pytest.fixture
def browser():
    assert shutil.which(CHROMIUM), "Chromium is missing: `make test` installs Debian's chromium"
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--no-first-run"],
        )  # fmt: skip
        yield chromium
        chromium.close()


def confirmation_link(app) -> str:
    with app.app_context():
        raw = db.session.scalars(sa.select(OutgoingMail)).first().raw
    text = email.message_from_string(raw, policy=email.policy.default).get_body(("plain",))
    return re.search(r"https?://\S+/confirm/\S+", text.get_content()).group(0)


def test_signer_and_coordinator_end_to_end(app, live, browser, make_coordinator):
    phone = browser.new_page(viewport={"width": 320, "height": 740})
    phone.goto(f"{live}/letters/test-letter")
    expect(phone.locator("h1.title")).to_have_text(
        "Open letter on the rights of families of the disappeared"
    )
    phone.get_by_role("link", name="Sign this letter").click()
    phone.get_by_label("An organisation").check()
    phone.get_by_label("Name as it should appear in the letter").fill("북한인권시민연합")
    phone.get_by_label("Acronym (optional)").fill("NKHR")
    phone.get_by_label("Contact person").fill("이영희")
    phone.get_by_label("Email (never shown publicly)").fill("nkhr@example.org")
    phone.get_by_label("I am authorised to sign on behalf of this organisation.").check()
    phone.get_by_label("I agree that this name is listed publicly").check()
    phone.get_by_role("button", name="Sign the letter").click()
    expect(phone.get_by_role("heading", name="Check your inbox")).to_be_visible()
    # No horizontal scrolling on a 320 px phone.
    assert phone.evaluate("document.documentElement.scrollWidth") <= 320

    phone.goto(confirmation_link(app).replace("http://localhost", live))
    phone.get_by_role("button", name="Confirm").click()
    expect(phone.get_by_role("heading", name="Your sign-on is confirmed")).to_be_visible()

    make_coordinator()
    desk = browser.new_page(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    desk.goto(f"{live}/manage/login")
    desk.get_by_label("Email").fill("coord@example.org")
    desk.get_by_label("Password").fill(PASSWORD)
    desk.get_by_role("button", name="Log in").click()
    desk.goto(f"{live}/manage/letters/test-letter/signons?status=confirmed")
    row = desk.locator("tr", has_text="북한인권시민연합 (NKHR)")
    row.get_by_role("button", name="Approve").click()
    expect(desk.get_by_text("Approved 1 sign-on(s).")).to_be_visible()

    desk.get_by_role("link", name="Export").click()
    with desk.expect_download() as download:
        desk.get_by_role("button", name="Download PDF").click()
    pdf = PdfReader(download.value.path())
    text = "\n".join(page.extract_text() for page in pdf.pages)
    assert "북한인권시민연합 (NKHR)" in text
    assert "Signature organizations and individuals" in text
