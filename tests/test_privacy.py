"""Contact details are purged after delivery; the public names stay."""

from datetime import timedelta

import sqlalchemy as sa

from letterapp.db import db
from letterapp.models import LetterRecord, OutgoingMail, Signature, utcnow


def sent_days_ago(app, days: int) -> None:
    with app.app_context():
        db.session.add(LetterRecord(slug="test-letter", sent_at=utcnow() - timedelta(days=days)))
        db.session.commit()


def signatures(app) -> list[Signature]:
    with app.app_context():
        return list(db.session.scalars(sa.select(Signature).order_by(Signature.id)))


def sign_two_and_approve(sign, runner) -> None:
    sign()
    sign(name="Stay In Touch", acronym="", email="stay@example.org", updates_opt_in="y")
    runner.invoke(args=["signatures", "approve", "test-letter", "--all-pending"])


def test_contacts_are_purged_after_the_configured_days(app, client, sign, runner):
    sign_two_and_approve(sign, runner)
    sent_days_ago(app, app.config["PURGE_CONTACTS_DAYS"] + 1)
    result = runner.invoke(args=["signatures", "purge-contacts"])
    assert "test-letter: purged the contact details of 1 sign-on(s)" in result.output
    purged, kept = signatures(app)
    assert (purged.email, purged.contact_name, purged.contact_purged_at is not None) == (
        "",
        "",
        True,
    )
    assert purged.name == "Transitional Justice Working Group"  # the public name stays
    assert kept.email == "stay@example.org"  # opted in to updates
    with app.app_context():
        mails = {m.signature_id: m for m in db.session.scalars(sa.select(OutgoingMail))}
    assert mails[purged.id].raw == "" and mails[purged.id].recipient == ""
    assert "office@tjwg" not in mails[kept.id].raw
    assert (
        "Transitional Justice Working Group" in client.get("/letters/test-letter/signatories").text
    )
    again = runner.invoke(args=["signatures", "purge-contacts"])
    assert "purged the contact details of 0 sign-on(s)" in again.output


def test_nothing_is_purged_before_it_is_due(app, sign, runner):
    sign_two_and_approve(sign, runner)
    sent_days_ago(app, 10)
    result = runner.invoke(args=["signatures", "purge-contacts"])
    assert result.output.strip() == "no letter is due for purging"
    assert signatures(app)[0].email == "office@tjwg.example.org"


def test_purge_now_on_request(app, sign, runner):
    sign_two_and_approve(sign, runner)
    result = runner.invoke(args=["signatures", "purge-contacts", "test-letter", "--now"])
    assert "purged the contact details of 1 sign-on(s)" in result.output
    assert signatures(app)[0].email == ""
