import html
import re

import pytest
import sqlalchemy as sa
from flask import template_rendered

from letterapp.db import db
from letterapp.models import OutgoingMail, Signature, Status

from .conftest import SIGNER, csrf_token


def stored(app) -> list[Signature]:
    with app.app_context():
        return list(db.session.scalars(sa.select(Signature).order_by(Signature.id)))


def approve_all(runner) -> None:
    result = runner.invoke(args=["signatures", "approve", "test-letter", "--all-pending"])
    assert result.exit_code == 0, result.output


def test_index_lists_open_letters_only(client, write_letter):
    write_letter(
        "old-letter",
        replace={
            "title: Open letter on the": "title: Closed letter on the",
            "closes: 2099": "closes: 2001",
        },
    )
    page = client.get("/").text
    open_part, _, closed_part = page.partition("Closed for sign-on")
    assert "Open letter on the rights of families" in open_part
    assert "Closed letter on the rights" in closed_part


def test_letter_page_follows_the_layout_order(client):
    page = client.get("/letters/test-letter")
    assert page.status_code == 200
    text = page.text
    order = [
        "Open letter on the rights of families of the disappeared",
        "August 11, 2023",
        "High Commissioner Amara Türk-Lindqvist",
        "Office of the High Commissioner for Human Rights",
        "Palais des Nations",
        "ATTN:",
        "Jean-Luc Ørsted, Chief of Section",
        "김수진, Human Rights Officer",
        "Re: The rights of families of the disappeared",
        "Dear High Commissioner Türk-Lindqvist,",
        "1. Background",
        "2. Way forward",
        "Thank you.",
        "Sincerely,",
        "Signature organizations and individuals (as of",
        "A/HRC/25/CRP.1",
        'name="name"',
    ]
    positions = [text.find(item) for item in order]
    assert -1 not in positions, [o for o, p in zip(order, positions, strict=True) if p == -1]
    assert positions == sorted(positions)
    assert "Download PDF" in text and 'href="/letters/test-letter.pdf"' in text
    assert "0 signatories" in text


def test_notes_are_linked_both_ways(client):
    text = client.get("/letters/test-letter").text
    assert 'href="#fn:1"' in text and 'id="fn:1"' in text
    assert 'href="#fnref:1"' in text and 'id="fnref:1"' in text


def test_sign_on_is_stored_pending(client, sign, app):
    response = sign()
    assert response.status_code == 302
    page = client.get(response.headers["Location"])
    assert "Check your inbox" in page.text and "awaiting confirmation" in page.text
    [signature] = stored(app)
    assert signature.status == Status.PENDING
    assert signature.display_name == "Transitional Justice Working Group (TJWG)"
    assert signature.email == "office@tjwg.example.org"


def test_post_without_csrf_token_is_refused(client, app):
    response = client.post("/letters/test-letter", data=SIGNER)
    assert response.status_code == 400
    assert stored(app) == []


@pytest.mark.parametrize(
    "variant",
    [
        {},
        {"email": "OFFICE@TJWG.EXAMPLE.ORG"},
        {"name": "  transitional   justice working GROUP "},
        {"email": "ｏｆｆｉｃｅ@tjwg.example.org"},  # fullwidth letters
        {"name": "Ｔransitional Justice Working Group"},
    ],
)
def test_same_signer_is_recorded_once(client, sign, app, variant):
    assert sign().status_code == 302
    response = sign(**variant)
    assert response.status_code == 302
    assert "Check your inbox" in client.get(response.headers["Location"]).text
    assert len(stored(app)) == 1
    assert signer_was_told_it_is_already_recorded(app)


def signer_was_told_it_is_already_recorded(app) -> bool:
    with app.app_context():
        last = db.session.scalars(sa.select(OutgoingMail).order_by(OutgoingMail.id.desc())).first()
    return "already recorded" in last.raw


def test_same_email_may_sign_for_another_name(sign, app):
    sign()
    sign(name="Another Organisation", acronym="")
    assert [s.name for s in stored(app)] == [
        "Transitional Justice Working Group",
        "Another Organisation",
    ]


BAD_INPUT = [
    ("name", {"name": ""}, "Enter the name as it should appear in the letter."),
    ("name", {"name": "N" * 201}, "at most 200 characters"),
    ("name", {"name": "Evil\u202eCorp"}, "Text-direction control characters"),
    ("name", {"name": "Bad\x00Name"}, "Null characters are not allowed."),
    ("name", {"name": "Two\r\nLines"}, "U+000D is not allowed"),
    ("acronym", {"acronym": "A" * 31}, "at most 30 characters"),
    ("acronym", {"kind": "individual", "contact_name": ""}, "Only organisations have an acronym"),
    ("contact_name", {"contact_name": ""}, "Enter the name of the person signing"),
    ("contact_name", {"contact_name": "C" * 201}, "at most 200 characters"),
    ("email", {"email": ""}, "Enter an email address."),
    ("email", {"email": "not-an-address"}, "This email address is not valid"),
    ("email", {"email": "a@b.example.org\r\nBcc: x@example.org"}, "not valid"),
    ("country", {"country": "C" * 101}, "at most 100 characters"),
    ("kind", {"kind": "robot"}, "Not a valid choice"),
    ("consent", {"consent": None}, "You need to agree to be listed publicly"),
]


@pytest.mark.parametrize(("field", "change", "message"), BAD_INPUT)
def test_bad_input_is_explained_next_to_its_field(sign, app, field, change, message):
    response = sign(**change)
    assert response.status_code == 400
    text = html.unescape(response.text)
    error = text.find(f'id="{field}-error"') if field not in ("kind",) else text.find("<legend>")
    assert error != -1
    assert message in text[error : error + 400]
    assert stored(app) == []


def test_typed_values_are_kept_after_an_error(sign):
    response = sign(email="not-an-address", name="Ünïcode Name", country="Türkiye")
    text = response.text
    assert 'value="Ünïcode Name"' in text
    assert 'value="Türkiye"' in text
    assert 'value="not-an-address"' in text


def test_closed_letter_replaces_form_and_refuses_posts(client, app, write_letter):
    write_letter(replace={"closes: 2099-12-31T23:59:00+09:00": "closes: 2020-06-30T18:00:00+02:00"})
    page = client.get("/letters/test-letter").text
    assert "Sign-on closed on June 30, 2020." in page
    assert 'name="email"' not in page
    with client.session_transaction() as session:
        session["csrf_token"] = "x"  # a token from before the closing time
    response = client.post("/letters/test-letter", data=SIGNER)
    assert response.status_code in (400, 403)
    assert stored(app) == []


def test_post_after_closing_with_valid_token_gets_the_closed_message(client, app, write_letter):
    token = csrf_token(client.get("/letters/test-letter").text)
    write_letter(replace={"closes: 2099-12-31T23:59:00+09:00": "closes: 2020-06-30T18:00:00+02:00"})
    response = client.post("/letters/test-letter", data={**SIGNER, "csrf_token": token})
    assert response.status_code == 403
    assert "Sign-on closed on June 30, 2020." in response.text
    assert stored(app) == []


def test_signatories_page_lists_approved_names_escaped_without_emails(client, sign, runner):
    sign(name="<script>alert(1)</script> Watch", acronym="", email="watch@example.org")
    sign(name="Pending Group", acronym="", email="pending@example.org")
    approve_all(runner)
    sign(name="Late Group", acronym="", email="late@example.org")
    text = client.get("/letters/test-letter/signatories").text
    assert "&lt;script&gt;alert(1)&lt;/script&gt; Watch" in text
    assert "<script>alert(1)" not in text
    assert "Pending Group" in text and "Late Group" not in text
    assert "@example.org" not in text and "example.org" not in text
    assert "2 signatories" in text


def test_public_count_shows_approved_sign_ons(client, sign, runner):
    sign()
    assert "0 signatories" in client.get("/letters/test-letter").text
    approve_all(runner)
    assert "1 signatory" in client.get("/letters/test-letter").text


@pytest.mark.parametrize(
    "url",
    [
        "/letters/nope",
        "/letters/..%2F..%2Fetc%2Fpasswd",
        "/letters/Test-Letter",
        "/letters/nope.pdf",
        "/letters/nope/signatories",
    ],
)
def test_unknown_letters_are_404(client, url):
    assert client.get(url).status_code == 404


def test_pdf_download(client, sign, runner):
    sign(name="김민지", acronym="", kind="individual", contact_name="")
    approve_all(runner)
    response = client.get("/letters/test-letter.pdf")
    assert response.status_code == 200
    assert response.mimetype == "application/pdf"
    assert response.data.startswith(b"%PDF")
    assert 'filename="test-letter-' in response.headers["Content-Disposition"]


def test_each_visitor_gets_the_page_with_their_own_token(app):
    # The second page comes from the worker's cache, with the second visitor's token.
    visitors = [app.test_client(), app.test_client()]
    pages = [visitor.get("/letters/test-letter").text for visitor in visitors]
    tokens = [csrf_token(page) for page in pages]
    assert tokens[0] != tokens[1]
    assert pages[0].replace(tokens[0], "") == pages[1].replace(tokens[1], "")
    swapped = {**SIGNER, "csrf_token": tokens[1]}
    assert visitors[0].post("/letters/test-letter", data=swapped).status_code == 400
    for visitor, token, email in zip(
        visitors, tokens, ["a@example.org", "b@example.org"], strict=True
    ):
        data = {**SIGNER, "email": email, "csrf_token": token}
        assert visitor.post("/letters/test-letter", data=data).status_code == 302
    assert [s.email for s in stored(app)] == ["a@example.org", "b@example.org"]


def test_the_letter_page_is_rendered_once_for_many_visitors(app):
    # Each request loads a new (equal) Letter: the cache must not need the same object.
    rendered = []

    def record(sender, template, context, **extra):
        rendered.append(template.name)

    with template_rendered.connected_to(record, app):
        for _visit in range(3):
            assert app.test_client().get("/letters/test-letter").status_code == 200
    assert rendered.count("public/letter.html") == 1


def test_the_page_a_coordinator_sees_is_never_shown_to_visitors(app, client, coordinator):
    visitor = app.test_client()
    assert "Log out" not in visitor.get("/letters/test-letter").text
    assert "Log out" in client.get("/letters/test-letter").text
    assert "Log out" not in visitor.get("/letters/test-letter").text


def test_a_sign_on_records_the_text_on_disk_when_it_changes(app, sign, write_letter):
    sign(email="a@example.org")
    write_letter(replace={"We ask for an update.": "We demand an answer, please."})
    sign(email="b@example.org")
    sign(email="c@example.org")
    assert [s.revision_number for s in stored(app)] == [1, 2, 2]


def test_fields_are_described_only_by_hints_and_errors_on_the_page(client, write_letter):
    write_letter()
    first = client.get("/letters/test-letter").text
    refused = client.post("/letters/test-letter", data={"csrf_token": csrf_token(first)})
    assert refused.status_code == 400
    for page in (first, refused.text):
        described = re.findall(r'aria-describedby="([^"]*)"', page)
        assert described, "the form's hints and errors are tied to their fields"
        assert all(f'id="{target}"' in page for target in described), described
