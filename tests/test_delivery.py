"""Delivering a letter: the PDF emailed to its recipients through a real SMTP server, proof of
it, the PDF kept as sent, and word to each signatory."""

import email
import email.policy
import hashlib
import io
import re
import socket
import threading

import pytest
import sqlalchemy as sa
from pypdf import PdfReader

from letterapp import delivery, letter_date
from letterapp.db import db
from letterapp.letters import LetterError, load_letter
from letterapp.models import LetterRecord, MailStatus, OutgoingMail, Signature

from .conftest import csrf_token
from .fixtures_smtp import free_port
from .test_languages import EN_TITLE, KO_LETTER, KO_TITLE

SLUG = "test-letter"
BASE = f"/manage/letters/{SLUG}"
DELIVER = f"{BASE}/deliver"
RECIPIENTS = """\
recipients:
  to:
    - High Commissioner Amara Türk-Lindqvist <hc@ohchr.example.org>
    - chief.section@ohchr.example.org
  cc:
    - 김수진 <kim@ohchr.example.org>
  bcc:
    - archive@coalition.example.net
closes: 2099"""
ENVELOPE = [
    ("hc@ohchr.example.org",),
    ("chief.section@ohchr.example.org",),
    ("kim@ohchr.example.org",),
    ("archive@coalition.example.net",),
]


@pytest.fixture
def addressed(write_letter):
    """The test letter with recipients in its front matter."""
    return write_letter(replace={"closes: 2099": RECIPIENTS})


@pytest.fixture
def signed(sign, runner, addressed):
    """Two approved signatories, signed before the SMTP server is switched on."""
    sign()
    sign(kind="individual", name="김민지", acronym="", contact_name="", email="minji@example.org")
    result = runner.invoke(args=["signatures", "approve", SLUG, "--all-pending"])
    assert result.exit_code == 0, result.output


@pytest.fixture
def smtp(app, smtp_server, signed):
    """From here on, email goes to the real SMTP server on 127.0.0.1."""
    app.config.update(SMTP_URL=smtp_server.url, NOTIFY_PAUSE_SECONDS=0)
    return smtp_server


def letter(app):
    return load_letter(app.config["LETTERS_DIR"], SLUG)


def records(app, purpose: str = "delivery") -> list[OutgoingMail]:
    with app.app_context():
        rows = db.session.scalars(
            sa.select(OutgoingMail).where(OutgoingMail.purpose == purpose).order_by(OutgoingMail.id)
        )
        return list(rows)


def record(app) -> LetterRecord | None:
    """The letter's record, every column loaded (the PDF is loaded only when read)."""
    with app.app_context():
        query = sa.select(LetterRecord).where(LetterRecord.slug == SLUG)
        return db.session.scalar(query.options(sa.orm.undefer(LetterRecord.sent_pdf)))


def pdf_name(app) -> str:
    return f"{SLUG}-{letter(app).today().isoformat()}.pdf"


def pdf_text(data: bytes) -> str:
    assert data.startswith(b"%PDF")
    reader = PdfReader(io.BytesIO(data))
    return " ".join(" ".join(page.extract_text() for page in reader.pages).split())


def send_from_page(client, data: dict | None = None):
    """Preview the message on the delivery page, tick the box and press Send."""
    page = client.get(f"{DELIVER}?preview=1").text
    digest = re.search(r'name="digest" type="hidden" value="([^"]+)"', page).group(1)
    form = {"csrf_token": csrf_token(page), "digest": digest, "checked": "y", **(data or {})}
    return client.post(f"{DELIVER}/send", data=form)


# The letter file's `recipients`.


def test_recipients_are_read_from_the_front_matter(app, addressed):
    recipients = letter(app).recipients
    assert recipients.to == (
        "High Commissioner Amara Türk-Lindqvist <hc@ohchr.example.org>",
        "chief.section@ohchr.example.org",
    )
    assert recipients.cc == ("김수진 <kim@ohchr.example.org>",)
    assert recipients.bcc == ("archive@coalition.example.net",)


BAD_RECIPIENTS = [
    ("    - chief.section@ohchr", 18, "recipients.to: 'chief.section@ohchr' is not a valid email"),
    (
        '    - "Evil\\r\\nBcc: evil@example.net <hc@ohchr.example.org>"',
        18,
        "recipients.to contains a line break",
    ),
    ('    - "hc@ohchr.example.org\\n"', 18, "recipients.to contains a line break"),
    ("    - a@example.org, b@example.org", 18, "must be one email address"),
    ("    - HC@ohchr.example.org", 18, "HC@ohchr.example.org is already in recipients.to"),
]


@pytest.mark.parametrize(("line", "number", "message"), BAD_RECIPIENTS)
def test_a_bad_address_is_reported_with_its_line(app, write_letter, line, number, message):
    write_letter(
        replace={"closes: 2099": RECIPIENTS, "    - chief.section@ohchr.example.org": line}
    )
    with pytest.raises(LetterError) as caught:
        letter(app)
    reported = [str(p) for p in caught.value.problems]
    assert any(r.startswith(f"{SLUG}.md:{number}: ") and message in r for r in reported), reported


@pytest.mark.parametrize(
    ("text", "number", "message"),
    [
        ("recipients: hc@ohchr.example.org", 15, "'recipients' must have lists"),
        ("recipients:\n  to: hc@ohchr.example.org", 16, "'recipients.to' must be a list"),
        ("recipients:\n  cc:\n    - a@example.org", 15, "give at least one 'to' address"),
        ("recipients:\n  to: [a@example.org]\n  from: [b@example.org]", 17, "unknown key 'from'"),
    ],
)
def test_a_bad_recipients_key_is_reported(app, write_letter, text, number, message):
    write_letter(replace={"closes: 2099": text + "\ncloses: 2099"})
    with pytest.raises(LetterError) as caught:
        letter(app)
    reported = [str(p) for p in caught.value.problems]
    assert any(r.startswith(f"{SLUG}.md:{number}: ") and message in r for r in reported), reported


# Sending from the workspace.


def test_deliver_from_the_workspace_to_to_cc_and_bcc(app, client, coordinator, smtp):
    page = client.get(DELIVER).text
    assert "Not sent yet" in page and "archive@coalition.example.net" in page
    preview = client.get(f"{DELIVER}?preview=1").text
    name = pdf_name(app)
    assert name in preview and "KiB" in preview
    assert "(in the envelope only)" in preview
    assert smtp.messages == [] and records(app) == []  # a preview stores and sends nothing

    response = send_from_page(client)
    assert response.status_code == 302
    page = client.get(DELIVER).text
    assert "Sent to all 4 recipient(s)." in page and "Sent on" in page

    assert [m.rcpt_tos for m in smtp.messages] == ENVELOPE
    first = smtp.messages[0]
    # mail.queue_mail takes one To; the other addressees are copied openly.
    assert first["To"].addresses[0].display_name == "High Commissioner Amara Türk-Lindqvist"
    assert len(first["To"].addresses) == 1
    assert [a.addr_spec for a in first["Cc"].addresses] == [
        "chief.section@ohchr.example.org",
        "kim@ohchr.example.org",
    ]
    assert first["Subject"] == "Open letter on the rights of families of the disappeared"
    for received in smtp.messages:
        assert received["Bcc"] is None and b"archive@" not in received.content
        assert received["Message-ID"] == first["Message-ID"]
    text = first.get_body(("plain",)).get_content()
    assert text.startswith("Dear High Commissioner Türk-Lindqvist,")
    assert "with its 2 signatories" in text
    html = first.get_body(("html",)).get_content()
    assert "<p>Dear High Commissioner Türk-Lindqvist,</p>" in html
    [attachment] = first.iter_attachments()
    assert attachment.get_filename() == name
    assert attachment.get_content_type() == "application/pdf"
    content = pdf_text(attachment.get_content())
    assert "Open letter on the rights of families of the disappeared" in content
    assert "Transitional Justice Working Group (TJWG)" in content and "김민지" in content

    rows = records(app)
    assert [(r.recipient, r.status, r.attempts) for r in rows] == [
        (address, MailStatus.SENT, 1) for (address,) in ENVELOPE
    ]
    assert [r.smtp_reply for r in rows] == [
        f"250 2.0.0 Ok: queued as TEST{n}" for n in (1, 2, 3, 4)
    ]
    sent = record(app)
    assert sent.sent_at is not None and sent.sent_as_of == letter(app).today()
    assert sent.sent_pdf == attachment.get_content() and sent.sent_pdf_name == name


def test_the_cover_message_is_edited_and_kept(app, client, coordinator, smtp):
    page = client.get(DELIVER).text
    form = {
        "csrf_token": csrf_token(page),
        "to": "Office <office@ohchr.example.org>\r\n\r\n",
        "cc": "",
        "bcc": "bcc@coalition.example.net",
        "reply_to": "Coordinator <coord@coalition.example.net>",
        "subject": "Open letter: the families of the disappeared",
        "cover": "Dear High Commissioner,\r\n\r\nPlease find **our letter** attached.\r\n\r\n"
        "Sincerely,\r\nThe coordinators",
    }
    response = client.post(DELIVER, data=form)
    assert response.status_code == 302 and "preview=1" in response.headers["Location"]
    preview = client.get(f"{DELIVER}?preview=1").text
    assert "<strong>our letter</strong>" in preview and "Sincerely,<br>" in preview
    assert "Edited here: cover, recipients, subject" in preview
    assert load_letter(app.config["LETTERS_DIR"], SLUG).recipients.to[0].startswith("High")

    send_from_page(client)
    [to, bcc] = smtp.messages
    assert to.rcpt_tos == ("office@ohchr.example.org",) and bcc.rcpt_tos == (
        "bcc@coalition.example.net",
    )
    assert to["Subject"] == "Open letter: the families of the disappeared"
    assert to["Reply-To"] == "Coordinator <coord@coalition.example.net>"
    assert to.get_body(("plain",)).get_content() == (
        "Dear High Commissioner,\r\n\r\nPlease find **our letter** attached.\r\n\r\n"
        "Sincerely,\r\nThe coordinators\r\n"
    )
    assert (
        "Please find <strong>our letter</strong> attached." in to.get_body(("html",)).get_content()
    )


def test_the_file_stays_the_source_of_defaults(app, client, coordinator, smtp, write_letter):
    page = client.get(DELIVER).text
    form = {"csrf_token": csrf_token(page), "to": "other@example.org", "cc": "", "bcc": ""}
    form |= {"subject": "A subject", "cover": "A message."}
    client.post(DELIVER, data=form)
    assert "other@example.org" in client.get(DELIVER).text
    page = client.get(DELIVER).text
    client.post(f"{DELIVER}/reset", data={"csrf_token": csrf_token(page)})
    page = client.get(DELIVER).text
    assert "other@example.org" not in page and "hc@ohchr.example.org" in page
    with app.app_context():
        saved = delivery.find_record(SLUG)
        assert (saved.recipients, saved.subject, saved.cover) == (None, None, None)


INJECTIONS = [
    ({"subject": "Hello\r\nBcc: evil@example.net"}, "subject", "must be one line"),
    ({"subject": "Hello\u2028Bcc: evil@example.net"}, "subject", "must be one line"),
    ({"to": "Evil\rBcc: evil@example.net <hc@ohchr.example.org>"}, "to", "contains a line break"),
    ({"cc": "kim@ohchr.example.org\rBcc: evil@example.net"}, "cc", "contains a line break"),
    ({"bcc": "Bcc: evil@example.net"}, "bcc", "must be one email address"),
    ({"reply_to": "Coordinator\r\n <coord@example.org>"}, "reply_to", "contains a line break"),
    ({"to": "not an address"}, "to", "must be one email address"),
    ({"to": ""}, "to", "give at least one"),
]


@pytest.mark.parametrize(("fields", "name", "message"), INJECTIONS)
def test_line_breaks_and_bad_addresses_are_refused(
    app, client, coordinator, smtp, fields, name, message
):
    page = client.get(DELIVER).text
    form = {"csrf_token": csrf_token(page), "to": "hc@ohchr.example.org", "cc": "", "bcc": ""}
    form |= {"subject": "Subject", "cover": "Cover.", **fields}
    response = client.post(DELIVER, data=form)
    assert response.status_code == 400
    error = re.search(rf'<p class="error" id="{name}-error">([^<]*)</p>', response.text)
    assert error and message in error.group(1).replace("&#39;", "'"), response.text
    assert record(app) is None or record(app).subject is None
    assert smtp.messages == [] and records(app) == []


def test_a_message_changed_since_its_preview_is_not_sent(app, client, coordinator, smtp):
    page = client.get(f"{DELIVER}?preview=1").text
    digest = re.search(r'name="digest" type="hidden" value="([^"]+)"', page).group(1)
    with app.app_context():  # another coordinator edits the message meanwhile
        current = delivery.draft(letter(app))
        changed = delivery.Draft(current.recipients, "New subject", current.cover, "", frozenset())
        delivery.save_draft(letter(app), changed, "other@example.org")
    form = {"csrf_token": csrf_token(page), "digest": digest, "checked": "y"}
    client.post(f"{DELIVER}/send", data=form)
    assert "changed since you saw it" in client.get(DELIVER).text
    assert smtp.messages == [] and records(app) == []


def test_sending_needs_the_box_ticked(app, client, coordinator, smtp):
    page = client.get(f"{DELIVER}?preview=1").text
    digest = re.search(r'name="digest" type="hidden" value="([^"]+)"', page).group(1)
    client.post(f"{DELIVER}/send", data={"csrf_token": csrf_token(page), "digest": digest})
    assert "Tick the box" in client.get(DELIVER).text
    assert smtp.messages == []


def test_a_double_click_and_a_repeated_command_send_once(app, client, runner, coordinator, smtp):
    page = client.get(f"{DELIVER}?preview=1").text
    digest = re.search(r'name="digest" type="hidden" value="([^"]+)"', page).group(1)
    form = {"csrf_token": csrf_token(page), "digest": digest, "checked": "y"}
    assert client.post(f"{DELIVER}/send", data=form).status_code == 302
    assert client.post(f"{DELIVER}/send", data=form).status_code == 302  # the second click
    page = client.get(DELIVER).text
    client.post(f"{DELIVER}/send", data={"csrf_token": csrf_token(page)})
    result = runner.invoke(args=["letter", "send", SLUG, "--yes"])
    assert result.exit_code == 0 and "already sent to all 4 recipient(s)" in result.output
    assert [m.rcpt_tos for m in smtp.messages] == ENVELOPE
    assert all(r.attempts == 1 for r in records(app))


def test_concurrent_sends_prepare_once_and_send_each_recipient_once(app, smtp):
    outcomes = []

    def send() -> None:
        with app.app_context():
            try:
                outcomes.append(delivery.send(letter(app), "thread"))
            except delivery.DeliveryError as error:
                outcomes.append(str(error))

    threads = [threading.Thread(target=send) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert any(isinstance(o, delivery.Progress) for o in outcomes), outcomes
    assert all(isinstance(o, delivery.Progress) or "Another send" in o for o in outcomes)
    assert sorted(m.rcpt_tos for m in smtp.messages) == sorted(ENVELOPE)
    assert len(records(app)) == 4


def test_a_run_holding_the_lease_keeps_others_out(app, smtp):
    with app.app_context():
        taken = delivery.DeliveryError, "Another send"
        with delivery._lease(SLUG), pytest.raises(taken[0], match=taken[1]):
            delivery.send(letter(app), "second")
        delivery.send(letter(app), "third")
    assert len(smtp.messages) == 4


# Failures: down, refused, timed out.


def test_server_down_then_up_retry_sends_only_the_missing(app, client, coordinator, smtp, runner):
    app.config["SMTP_URL"] = f"smtp://127.0.0.1:{free_port()}"
    send_from_page(client)  # no crash
    page = client.get(DELIVER).text
    assert "0 of 4 recipient(s) have it" in page and "Connection refused" in page
    assert all(r.status == MailStatus.FAILED and r.attempts == 1 for r in records(app))
    assert record(app).sent_at is None and record(app).sent_pdf is not None
    assert "delivered on" not in client.get(f"/letters/{SLUG}").text

    app.config["SMTP_URL"] = smtp.url
    smtp.refuse("kim@ohchr.example.org")
    result = runner.invoke(args=["letter", "send", SLUG, "--yes"])
    assert result.exit_code == 1
    assert "Recipient address rejected" in result.output
    assert "1 recipient(s) do not have it yet" in result.output
    assert [m.rcpt_tos for m in smtp.messages] == [ENVELOPE[0], ENVELOPE[1], ENVELOPE[3]]
    # Every To address has it: the letter is sent, though a Cc is missing.
    assert record(app).sent_at is not None

    smtp.handler.refused.clear()
    page = client.get(DELIVER).text
    assert "1 recipient(s) do not have it yet" in page
    client.post(f"{DELIVER}/send", data={"csrf_token": csrf_token(page)})
    assert [m.rcpt_tos for m in smtp.messages] == [*ENVELOPE[:2], ENVELOPE[3], ENVELOPE[2]]
    assert [r.attempts for r in records(app)] == [2, 2, 3, 2]
    assert all(r.status == MailStatus.SENT for r in records(app))
    # The retry sent the message prepared the first time, not a new one.
    assert len({m["Message-ID"] for m in smtp.messages}) == 1


def test_a_retry_from_the_email_page_or_mail_retry_completes_the_delivery(
    app, client, runner, smtp
):
    app.config["SMTP_URL"] = f"smtp://127.0.0.1:{free_port()}"
    assert runner.invoke(args=["letter", "send", SLUG, "--yes"]).exit_code == 1
    assert "delivered on" not in client.get(f"/letters/{SLUG}").text
    app.config["SMTP_URL"] = smtp.url
    assert runner.invoke(args=["mail", "retry"]).exit_code == 0
    assert [m.rcpt_tos for m in smtp.messages] == ENVELOPE
    assert "This letter was delivered on" in client.get(f"/letters/{SLUG}").text
    assert client.get(f"/letters/{SLUG}.pdf").data == record(app).sent_pdf
    assert runner.invoke(args=["letter", "send", SLUG, "--yes"]).exit_code == 0
    assert len(smtp.messages) == 4


def test_a_refused_recipient_is_recorded_with_the_servers_reply(app, runner, smtp):
    smtp.refuse("hc@ohchr.example.org")
    result = runner.invoke(args=["letter", "send", SLUG, "--yes"])
    assert result.exit_code == 1
    refused = records(app)[0]
    assert refused.status == MailStatus.FAILED
    assert refused.last_error.endswith(
        "recipient hc@ohchr.example.org refused: 550 5.1.1 <hc@ohchr.example.org>: "
        "Recipient address rejected: User unknown"
    )
    assert record(app).sent_at is None  # a To address does not have it


def test_a_server_that_never_answers_times_out_into_a_record(app, runner, smtp):
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()  # accepts connections, never says a word
        app.config.update(SMTP_URL=f"smtp://127.0.0.1:{silent.getsockname()[1]}", SMTP_TIMEOUT=0.3)
        result = runner.invoke(args=["letter", "send", SLUG, "--yes"])
    assert result.exit_code == 1
    assert all("timed out" in r.last_error for r in records(app))
    app.config["SMTP_URL"] = smtp.url
    assert runner.invoke(args=["letter", "send", SLUG, "--yes"]).exit_code == 0
    assert len(smtp.messages) == 4


def test_no_recipients_is_a_clear_error(app, runner, smtp, write_letter):
    write_letter()  # the letter without `recipients`
    result = runner.invoke(args=["letter", "send", SLUG, "--yes"])
    assert result.exit_code == 1 and "No one to send it to" in result.output
    assert records(app) == [] and smtp.messages == []


# The command line.


def test_dry_run_writes_the_complete_message_and_sends_nothing(app, runner, smtp, tmp_path):
    out = tmp_path / "message.eml"
    result = runner.invoke(args=["letter", "send", SLUG, "--dry-run", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert f"wrote the complete message to {out}; nothing was sent" in result.output
    assert "Bcc:      archive@coalition.example.net" in result.output
    assert smtp.messages == [] and records(app) == [] and record(app) is None
    with out.open("rb") as file:
        message = email.message_from_binary_file(file, policy=email.policy.default)
    assert message["To"].addresses[0].addr_spec == "hc@ohchr.example.org"
    assert message["Bcc"] is None and "archive@" not in out.read_text()
    assert "Dear High Commissioner" in message.get_body(("plain",)).get_content()
    assert message.get_body(("html",)) is not None
    [attachment] = message.iter_attachments()
    assert attachment.get_filename() == pdf_name(app)
    assert "김민지" in pdf_text(attachment.get_content())


def test_dry_run_default_file_is_named_after_the_pdf(app, runner, smtp, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(args=["letter", "send", SLUG, "--dry-run"])
    path = tmp_path / pdf_name(app).replace(".pdf", ".eml")
    assert result.exit_code == 0 and str(path) in result.output and path.exists()


def test_send_asks_first_and_stops_on_no(app, runner, smtp):
    result = runner.invoke(args=["letter", "send", SLUG], input="n\n")
    assert result.exit_code == 1 and "Send it to 4 recipient(s) now?" in result.output
    assert smtp.messages == [] and records(app) == [] and record(app) is None


# Proof, and the PDF as delivered.


def test_the_receipt_lists_each_recipient_with_message_id_and_reply(app, client, coordinator, smtp):
    send_from_page(client)
    response = client.get(f"{DELIVER}/receipt.txt")
    assert response.mimetype == "text/plain"
    assert f'filename="{SLUG}-delivery-receipt.txt"' in response.headers["Content-Disposition"]
    receipt = response.text
    rows = records(app)
    assert f"Message-ID:   {rows[0].message_id}" in receipt  # the message
    assert receipt.count(f"  Message-ID: {rows[0].message_id}") == 4  # and each recipient's
    for row, role in zip(rows, ["To", "Cc", "Cc", "Bcc"], strict=True):
        assert f"{role}: " in receipt and row.smtp_reply in receipt
    assert "To: High Commissioner Amara Türk-Lindqvist <hc@ohchr.example.org>" in receipt
    sent = record(app)
    assert f"Attachment:   {sent.sent_pdf_name}, {len(sent.sent_pdf)} bytes" in receipt
    assert hashlib.sha256(sent.sent_pdf).hexdigest() in receipt
    assert runner_receipt(app) == receipt


def runner_receipt(app) -> str:
    return app.test_cli_runner().invoke(args=["letter", "receipt", SLUG]).output


def test_the_pdf_as_delivered_is_served_unchanged(app, client, coordinator, smtp, sign, runner):
    send_from_page(client)
    [attachment] = smtp.messages[0].iter_attachments()
    delivered = attachment.get_content()
    public = client.get(f"/letters/{SLUG}.pdf")
    assert public.data == delivered
    assert f'filename="{pdf_name(app)}"' in public.headers["Content-Disposition"]
    day = letter(app).today()
    assert (
        f"This letter was delivered on {letter_date(day, letter(app))}"
        in client.get(f"/letters/{SLUG}").text
    )

    sign(name="Late Signatory Group", acronym="LSG", email="late@example.org")
    assert runner.invoke(args=["signatures", "approve", SLUG, "--all-pending"]).exit_code == 0
    again = client.get(f"/letters/{SLUG}.pdf").data
    assert again == delivered and "Late Signatory Group" not in pdf_text(again)


def test_the_pages_of_a_sent_letter_do_not_load_its_pdf(app, client, coordinator, smtp):
    send_from_page(client)
    visitor = app.test_client()
    statements = []

    def record(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    with app.app_context():
        sa.event.listen(db.engine, "before_cursor_execute", record)
        try:
            assert "This letter was delivered on" in visitor.get(f"/letters/{SLUG}").text
            assert visitor.get(f"/letters/{SLUG}/signatories").status_code == 200
            pdf = visitor.get(f"/letters/{SLUG}.pdf")
        finally:
            sa.event.remove(db.engine, "before_cursor_execute", record)
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF")
    loading = [statement for statement in statements if re.search(r"\bsent_pdf\b", statement)]
    assert len(loading) == 1, statements  # only for the PDF itself


# Telling the signatories.


def test_notify_sends_one_message_per_signatory(app, runner, smtp, sign):
    app.config.update(PUBLIC_URL="https://letters.example.org", NOTIFY_BATCH_SIZE=1)
    assert runner.invoke(args=["letter", "send", SLUG, "--yes"]).exit_code == 0
    app.config["SMTP_URL"] = None  # the late sign-on's confirmation goes to the outbox folder
    sign(name="Late Signatory Group", acronym="LSG", email="late@example.org")
    assert runner.invoke(args=["signatures", "approve", SLUG, "--all-pending"]).exit_code == 0
    app.config["SMTP_URL"] = smtp.url
    smtp.messages.clear()

    result = runner.invoke(args=["letter", "notify", SLUG, "--yes"])
    assert result.exit_code == 0, result.output
    assert "Telling the signatories" in result.output
    assert "2 sent, 0 failed, 0 not sent yet, of 2" in result.output
    # One message each, addressed to that signatory alone; the late signer is not in the PDF.
    assert sorted(m.rcpt_tos for m in smtp.messages) == [
        ("minji@example.org",),
        ("office@tjwg.example.org",),
    ]
    day = letter(app).today()
    for received in smtp.messages:
        assert [a.addr_spec for a in received["To"].addresses] == list(received.rcpt_tos)
        assert received["Cc"] is None and received["Bcc"] is None
        text = received.get_body(("plain",)).get_content()
        assert f"was delivered on {letter_date(day, letter(app))}" in text
        assert f"https://letters.example.org/letters/{SLUG}\r\n" in text
        assert f"https://letters.example.org/letters/{SLUG}.pdf" in text
        assert list(received.iter_attachments()) == []
    tjwg = next(m for m in smtp.messages if m.rcpt_tos == ("office@tjwg.example.org",))
    assert (
        'signed as "Transitional Justice Working Group (TJWG)"'
        in tjwg.get_body(("plain",)).get_content()
    )

    again = runner.invoke(args=["letter", "notify", SLUG, "--yes"])
    assert again.exit_code == 0 and "nothing to send" in again.output
    assert len(smtp.messages) == 2 and len(records(app, "notify")) == 2


def test_each_signatory_is_told_in_their_own_language(app, runner, smtp, write_letter):
    write_letter("test-letter.ko", KO_LETTER)
    with app.app_context():
        minji = db.session.scalar(sa.select(Signature).filter_by(email="minji@example.org"))
        minji.language = "ko"
        db.session.commit()
    app.config["PUBLIC_URL"] = "https://letters.example.org"
    assert runner.invoke(args=["letter", "send", SLUG, "--yes"]).exit_code == 0
    smtp.messages.clear()
    assert runner.invoke(args=["letter", "notify", SLUG, "--yes"]).exit_code == 0

    by_address = {m.rcpt_tos: m for m in smtp.messages}
    korean = by_address["minji@example.org",]
    assert korean["Subject"] == f"전달 완료: {KO_TITLE}"
    text = korean.get_body(("plain",)).get_content()
    day = letter_date(letter(app).today(), load_letter(app.config["LETTERS_DIR"], SLUG, "ko"))
    assert f"{day}에 다음 수신인에게 전달되었습니다:" in text and KO_TITLE in text
    assert f"https://letters.example.org/letters/{SLUG}?lang=ko" in text
    english = by_address["office@tjwg.example.org",]
    assert english["Subject"] == f"Delivered: {EN_TITLE}"
    assert "was delivered on" in english.get_body(("plain",)).get_content()


def test_notify_can_attach_the_pdf(app, runner, smtp):
    app.config["PUBLIC_URL"] = "https://letters.example.org"
    assert runner.invoke(args=["letter", "send", SLUG, "--yes"]).exit_code == 0
    smtp.messages.clear()
    assert runner.invoke(args=["letter", "notify", SLUG, "--yes", "--attach"]).exit_code == 0
    for received in smtp.messages:
        [attachment] = received.iter_attachments()
        assert attachment.get_content() == record(app).sent_pdf


def test_notify_needs_the_letter_sent_and_a_public_url(app, runner, smtp):
    result = runner.invoke(args=["letter", "notify", SLUG, "--yes"])
    assert result.exit_code == 1 and "has not been delivered yet" in result.output
    assert runner.invoke(args=["letter", "send", SLUG, "--yes"]).exit_code == 0
    result = runner.invoke(args=["letter", "notify", SLUG, "--yes"])
    assert result.exit_code == 1 and "Set PUBLIC_URL" in result.output
    assert records(app, "notify") == []


def test_notify_from_the_workspace_in_batches(app, client, coordinator, smtp):
    app.config.update(NOTIFY_BATCH_SIZE=1, NOTIFY_PAUSE_SECONDS=3600)
    send_from_page(client)
    smtp.messages.clear()
    page = client.get(DELIVER).text
    assert "Tell the signatories" in page and "0 sent, 0 failed, 2 not sent yet, of 2" in page
    client.post(f"{DELIVER}/notify", data={"csrf_token": csrf_token(page)})
    page = client.get(DELIVER).text
    assert "1 sent, 0 failed, 1 not sent yet, of 2" in page and len(smtp.messages) == 1
    # The next batch waits for NOTIFY_PAUSE_SECONDS.
    client.post(f"{DELIVER}/notify", data={"csrf_token": csrf_token(page)})
    assert "The next batch can go in" in client.get(DELIVER).text
    assert len(smtp.messages) == 1
    app.config["NOTIFY_PAUSE_SECONDS"] = 0
    page = client.get(DELIVER).text
    client.post(f"{DELIVER}/notify", data={"csrf_token": csrf_token(page)})
    page = client.get(DELIVER).text
    assert "2 sent, 0 failed, 0 not sent yet, of 2" in page
    assert sorted(m.rcpt_tos for m in smtp.messages) == [
        ("minji@example.org",),
        ("office@tjwg.example.org",),
    ]
    assert f"http://localhost/letters/{SLUG}" in smtp.messages[0].get_body(("plain",)).get_content()


def test_a_failed_notification_is_retried_alone(app, runner, smtp):
    app.config["PUBLIC_URL"] = "https://letters.example.org"
    assert runner.invoke(args=["letter", "send", SLUG, "--yes"]).exit_code == 0
    smtp.messages.clear()
    smtp.refuse("minji@example.org")
    result = runner.invoke(args=["letter", "notify", SLUG, "--yes"])
    assert result.exit_code == 1 and "1 sent, 1 failed" in result.output
    smtp.handler.refused.clear()
    result = runner.invoke(args=["letter", "notify", SLUG, "--yes"])
    assert result.exit_code == 0 and "2 sent, 0 failed" in result.output
    assert sorted(m.rcpt_tos for m in smtp.messages) == [
        ("minji@example.org",),
        ("office@tjwg.example.org",),
    ]


# Who may do what.

URLS = [
    ("GET", DELIVER),
    ("POST", DELIVER),
    ("POST", f"{DELIVER}/reset"),
    ("POST", f"{DELIVER}/send"),
    ("POST", f"{DELIVER}/notify"),
    ("GET", f"{DELIVER}/message.eml"),
    ("GET", f"{DELIVER}/receipt.txt"),
]


@pytest.mark.parametrize(("method", "url"), URLS)
def test_delivery_urls_refuse_an_anonymous_client(client, addressed, method, url):
    token = csrf_token(client.get(f"/letters/{SLUG}").text)
    response = client.open(url, method=method, data={"csrf_token": token})
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/manage/login")


@pytest.mark.parametrize(("method", "url"), [u for u in URLS if u[0] == "POST"])
def test_delivery_actions_refuse_a_post_without_csrf(app, client, coordinator, smtp, method, url):
    response = client.post(url, data={"checked": "y", "to": "x@example.org", "subject": "s"})
    assert response.status_code in (302, 400)
    assert smtp.messages == [] and records(app) == []
    assert record(app) is None or record(app).subject is None


def test_a_viewer_sees_but_cannot_send(app, client, make_coordinator, login, smtp):
    make_coordinator(role="viewer")
    login()
    page = client.get(f"{DELIVER}?preview=1").text
    assert "Only editors and owners" in page and "Send to" not in page
    token = csrf_token(client.get(f"/letters/{SLUG}").text)
    assert client.post(f"{DELIVER}/send", data={"csrf_token": token}).status_code == 403
    assert smtp.messages == []


def test_the_preview_downloads_as_an_eml_file(app, client, coordinator, smtp):
    response = client.get(f"{DELIVER}/message.eml")
    assert response.mimetype == "message/rfc822"
    message = email.message_from_bytes(response.data, policy=email.policy.default)
    assert message["Subject"] == "Open letter on the rights of families of the disappeared"
    assert records(app) == [] and smtp.messages == []
