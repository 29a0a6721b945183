"""The letter editor: one field per front-matter key, the live preview and the PDF preview."""

import base64
import html
import io
import os
import re
from pathlib import Path

import pytest
import sqlalchemy as sa
from PIL import Image
from playwright.sync_api import expect

from letterapp.db import db
from letterapp.letters import load_letter
from letterapp.models import Revision

from .conftest import PASSWORD, csrf_token, undrawable_character
from .test_browser import browser, live  # noqa: F401 (the Chromium fixtures)

EDIT = "/manage/letters/test-letter/edit"
PREVIEW = f"{EDIT}/preview"
PDF = f"{EDIT}/pdf"

FIELDS = {
    "title": "Open letter on the rights of families of the disappeared",
    "date": "2023-08-11",
    "addressee": "High Commissioner Amara Türk-Lindqvist\r\nPalais des Nations, Geneva",
    "attn": "김수진, Human Rights Officer",
    "re": "The rights of families: “truth” now",
    "salutation": "Dear High Commissioner,",
    "closing": "Yours sincerely,",
    "signatories_heading": "Signature organizations and individuals",
    "coalition": "Test Coalition for Truth",
    "language": "en",
    "closes": "2099-12-31T23:59",
    "closes_offset": "+09:00",
    "moderation": "auto",
    "signatory_format": "name",
    "body": "We write to you.[^1]\r\n\r\n## 1. Background\r\n\r\nThank you.\r\n\r\n[^1]: A note.",
    "note": "reworded",
}


def post_fields(client, url=EDIT, **changes):
    token = csrf_token(client.get(EDIT).text)
    data = {**FIELDS, "csrf_token": token, **changes}
    return client.post(url, data={k: v for k, v in data.items() if v is not None})


def letter_file(app, name: str = "test-letter.md") -> str:
    return (Path(app.config["LETTERS_DIR"]) / name).read_text(encoding="utf-8")


def test_the_fields_show_the_saved_letter(client, coordinator):
    page = client.get(EDIT).text
    assert 'value="Open letter on the rights of families of the disappeared"' in page
    assert "High Commissioner Amara Türk-Lindqvist\nOffice of the High Commissioner" in page
    assert 'value="2099-12-31T23:59"' in page
    assert '<option selected value="+09:00">UTC+09:00</option>' in page
    assert 'src="/static/editor.js"' in page
    # The saved letter is already previewed beside the fields.
    assert '<h1 class="title">Open letter on the rights' in page


def test_saving_the_fields_writes_the_file_and_a_revision(app, client, coordinator):
    response = post_fields(client, save="1", minor="y")
    assert response.status_code == 302
    text = letter_file(app, "test-letter.md")
    assert text == (
        "---\n"
        "title: Open letter on the rights of families of the disappeared\n"
        "date: 2023-08-11\n"
        "addressee:\n"
        "- High Commissioner Amara Türk-Lindqvist\n"
        "- Palais des Nations, Geneva\n"
        "re: 'The rights of families: “truth” now'\n"
        "salutation: Dear High Commissioner,\n"
        "attn:\n"
        "- 김수진, Human Rights Officer\n"
        "closing: Yours sincerely,\n"
        "closes: '2099-12-31T23:59:00+09:00'\n"
        "coalition: Test Coalition for Truth\n"
        "moderation: auto\n"
        "signatory_format: name\n"
        "---\n"
        "We write to you.[^1]\n\n## 1. Background\n\nThank you.\n\n[^1]: A note.\n"
    )
    with app.app_context():
        letter = load_letter(app.config["LETTERS_DIR"], "test-letter")
        assert letter.re == "The rights of families: “truth” now"
        assert letter.closes.isoformat() == "2099-12-31T23:59:00+09:00"
        latest = db.session.scalars(sa.select(Revision).order_by(Revision.number.desc())).first()
        assert (latest.text, latest.note, latest.minor) == (text, "reworded", True)
        assert latest.author == coordinator


def test_saving_keeps_the_recipients_of_the_file(app, client, coordinator, write_letter):
    write_letter(replace={"closes:": "recipients:\n  to: [hc@example.org]\ncloses:"})
    assert post_fields(client, save="1").status_code == 302
    with app.app_context():
        letter = load_letter(app.config["LETTERS_DIR"], "test-letter")
    assert letter.recipients.to == ("hc@example.org",)


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"title": ""}, "title", "Give the letter a title."),
        ({"title": "x" * 301}, "title", "Title can be at most 300 characters."),
        ({"date": "someday"}, "date", "Not a valid date value."),
        ({"addressee": " \r\n "}, "addressee", "Write whom the letter is to, one line each."),
        ({"attn": "ok\r\nbad\u202eline"}, "attn", "Line 2: Text-direction control characters"),
        ({"language": "zz-nowhere"}, "language", "unknown language 'zz-nowhere'"),
        ({"moderation": "sometimes"}, "moderation", "Not a valid choice."),
        ({"body": "Text.[^9]"}, "body", "Line 1: footnote [^9] is referenced but not defined"),
        ({"body": "x" * 400_001}, "body", "The text can be at most 400000 characters."),
    ],
)
def test_field_errors_are_shown_next_to_their_field(
    app, client, coordinator, changes, field, message
):
    before = letter_file(app, "test-letter.md")
    page = post_fields(client, save="1", **changes)
    assert page.status_code == 200
    assert "Not saved: please correct the fields marked below." in page.text
    error = re.search(rf'<p class="error" id="{field}-error">([^<]*)</p>', page.text)
    assert error and message in html.unescape(error.group(1))
    assert letter_file(app, "test-letter.md") == before


def test_the_preview_button_works_without_javascript(client, coordinator):
    page = post_fields(client, preview="1", body="A *new* paragraph.")
    assert "<p>A <em>new</em> paragraph.</p>" in page.text
    assert "of the text in the form" in page.text


def test_live_preview_renders_the_letter_and_lists_its_problems(client, coordinator):
    odd = undrawable_character()
    body = f"First.[^1] Second.[^missing]\n\nAn odd sign: {odd}\n\n[^1]: One.\n[^spare]: Unused."
    response = post_fields(client, PREVIEW, body=body, title="Live <b>title</b>")
    assert response.status_code == 200
    answer = response.get_json()
    assert '<h1 class="title">Live &lt;b&gt;title&lt;/b&gt;</h1>' in answer["html"]
    assert '<p class="re">Re: The rights of families: “truth” now</p>' in answer["html"]
    assert "<p>An odd sign:" in answer["html"]
    messages = [(p["field"], p["message"]) for p in answer["problems"]]
    assert ("body", "Line 1: footnote [^missing] is referenced but not defined") in messages
    assert ("body", "Line 6: footnote [^spare] is defined but never referenced") in messages
    [unprintable] = answer["unprintable"]
    assert f"{odd} (U+{ord(odd):04X})" in unprintable


def test_live_preview_of_a_sound_letter_has_no_problems(client, coordinator):
    answer = post_fields(client, PREVIEW).get_json()
    assert answer["problems"] == [] and answer["unprintable"] == []
    assert "We write to you." in answer["html"] and 'class="footnote-ref"' in answer["html"]


@pytest.mark.parametrize("url", [PREVIEW, PDF])
def test_previews_need_the_csrf_token(client, coordinator, url):
    response = client.post(url, data={**FIELDS})
    assert response.status_code == 400
    assert response.get_json(silent=True) is None


@pytest.mark.parametrize("url", [PREVIEW, PDF])
def test_previews_need_an_editor(client, make_coordinator, login, url):
    login(make_coordinator("viewer@example.org", role="viewer"))
    token = csrf_token(client.get("/letters/test-letter").text)
    response = client.post(url, data={**FIELDS, "csrf_token": token})
    assert response.status_code == 403
    assert response.get_json(silent=True) is None


def test_pdf_preview_shows_the_unsaved_text_as_page_images(app, client, coordinator):
    page = post_fields(client, pdf="1", title="A title only the PDF preview has seen")
    assert page.status_code == 200
    sources = re.findall(
        r'<img src="data:image/png;base64,([^"]+)" alt="Page (\d) of the PDF"', page.text
    )
    assert [number for _, number in sources] == ["1"]  # this short letter is one page
    assert_drawn_page(base64.b64decode(sources[0][0]))
    assert "not saved" in page.text
    text = letter_file(app, "test-letter.md")
    assert "A title only the PDF preview has seen" not in text


def assert_drawn_page(png: bytes) -> None:
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG" and image.height > image.width > 300
    # Drawn, not blank: a page of text has many dark pixels.
    dark = sum(1 for pixel in image.convert("L").get_flattened_data() if pixel < 128)
    assert dark > 2000


def test_pdf_endpoint_answers_the_pages_of_the_unsaved_text(app, client, coordinator):
    short = post_fields(client, PDF).get_json()
    assert short["error"] is None and len(short["pages"]) == 1
    # A longer text than the saved letter's: more pages, drawn from the form.
    body = "\r\n\r\n".join(
        f"## {n}. Section\r\n\r\n" + "Words of the text. " * 80 for n in range(9)
    )
    answer = post_fields(client, PDF, body=body).get_json()
    assert answer["error"] is None and len(answer["pages"]) >= 3
    prefix = "data:image/png;base64,"
    assert all(src.startswith(prefix) for src in answer["pages"])
    assert_drawn_page(base64.b64decode(answer["pages"][1].removeprefix(prefix)))
    assert "Words of the text." not in letter_file(app, "test-letter.md")


def test_pdf_endpoint_reports_what_no_font_can_draw(client, coordinator):
    odd = undrawable_character()
    answer = post_fields(client, PDF, body=f"Text {odd}.").get_json()
    assert answer["pages"] == []
    assert f"U+{ord(odd):04X}" in answer["error"]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"title": ""}, "the fields need correcting: Title: Give the letter a title."),
        ({"body": "Text.[^9]"}, "footnote [^9] is referenced but not defined"),
    ],
)
def test_pdf_endpoint_reports_why_there_is_no_pdf(client, coordinator, changes, message):
    answer = post_fields(client, PDF, **changes).get_json()
    assert answer["pages"] == []
    assert message in answer["error"]


def test_pdf_preview_refuses_what_no_font_can_draw(client, coordinator):
    odd = undrawable_character()
    page = post_fields(client, pdf="1", body=f"Text {odd}.")
    assert "The PDF cannot be made:" in page.text
    assert f"U+{ord(odd):04X}" in page.text
    assert "data:image/png" not in page.text


def test_a_new_letter_is_written_by_the_one_serialiser(app, client, coordinator):
    page = client.get("/manage/new").text
    client.post(
        "/manage/new",
        data={"csrf_token": csrf_token(page), "slug": "fresh", "title": "Title: with a colon",
              "date": "2026-12-01"},
    )  # fmt: skip
    text = letter_file(app, "fresh.md")
    assert text.startswith("---\ntitle: 'Title: with a colon'\ndate: 2026-12-01\n")
    assert client.get("/manage/letters/fresh/edit").status_code == 200


# Keeps each text the PDF preview's status line shows, however briefly.
STATUS_RECORDER = """() => {
  window.pdfStatuses = [];
  const status = document.getElementById("pdf-status");
  new MutationObserver(() => window.pdfStatuses.push(status.textContent))
    .observe(status, { childList: true, characterData: true, subtree: true });
}"""


def test_the_previews_update_without_a_reload(live, browser, make_coordinator):  # noqa: F811
    make_coordinator()
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(f"{live}/manage/login")
    page.get_by_label("Email").fill("coord@example.org")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.goto(f"{live}/manage/letters/test-letter/edit")
    preview = page.locator("#preview-letter")
    expect(preview.locator("h1.title")).to_have_text(
        "Open letter on the rights of families of the disappeared"
    )
    page.evaluate("window.notReloaded = true")
    body = page.get_by_label("Letter text (Markdown)")
    body.press("Control+End")
    body.type("\n\nA sentence typed in Chromium.[^new]\n")
    expect(preview).to_contain_text("A sentence typed in Chromium.")
    expect(page.locator("#preview-checks")).to_contain_text(
        "footnote [^new] is referenced but not defined"
    )
    page.locator("summary").click()  # the heading fields are folded away at first
    page.get_by_label("Title").fill("A title typed live")
    expect(preview.locator("h1.title")).to_have_text("A title typed live")
    # The PDF button draws the pages in place, with a "Rendering…" state meanwhile.
    body.type("[^new]: The note typed in Chromium.\n")
    expect(page.locator("#preview-checks")).to_have_text("No problems found.")
    pdf = page.locator("#pdf-preview")
    expect(pdf).to_be_hidden()
    page.evaluate(STATUS_RECORDER)
    page.get_by_role("button", name="PDF preview").click()
    expect(pdf.get_by_role("img", name="Page 1 of the PDF")).to_be_visible(timeout=30_000)
    width = pdf.locator("img").first.evaluate("image => image.naturalWidth")
    assert width > 300  # a decoded PNG, not a broken image
    expect(page.locator("#pdf-status")).to_contain_text("not saved")
    assert page.evaluate("window.pdfStatuses")[0] == "Rendering…"
    shot = os.environ.get("EDITOR_SCREENSHOT")  # to look at the page by eye
    if shot:
        page.screenshot(path=shot, full_page=True)
    # Typing after marks the pages as of an earlier text; a PDF error shows in place.
    odd = undrawable_character()
    body.type(f"An odd sign: {odd}\n")
    expect(page.locator("#pdf-status")).to_contain_text("of an earlier text")
    page.get_by_role("button", name="PDF preview").click()
    expect(page.locator("#pdf-error")).to_contain_text("The PDF cannot be made:")
    expect(page.locator("#pdf-error")).to_contain_text(f"U+{ord(odd):04X}")
    expect(pdf.locator("img")).to_have_count(0)
    assert page.evaluate("window.notReloaded") is True
    if shot:
        page.screenshot(path=shot.replace(".png", "-error.png"), full_page=True)
