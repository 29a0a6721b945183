"""The coordinators' workspace, through the real login and forms."""

import csv
import html
import io
import re

import pytest
import sqlalchemy as sa

from letterapp import create_app
from letterapp.db import db
from letterapp.models import AuditEntry, Signature, Status

from .conftest import csrf_token

SLUG = "test-letter"
BASE = f"/manage/letters/{SLUG}"


def coordinator_urls() -> list[tuple[str, str]]:
    """Every coordinator URL with each method it takes, read from the app's own routes.

    Read, not listed by hand, so a new page can never be left out of these tests.
    """
    app = create_app({"SECRET_KEY": "x", "TESTING": True, "SQLALCHEMY_DATABASE_URI": "sqlite://"})
    found = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/manage/") or rule.endpoint in ("auth.login", "auth.logout"):
            continue
        url = rule.rule.replace("<slug:slug>", SLUG)
        url = re.sub(r"<int:\w+>", "1", url)
        found += [(method, url) for method in sorted(rule.methods - {"HEAD", "OPTIONS"})]
    return sorted(found)


COORDINATOR_URLS = coordinator_urls()


def test_the_coordinator_url_list_is_complete():
    assert len(COORDINATOR_URLS) >= 30
    assert ("POST", f"{BASE}/deliver/send") in COORDINATOR_URLS
    assert ("GET", "/manage/new") in COORDINATOR_URLS


@pytest.mark.parametrize(("method", "url"), COORDINATOR_URLS)
def test_every_coordinator_url_refuses_an_anonymous_client(client, sign, method, url):
    sign()
    # A valid CSRF token from a public page: the login check alone must refuse.
    token = csrf_token(client.get(f"/letters/{SLUG}").text)
    response = client.open(url, method=method, data={"csrf_token": token})
    assert response.status_code in (302, 401)
    if response.status_code == 302:
        assert response.headers["Location"].startswith("/manage/login")
    assert "office@tjwg.example.org" not in response.text


@pytest.mark.parametrize(("method", "url"), [u for u in COORDINATOR_URLS if u[0] == "POST"])
def test_every_coordinator_action_refuses_a_post_without_csrf(
    client, coordinator, sign, method, url
):
    sign()
    response = client.post(url, data={"ids": "1", "reason": "x", "keep": 1, "duplicate": 1})
    assert response.status_code in (302, 400)
    assert only(client.application).status == Status.PENDING


def only(app) -> Signature:
    with app.app_context():
        [signature] = db.session.scalars(sa.select(Signature))
        return signature


def rows(app) -> list[Signature]:
    with app.app_context():
        return list(db.session.scalars(sa.select(Signature).order_by(Signature.id)))


def audit(app) -> list[tuple[str, str, str]]:
    with app.app_context():
        entries = db.session.scalars(sa.select(AuditEntry).order_by(AuditEntry.id))
        return [(e.actor, e.action, e.detail) for e in entries]


def post(client, page_url: str, action_url: str, data: dict, **kwargs):
    """Post a workspace form with the CSRF token of the page it is on."""
    token = csrf_token(client.get(page_url).text)
    return client.post(action_url, data={"csrf_token": token, **data}, **kwargs)


def test_a_coordinator_sees_only_their_letters(client, make_coordinator, login, write_letter):
    write_letter("other-letter")
    make_coordinator("other@example.org", slug="other-letter")
    make_coordinator()
    login()
    page = client.get("/manage/").text
    assert SLUG in page and "other-letter" not in page
    assert client.get("/manage/letters/other-letter").status_code == 404
    assert client.get("/manage/letters/other-letter/signons").status_code == 404


def test_dashboard_counts_and_queue(client, coordinator, sign):
    sign()
    sign(name="Second Group", acronym="", email="second@example.org")
    page = client.get(BASE).text
    assert "Open letter on the rights of families" in page
    assert re.search(r'class="count">2</span>\s*<span class="label">awaiting email', page)
    assert "days" in page and "left" in page
    queue = client.get(f"{BASE}/signons?status=pending").text
    assert "office@tjwg.example.org" in queue and "second@example.org" in queue
    found = client.get(f"{BASE}/signons?q=second").text
    assert "second@example.org" in found and "office@tjwg.example.org" not in found


def test_broken_letter_file_is_shown_to_coordinators(client, coordinator, write_letter):
    write_letter(replace={"date: 2023-08-11": "date: 2023-02-30"})
    page = client.get(BASE).text
    assert "The letter file has problems" in page
    assert "test-letter.md:3: bad date" in page
    assert client.get(f"/letters/{SLUG}").status_code == 404


def test_bulk_approve_reject_with_reason_and_rename(app, client, coordinator, sign):
    sign()
    sign(name="Second Group", acronym="", email="second@example.org")
    first, second = rows(app)
    response = post(
        client,
        f"{BASE}/signons",
        f"{BASE}/signons/approve",
        {"ids": [str(first.id), str(second.id)]},
    )
    assert response.status_code == 302
    assert [s.status for s in rows(app)] == [Status.APPROVED, Status.APPROVED]
    post(
        client, f"{BASE}/signons", f"{BASE}/signons/{second.id}/reject", {"reason": "Not a member"}
    )
    assert rows(app)[1].status == Status.REJECTED and rows(app)[1].reject_reason == "Not a member"
    post(
        client,
        f"{BASE}/signons",
        f"{BASE}/signons/{first.id}/name",
        {"letter_name": "Transitional Justice Working Group (TJWG), Seoul"},
    )
    renamed = rows(app)[0]
    assert renamed.letter_name == "Transitional Justice Working Group (TJWG), Seoul"
    assert renamed.name == "Transitional Justice Working Group"  # the signer's own is kept
    assert (
        "Transitional Justice Working Group (TJWG), Seoul"
        in client.get(f"/letters/{SLUG}/signatories").text
    )
    assert [a[1] for a in audit(app)] == ["approved", "approved", "rejected", "edited"]
    assert audit(app)[2] == ("coord@example.org", "rejected", "Not a member")


def test_reject_needs_a_reason(app, client, coordinator, sign):
    sign()
    post(client, f"{BASE}/signons", f"{BASE}/signons/{only(app).id}/reject", {"reason": ""})
    assert only(app).status == Status.PENDING


def test_viewer_can_read_but_not_change(app, client, make_coordinator, login, sign):
    make_coordinator(role="viewer")
    login()
    sign()
    assert client.get(f"{BASE}/signons").status_code == 200
    response = post(
        client, f"{BASE}/signons", f"{BASE}/signons/approve", {"ids": str(only(app).id)}
    )
    assert response.status_code == 403
    assert only(app).status == Status.PENDING


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (
            {"name": "Transitional Justice Working Group", "acronym": "TJWG"},
            {"name": "TJWG", "acronym": "", "email": "other@example.org"},
        ),
        (
            {"name": "Citizens’ Alliance", "acronym": ""},
            {"name": "CITIZENS ALLIANCE", "acronym": "", "email": "other@example.org"},
        ),
        (
            {"name": "Ｔｈｉｎｋ Ｔａｎｋ", "acronym": ""},
            {"name": "think-tank", "acronym": "", "email": "other@example.org"},
        ),
        ({"name": "Group One", "acronym": ""}, {"name": "Group Two", "acronym": ""}),  # same email
    ],
)
def test_likely_duplicates_are_flagged_and_merged(app, client, coordinator, sign, first, second):
    sign(**first)
    sign(**second)
    kept, duplicate = rows(app)
    page = client.get(f"{BASE}/duplicates").text
    assert f"Keep #{kept.id}, merge #{duplicate.id}" in page
    post(
        client,
        f"{BASE}/duplicates",
        f"{BASE}/duplicates/merge",
        {"keep": kept.id, "duplicate": duplicate.id},
    )
    assert [s.status for s in rows(app)] == [Status.PENDING, Status.MERGED]
    assert rows(app)[1].merged_into_id == kept.id
    assert "No likely duplicates" in client.get(f"{BASE}/duplicates").text
    assert audit(app)[-1][1] == "merged"


def test_different_signers_are_not_flagged(client, coordinator, sign):
    sign()
    sign(name="Another Organisation", acronym="AO", email="ao@example.org")
    assert "No likely duplicates" in client.get(f"{BASE}/duplicates").text


def test_add_by_hand(app, client, coordinator):
    data = {
        "kind": "individual",
        "name": "김민지",
        "contact_name": "김민지",
        "email": "minji@example.org",
        "country": "South Korea",
    }
    response = post(client, f"{BASE}/add", f"{BASE}/add", data)
    assert response.status_code == 302
    assert only(app).status == Status.APPROVED and only(app).name == "김민지"
    again = post(client, f"{BASE}/add", f"{BASE}/add", data)
    assert "already recorded" in again.text
    assert audit(app)[0][:2] == ("coord@example.org", "added")


GOOD_CSV = (
    "name,kind,email,acronym,contact_name\n"
    "Ligue des droits,organization,ldd@example.org,LDD,Zoë Lefèvre\n"
    "이준호,individual,junho@example.org,,\n"
)
BAD_CSV = GOOD_CSV + "No Email Group,organization,,NEG,Someone\nRobots,robot,r@example.org,,x\n"


def upload(client, text: str, **extra):
    page = client.get(f"{BASE}/import")
    data = {
        "csrf_token": csrf_token(page.text),
        "file": (io.BytesIO(text.encode("utf-8-sig")), "signons.csv"),
        **extra,
    }
    return client.post(f"{BASE}/import", data=data, content_type="multipart/form-data")


def test_csv_import_preview_shows_bad_rows_and_imports_nothing(app, client, coordinator):
    page = upload(client, BAD_CSV).text
    assert "line 4: email: Enter an email address." in page
    assert "line 5: kind: Not a valid choice" in page
    assert "nothing will be imported" in page
    assert 'name="confirm"' not in page
    assert rows(app) == []


def test_csv_import_preview_then_import(app, client, coordinator, sign):
    sign(name="Ligue des droits", acronym="LDD", email="ldd@example.org", contact_name="Zoë")
    page = upload(client, GOOD_CSV).text
    assert "Ligue des droits" in page and "이준호" in page and "1 duplicate(s)" in page
    assert len(rows(app)) == 1  # the preview saves nothing
    text = re.search(
        r'<textarea[^>]*name="csv_text"[^>]*>\r?\n?(.*?)</textarea>', page, re.DOTALL
    ).group(1)
    response = client.post(
        f"{BASE}/import",
        data={"csrf_token": csrf_token(page), "csv_text": html.unescape(text), "confirm": "1"},
    )
    assert response.status_code == 302
    names = [(s.name, s.status) for s in rows(app)]
    assert names == [("Ligue des droits", Status.PENDING), ("이준호", Status.APPROVED)]
    assert audit(app)[-1][1:] == ("imported", "1 sign-on(s)")


def test_csv_export_is_formula_safe_with_bom(app, client, coordinator, sign, runner):
    sign(name='=HYPERLINK("http://x","y")', acronym="", email="f@example.org")
    sign(name="사단법인 평화와 인권", acronym="", email="p@example.org")
    runner.invoke(args=["signatures", "approve", SLUG, "--all-pending"])
    response = client.get(f"{BASE}/export.csv")
    assert response.mimetype == "text/csv"
    body = response.data.decode("utf-8")
    assert body.startswith("\ufeff")
    read = list(csv.DictReader(io.StringIO(body.removeprefix("\ufeff"))))
    assert {r["name"] for r in read} == {'\'=HYPERLINK("http://x","y")', "사단법인 평화와 인권"}


def test_pdf_export_and_preview(client, coordinator, sign, runner):
    sign(name="김민지", acronym="", kind="individual", contact_name="")
    runner.invoke(args=["signatures", "approve", SLUG, "--all-pending"])
    page = client.get(f"{BASE}/pdf?as_of=2099-01-01&notes=footnotes&paper=letter&preview=1").text
    assert "preview-1.png" in page
    image = client.get(f"{BASE}/preview-1.png?as_of=2099-01-01&notes=footnotes&paper=letter")
    assert image.mimetype == "image/png" and image.data.startswith(b"\x89PNG")
    pdf = client.get(f"{BASE}/pdf?as_of=2099-01-01&notes=endnotes&paper=a4&download=1")
    assert pdf.mimetype == "application/pdf" and pdf.data.startswith(b"%PDF")
    assert "attachment" in pdf.headers["Content-Disposition"]


def test_outbox_lists_failed_mail_and_retries(app, client, coordinator, sign, smtp_server):
    app.config["SMTP_URL"] = "smtp://127.0.0.1:9"
    sign()
    page = client.get(f"{BASE}/outbox").text
    assert "failed" in page and "1 message(s) not sent yet" in page
    app.config["SMTP_URL"] = smtp_server.url
    post(client, f"{BASE}/outbox", f"{BASE}/outbox", {})
    assert len(smtp_server.messages) == 1
    assert "not sent yet" not in client.get(f"{BASE}/outbox").text
