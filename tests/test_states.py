"""A letter's states: draft (hidden, with a private preview link), open, closed and sent."""

import html
import re

import sqlalchemy as sa

from letterapp.db import db
from letterapp.models import AuditEntry, LetterRecord, Signature, utcnow

from .conftest import PASSWORD, SIGNER, csrf_token

DASHBOARD = "/manage/letters/{}"


def create_draft(client, slug: str = "fresh") -> None:
    page = client.get("/manage/new").text
    response = client.post(
        "/manage/new",
        data={"csrf_token": csrf_token(page), "slug": slug, "title": "A fresh letter",
              "date": "2026-12-01"},
    )  # fmt: skip
    assert response.status_code == 302


def preview_link(client, slug: str = "fresh") -> str:
    page = client.get(DASHBOARD.format(slug)).text
    link = re.search(r'id="preview-link" type="text" readonly value="([^"]+)"', page).group(1)
    return html.unescape(link).removeprefix("http://localhost")


def move(client, slug: str, state: str, with_token: bool = True):
    data = {"state": state}
    if with_token:
        data["csrf_token"] = csrf_token(client.get("/letters/test-letter").text)
    return client.post(f"/manage/letters/{slug}/state", data=data, follow_redirects=True)


def audit(app, slug: str) -> list[tuple[str, str, str]]:
    with app.app_context():
        entries = db.session.scalars(
            sa.select(AuditEntry).where(AuditEntry.letter_slug == slug).order_by(AuditEntry.id)
        )
        return [(e.actor, e.action, e.detail) for e in entries]


def sign_on_count(app) -> int:
    with app.app_context():
        return db.session.scalar(sa.select(sa.func.count()).select_from(Signature))


def test_a_letter_file_without_a_record_is_open(client, runner, sign):
    assert client.get("/letters/test-letter").status_code == 200
    assert sign().status_code == 302
    assert runner.invoke(args=["letter", "state", "test-letter"]).output == "test-letter: open\n"


def test_a_new_letter_is_a_draft_that_the_public_cannot_see(app, client, coordinator):
    create_draft(client)
    dashboard = client.get(DASHBOARD.format("fresh")).text
    assert 'State: <strong class="state state-draft">draft</strong>' in dashboard
    public = app.test_client()
    for url in ("/letters/fresh", "/letters/fresh/signatories", "/letters/fresh.pdf",
                "/letters/fresh/signed", "/letters/fresh/resend"):  # fmt: skip
        assert public.get(url).status_code == 404, url
    assert "A fresh letter" not in public.get("/").text
    token = csrf_token(public.get("/letters/test-letter").text)
    response = public.post("/letters/fresh", data={**SIGNER, "csrf_token": token})
    assert response.status_code == 404
    assert sign_on_count(app) == 0
    assert ("coord@example.org", "created", "as a draft") in audit(app, "fresh")


def test_the_preview_link_shows_the_draft_without_a_sign_on_form(app, client, coordinator):
    create_draft(client)
    link = preview_link(client)
    assert link.startswith("/letters/fresh/preview/")
    partner = app.test_client()  # not logged in
    response = partner.get(link)
    assert response.status_code == 200
    assert "Draft preview." in response.text and "cannot be signed" in response.text
    assert '<h1 class="title">A fresh letter</h1>' in response.text
    assert '<meta name="robots" content="noindex, nofollow">' in response.text
    assert response.headers["X-Robots-Tag"] == "noindex, nofollow"
    assert "<form" not in response.text and "Sign the letter" not in response.text
    # The link opens no door to signing: the letter's own address still answers 404.
    token = csrf_token(partner.get("/letters/test-letter").text)
    assert partner.post("/letters/fresh", data={**SIGNER, "csrf_token": token}).status_code == 404
    assert partner.post(link, data={**SIGNER, "csrf_token": token}).status_code == 405
    assert sign_on_count(app) == 0


def test_a_tampered_or_renewed_preview_link_fails(app, client, coordinator, write_letter):
    create_draft(client)
    write_letter("other")  # a second letter: a link for one must not open another
    link = preview_link(client)
    partner = app.test_client()
    token = link.rsplit("/", 1)[1]
    assert partner.get(link[:-2] + ("AA" if not link.endswith("AA") else "BB")).status_code == 404
    assert partner.get(f"/letters/other/preview/{token}").status_code == 404
    assert partner.get("/letters/fresh/preview/not-a-token").status_code == 404

    page = client.get(DASHBOARD.format("fresh")).text
    response = client.post(
        "/manage/letters/fresh/preview-link", data={"csrf_token": csrf_token(page)}
    )
    assert response.status_code == 302
    assert partner.get(link).status_code == 404  # revoked
    renewed = preview_link(client)
    assert renewed != link and partner.get(renewed).status_code == 200
    assert ("coord@example.org", "new preview link", "earlier preview links no longer work") in (
        audit(app, "fresh")
    )


def test_open_close_and_reopen_from_the_dashboard(app, client, coordinator, sign):
    create_draft(client)
    page = move(client, "fresh", "open").text
    assert "The letter is now open." in page
    assert client.get("/letters/fresh").status_code == 200
    assert "A fresh letter" in app.test_client().get("/").text
    assert re.search(r'name="state" value="closed">\s*<button[^>]*>\s*Close sign-on', page)

    page = move(client, "fresh", "closed").text
    assert "The letter is now closed." in page
    public = app.test_client()
    letter_page = public.get("/letters/fresh")
    assert letter_page.status_code == 200 and "Sign-on closed on" in letter_page.text
    token = csrf_token(public.get("/letters/test-letter").text)
    assert public.post("/letters/fresh", data={**SIGNER, "csrf_token": token}).status_code == 403
    assert sign_on_count(app) == 0

    assert "The letter is now open." in move(client, "fresh", "open").text
    assert sign("fresh").status_code == 302
    assert [entry[1:] for entry in audit(app, "fresh") if entry[1].startswith("made it")] == [
        ("made it open", "draft -> open"),
        ("made it closed", "open -> closed"),
        ("made it open", "closed -> open"),
    ]


def test_moves_are_checked(app, client, coordinator, make_coordinator):
    # Back to draft is not offered once open: signers may be reading it.
    assert "cannot be made 'draft'" in html.unescape(move(client, "test-letter", "draft").text)
    assert "cannot be made 'sent'" in html.unescape(move(client, "test-letter", "sent").text)
    assert move(client, "test-letter", "closed", with_token=False).status_code == 400
    assert app.test_client().get("/letters/test-letter").status_code == 200
    viewer = app.test_client()
    make_coordinator("viewer@example.org", role="viewer")
    page = viewer.get("/manage/login").text
    viewer.post("/manage/login", data={"email": "viewer@example.org", "password": PASSWORD,
                                       "csrf_token": csrf_token(page)})  # fmt: skip
    assert move(viewer, "test-letter", "closed").status_code == 403
    assert audit(app, "test-letter") == []


def test_state_from_the_command_line(app, client, runner):
    result = runner.invoke(args=["letter", "state", "test-letter", "closed"])
    assert result.exit_code == 0 and result.output == "test-letter: closed\n"
    assert "Sign-on closed on" in client.get("/letters/test-letter").text
    result = runner.invoke(args=["letter", "state", "test-letter", "draft"])
    assert result.output == "test-letter: draft\n"
    assert client.get("/letters/test-letter").status_code == 404
    assert "test-letter\tdraft\t" in runner.invoke(args=["letter", "list"]).output
    again = runner.invoke(args=["letter", "state", "test-letter", "draft"])
    assert again.exit_code == 1 and "The letter is draft already." in again.output
    wrong = runner.invoke(args=["letter", "state", "test-letter", "sent"])
    assert wrong.exit_code == 2 and "'sent' is not one of" in wrong.output
    assert ("cli", "made it draft", "closed -> draft") in audit(app, "test-letter")


def test_a_passed_closing_time_closes_the_letter(runner, write_letter):
    write_letter(replace={"closes: 2099": "closes: 2000"})
    assert runner.invoke(args=["letter", "state", "test-letter"]).output == "test-letter: closed\n"


def test_a_sent_letter_keeps_its_state(app, client, runner):
    runner.invoke(args=["letter", "state", "test-letter", "closed"])
    with app.app_context():  # what the delivery writes when the last `to` address accepted it
        record = db.session.scalar(sa.select(LetterRecord))
        record.sent_at = utcnow()
        db.session.commit()
    assert runner.invoke(args=["letter", "state", "test-letter"]).output == "test-letter: sent\n"
    result = runner.invoke(args=["letter", "state", "test-letter", "open"])
    assert result.exit_code == 1 and "has been sent" in result.output
    assert client.get("/letters/test-letter").status_code == 200
