"""Signers confirm by email, ask for the link again, correct and withdraw."""

import email
import email.policy
import os
import re
import subprocess
import sys
import time

import pytest
import sqlalchemy as sa

from letterapp.db import db
from letterapp.models import AuditEntry, MailStatus, OutgoingMail, Signature, Status

from .conftest import PROJECT, SIGNER, csrf_token

LINK = re.compile(r"http://localhost(/letters/test-letter/(?:confirm|signon)/[\w.-]+)")


def mails(app) -> list[OutgoingMail]:
    with app.app_context():
        return list(db.session.scalars(sa.select(OutgoingMail).order_by(OutgoingMail.id)))


def links(message: OutgoingMail) -> dict[str, str]:
    """The confirm and manage links in a stored message, as paths."""
    body = email.message_from_string(message.raw, policy=email.policy.default)
    text = body.get_body(("plain",)).get_content()
    found = LINK.findall(text)
    return {("confirm" if "/confirm/" in path else "manage"): path for path in found}


def only_signature(app) -> Signature:
    with app.app_context():
        [signature] = db.session.scalars(sa.select(Signature))
        return signature


def audit_actions(app) -> list[str]:
    with app.app_context():
        return [e.action for e in db.session.scalars(sa.select(AuditEntry).order_by(AuditEntry.id))]


def press(client, path: str, prefix: str = ""):
    """Press the button on a signer's page: GET it for the token, then POST."""
    page = client.get(path)
    token = csrf_token(page.text)
    return client.post(path, data={f"{prefix}csrf_token": token, "csrf_token": token})


def test_sign_on_sends_a_confirmation_link_that_needs_a_button(app, client, sign):
    response = sign()
    page = client.get(response.headers["Location"]).text
    assert "Check your inbox" in page and "office@tjwg.example.org" in page
    [message] = mails(app)
    assert message.recipient == "office@tjwg.example.org"
    assert message.subject.startswith("Confirm your sign-on")
    confirm = links(message)["confirm"]
    # Mail scanners open links: a GET shows the button and changes nothing.
    page = client.get(confirm)
    assert page.status_code == 200 and "<button" in page.text
    assert only_signature(app).status == Status.PENDING
    assert press(client, confirm).status_code == 302
    assert only_signature(app).status == Status.CONFIRMED
    assert "Your sign-on is confirmed" in client.get(confirm).text
    assert audit_actions(app) == ["confirmed"]


def test_auto_moderation_approves_on_confirmation(app, client, sign, write_letter):
    write_letter(replace={"closes:": "moderation: auto\ncloses:"})
    sign()
    press(client, links(mails(app)[0])["confirm"])
    assert only_signature(app).status == Status.APPROVED
    assert "1 signatory" in client.get("/letters/test-letter").text


def test_confirmation_over_real_smtp(app, client, sign, smtp_server):
    app.config["SMTP_URL"] = smtp_server.url
    sign()
    [received] = smtp_server.messages
    assert received["To"] == "office@tjwg.example.org"
    text = received.get_body(("plain",)).get_content()
    confirm = LINK.search(text).group(1)
    assert "/confirm/" in confirm
    press(client, confirm)
    assert only_signature(app).status == Status.CONFIRMED
    assert mails(app)[0].status == MailStatus.SENT


@pytest.mark.parametrize(
    ("config", "mangle", "message"),
    [
        ({"CONFIRM_DAYS": -1}, lambda link: link, "This link has expired."),
        ({}, lambda link: link[:-3] + ("aaa" if not link.endswith("aaa") else "bbb"), "not valid"),
        ({}, lambda link: link.replace("/confirm/", "/signon/"), "not valid"),
    ],
)
def test_expired_or_tampered_links_get_a_clear_page(app, client, sign, config, mangle, message):
    sign()
    app.config.update(config)
    link = mangle(links(mails(app)[0])["confirm"])
    page = client.get(link)
    assert page.status_code == 400
    assert message in page.text and "ask for a new confirmation link" in page.text
    assert client.post(link).status_code in (400, 404)
    assert only_signature(app).status == Status.PENDING


def test_repeat_sign_on_looks_the_same_and_is_capped(app, client, sign):
    first = client.get(sign().headers["Location"]).text
    for _ in range(6):
        again = client.get(sign(name="transitional justice  working group").headers["Location"])
        assert again.text == first  # the page never tells that the address had signed
    sent = mails(app)
    assert len(sent) == 5  # the cap: one confirmation and four repeats
    assert "already recorded" in sent[1].raw
    assert len(db_rows(app)) == 1


def db_rows(app):
    with app.app_context():
        return list(db.session.scalars(sa.select(Signature)))


def test_resend_sends_only_to_waiting_sign_ons_and_reveals_nothing(app, client, sign):
    sign()
    page = client.get("/letters/test-letter/resend")
    for address in ("OFFICE@tjwg.example.org", "nobody@example.org"):
        response = client.post(
            "/letters/test-letter/resend",
            data={"email": address, "csrf_token": csrf_token(page.text)},
            follow_redirects=True,
        )
        assert "If a sign-on with this address is waiting for confirmation" in response.text
    assert [m.recipient for m in mails(app)] == ["office@tjwg.example.org"] * 2


def test_signer_corrects_their_sign_on(app, client, sign, runner):
    sign()
    runner.invoke(args=["signatures", "approve", "test-letter", "--all-pending"])
    manage = links(mails(app)[0])["manage"]
    page = client.get(manage)
    assert 'value="Transitional Justice Working Group"' in page.text
    response = client.post(
        manage,
        data={
            "csrf_token": csrf_token(page.text),
            "kind": "organization",
            "name": "Transitional Justice Working Group – Seoul",
            "acronym": "TJWG",
            "contact_name": "Lee Young-hee",
            "country": "South Korea",
        },
    )
    assert response.status_code == 302
    signature = only_signature(app)
    assert signature.name == "Transitional Justice Working Group – Seoul"
    assert signature.email == "office@tjwg.example.org"  # the confirmed address stays
    # The letter must not change without the coordinators seeing it.
    assert signature.status == Status.CONFIRMED
    assert audit_actions(app)[-1] == "corrected"


def test_signer_withdraws_with_a_post_only(app, client, sign):
    sign()
    manage = links(mails(app)[0])["manage"]
    client.get(manage)
    client.get(manage + "/withdraw")  # a GET does nothing (405)
    assert only_signature(app).status == Status.PENDING
    page = client.get(manage)
    response = client.post(
        manage + "/withdraw", data={"withdraw-csrf_token": csrf_token(page.text)}
    )
    assert response.status_code == 302
    assert only_signature(app).status == Status.WITHDRAWN
    assert "This sign-on is withdrawn" in client.get(manage).text


def test_no_changes_after_the_letter_closes(app, client, sign, write_letter):
    sign()
    manage = links(mails(app)[0])["manage"]
    token = csrf_token(client.get(manage).text)
    write_letter(replace={"closes: 2099-12-31T23:59:00+09:00": "closes: 2020-06-30T18:00:00+02:00"})
    assert "can no longer be changed" in client.get(manage).text
    client.post(manage + "/withdraw", data={"withdraw-csrf_token": token})
    assert only_signature(app).status == Status.PENDING


def test_mail_failure_never_loses_the_sign_on(app, client, sign):
    app.config["SMTP_URL"] = "smtp://127.0.0.1:9"  # nothing listens there
    response = sign()
    assert response.status_code == 302
    assert only_signature(app).status == Status.PENDING
    [message] = mails(app)
    assert message.status == MailStatus.FAILED and message.last_error


def write_transactions(app, action) -> list[list[str]]:
    """The statements that wrote, per transaction, while `action()` ran."""
    transactions: list[list[str]] = [[]]

    def statement(conn, cursor, sql, parameters, context, executemany):
        transactions[-1].append(" ".join(sql.split()[:3]))

    def commit(conn):
        transactions.append([])

    with app.app_context():
        engine = db.engine
    sa.event.listen(engine, "before_cursor_execute", statement)
    sa.event.listen(engine, "commit", commit)
    try:
        action()
    finally:
        sa.event.remove(engine, "before_cursor_execute", statement)
        sa.event.remove(engine, "commit", commit)
    writes = ("INSERT", "UPDATE", "DELETE")
    return [t for t in transactions if any(s.startswith(writes) for s in t)]


def test_sign_on_stores_its_confirmation_in_one_transaction_and_sends_it_after(app, client, sign):
    sign(email="first@example.org")  # the letter's first sign-on records its revision too
    page = client.get("/letters/test-letter")
    data = {**SIGNER, "csrf_token": csrf_token(page.text)}
    responses = []
    [transaction] = write_transactions(
        app, lambda: responses.append(client.post("/letters/test-letter", data=data))
    )
    assert any(s.startswith("INSERT INTO signature") for s in transaction)
    assert any(s.startswith("INSERT INTO outgoing_mail") for s in transaction)
    message = mails(app)[-1]
    assert message.status == MailStatus.QUEUED and message.attempts == 0
    # The message is built and sent once the response is (the test client closes it here):
    # one transaction claims it, one records it.
    assert len(write_transactions(app, responses[0].close)) == 2
    message = mails(app)[-1]
    assert message.status == MailStatus.SENT and message.recipient == SIGNER["email"]
    assert message.subject.startswith("Confirm your sign-on") and "/confirm/" in message.raw
    signature = db_rows(app)[-1]
    assert signature.authorised and signature.messages_sent == 1


# A web worker that dies after storing a sign-on, before its confirmation is sent.
DIES_AFTER_SIGN_ON = """
import os, re, sys
from letterapp import create_app
client = create_app().test_client()
page = client.get("/letters/test-letter").text
token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
fields = dict(kind="individual", name="Kim Example", email="kim@example.org", consent="y")
response = client.post("/letters/test-letter", data={**fields, "csrf_token": token})
os._exit(0 if response.status_code == 302 else 1)  # no response closed, no job run
"""


def sign_on_and_die(app, smtp_server, tmp_path) -> None:
    env = {
        **os.environ,
        "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
        "LETTERS_DIR": app.config["LETTERS_DIR"],
        "OUTBOX_DIR": app.config["OUTBOX_DIR"],
        "SECRET_KEY": app.config["SECRET_KEY"],
        "SMTP_URL": smtp_server.url,
        "RATELIMIT_ENABLED": "false",
    }
    subprocess.run(
        [sys.executable, "-c", DIES_AFTER_SIGN_ON], env=env, cwd=PROJECT, check=True, timeout=60
    )
    assert smtp_server.messages == []
    [message] = mails(app)
    assert message.status == MailStatus.QUEUED and message.recipient == "kim@example.org"


def test_a_confirmation_left_by_a_dead_worker_is_sent_by_mail_retry(
    app, client, runner, smtp_server, tmp_path
):
    sign_on_and_die(app, smtp_server, tmp_path)
    app.config["SMTP_URL"] = smtp_server.url
    result = runner.invoke(args=["mail", "retry"])
    assert result.exit_code == 0 and "sent 1 message(s); 0 still failing" in result.output
    [received] = smtp_server.messages
    assert received["To"] == "kim@example.org"
    assert received["Subject"].startswith("Confirm your sign-on")
    confirm = LINK.search(received.get_body(("plain",)).get_content()).group(1)
    assert press(client, confirm).status_code == 302
    assert only_signature(app).status == Status.CONFIRMED
    assert runner.invoke(args=["mail", "retry"]).output.startswith("sent 0 message(s)")
    assert len(smtp_server.messages) == 1


def test_the_next_sign_on_sends_what_a_dead_worker_left(app, sign, smtp_server, tmp_path):
    sign_on_and_die(app, smtp_server, tmp_path)
    app.config["SMTP_URL"] = smtp_server.url
    sign()
    received = sorted(m["To"] for m in smtp_server.messages)
    assert received == ["kim@example.org", "office@tjwg.example.org"]
    assert {m.status for m in mails(app)} == {MailStatus.SENT}


def test_confirmations_in_quick_succession_go_in_one_batch_even_if_no_request_follows(
    app, sign, smtp_server
):
    app.config.update(SMTP_URL=smtp_server.url, MAIL_BATCH_SECONDS=1)
    addresses = [f"signer{n}@example.org" for n in range(3)]
    for address in addresses:
        assert sign(email=address).status_code == 302
    # At most the first went at once: the others wait for the worker to be free.
    assert len(smtp_server.messages) <= 1
    deadline = time.monotonic() + 15
    while {m.status for m in mails(app)} != {MailStatus.SENT} and time.monotonic() < deadline:
        time.sleep(0.05)  # the outcomes are recorded once the whole batch is sent
    assert {m.status for m in mails(app)} == {MailStatus.SENT}
    assert sorted(m["To"] for m in smtp_server.messages) == addresses
