"""Email is built with the standard library, stored, and sent to a real SMTP server."""

import email
import email.policy
import logging
import shutil
import ssl
import subprocess

import pytest
import sqlalchemy as sa
from aiosmtpd.smtp import AuthResult

from letterapp import create_app, mail
from letterapp.db import db
from letterapp.models import MailStatus, OutgoingMail

from .fixtures_smtp import free_port

PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n"
MESSAGE = {
    "to": "Zoë Ørsted <zoe@example.org>",
    "subject": "Open letter — signed",
    "text": "Thank you for signing.\n",
    "purpose": "test",
    "letter_slug": "test-letter",
}


@pytest.fixture
def ctx(app):
    """Run the test inside an app context, as a request or a command would."""
    with app.app_context():
        yield


def records() -> list[OutgoingMail]:
    db.session.expire_all()  # the CLI commits in a session of its own
    return list(db.session.scalars(sa.select(OutgoingMail).order_by(OutgoingMail.id)))


def closed_url() -> str:
    return f"smtp://127.0.0.1:{free_port()}"


def test_html_alternative_and_pdf_attachment_arrive_intact(smtp_app, smtp_server, ctx):
    record = mail.send_mail(
        **MESSAGE,
        html="<p>Thank you for <b>signing</b>.</p>",
        attachments=[("lettre ouverte é.pdf", "application/pdf", PDF)],
        reply_to="Coordinator <coord@example.org>",
    )
    assert record.status == MailStatus.SENT and record.attempts == 1
    assert record.sent_at is not None and record.last_error == ""
    assert record.smtp_reply == "250 2.0.0 Ok: queued as TEST1"
    [received] = smtp_server.messages
    assert received.mail_from == "letterapp@localhost"
    assert received.rcpt_tos == ("zoe@example.org",)
    assert received["Message-ID"] == record.message_id
    assert received["Subject"] == "Open letter — signed"
    assert received["To"].addresses[0].display_name == "Zoë Ørsted"
    assert received["Reply-To"] == "Coordinator <coord@example.org>"
    assert received["Date"].datetime.tzinfo is not None
    # SMTP carries CRLF line ends, which a text part keeps.
    assert received.get_body(("plain",)).get_content() == "Thank you for signing.\r\n"
    assert "<b>signing</b>" in received.get_body(("html",)).get_content()
    [attachment] = received.iter_attachments()
    assert attachment.get_filename() == "lettre ouverte é.pdf"
    assert attachment.get_content_type() == "application/pdf"
    assert attachment.get_content() == PDF
    # The message went out as stored, in 7-bit ASCII that any server takes.
    assert received.content.replace(b"\r\n", b"\n") == record.raw.encode()
    assert record.raw.isascii()


def test_cc_in_the_headers_and_bcc_only_in_the_envelope(smtp_app, smtp_server, ctx):
    first = mail.send_mail(
        **MESSAGE,
        cc=["Partner <partner@example.org>", "ZOE@example.org"],  # the second is `to` again
        bcc=["hidden@example.net"],
    )
    assert [(r.recipient, r.status) for r in records()] == [
        ("zoe@example.org", MailStatus.SENT),
        ("partner@example.org", MailStatus.SENT),
        ("hidden@example.net", MailStatus.SENT),
    ]
    assert first.recipient == "zoe@example.org"
    assert {r.message_id for r in records()} == {first.message_id}
    assert [m.rcpt_tos for m in smtp_server.messages] == [
        ("zoe@example.org",),
        ("partner@example.org",),
        ("hidden@example.net",),
    ]
    for received in smtp_server.messages:
        assert received["Cc"] == "Partner <partner@example.org>"
        assert received["Bcc"] is None
        assert b"hidden" not in received.content
    assert all("hidden" not in r.raw for r in records())


@pytest.mark.parametrize(
    "fields",
    [
        {"to": '"Doe, Jane (TJWG)" <jane@example.org>', "subject": "Short"},
        {"subject": "Confirm your sign-on: " + "열린 편지, 시민 공간을 위하여 " * 8},
        {"subject": "Confirm your sign-on: " + "a very long ascii title " * 8},
        {"subject": "Sign-on to =?utf-8?q?not_a_header?= and " + "x" * 90},
        {"subject": "Tabs\tand\tno breaks"},
        {"text": "Dear 김수진,\n\n" + "Zoë signed: https://example.org/c/" + "x" * 120 + "\n"},
    ],
)
def test_a_plain_text_message_reads_back_like_one_with_html(smtp_app, smtp_server, ctx, fields):
    """Plain text takes the quicker builder; a reader sees what the full one would send."""
    message = {**MESSAGE, **fields}
    plain = mail.send_mail(**message, cc=["Ünal Partner <partner@example.org>"])
    mail.send_mail(**message, cc=["Ünal Partner <partner@example.org>"], html="<p>x</p>")
    received, _, full, _ = smtp_server.messages
    assert plain.raw.isascii() and all(len(line) <= 78 for line in plain.raw.splitlines())
    assert not received.is_multipart() and received.get_content_type() == "text/plain"
    for header in ("From", "To", "Cc"):
        assert received[header] == full[header], header
    # Exactly: the full builder's folding may drop a space between two encoded words.
    assert received["Subject"] == message["subject"]
    assert received["To"].addresses == full["To"].addresses
    assert received["Message-ID"] == plain.message_id
    assert received.get_content() == full.get_body(("plain",)).get_content()
    assert received.get_content().replace("\r\n", "\n") == message["text"]
    # Plain ASCII words are sent as they read; anything else as encoded words.
    sent_subject = plain.raw.split("\nSubject: ", 1)[1]
    words = message["subject"] in (
        "Short",
        "Confirm your sign-on: " + "a very long ascii title " * 8,
    )
    assert sent_subject.startswith("=?utf-8?") != words, sent_subject[:80]


def test_an_address_that_needs_smtputf8(smtp_app, smtp_server, ctx):
    record = mail.send_mail(**{**MESSAGE, "to": "José <josé@exämple.org>"})
    assert record.status == MailStatus.SENT, record.last_error
    # The domain goes out in its ASCII form; only the local part needs SMTPUTF8.
    assert record.recipient == "josé@xn--exmple-cua.org"
    [received] = smtp_server.messages
    assert received.rcpt_tos == ("josé@xn--exmple-cua.org",)
    assert received["To"] == "José <josé@xn--exmple-cua.org>"


def test_without_smtp_url_the_message_is_written_to_the_outbox_dir(app, ctx, caplog):
    caplog.set_level(logging.INFO, logger=app.logger.name)
    app.config["SMTP_URL"] = None
    record = mail.send_mail(**{**MESSAGE, "purpose": "confirm"})
    path = app.config["OUTBOX_DIR"] + f"/{record.id}-confirm.eml"
    assert record.status == MailStatus.SENT and record.smtp_reply == f"written to {path}"
    assert path in caplog.text
    with open(path, "rb") as file:
        parsed = email.message_from_binary_file(file, policy=email.policy.default)
    assert parsed["Subject"] == MESSAGE["subject"]
    assert parsed["Message-ID"] == record.message_id
    assert parsed.get_body(("plain",)).get_content() == MESSAGE["text"]


def test_server_down_is_recorded_then_retry_sends_exactly_once(app, smtp_server, ctx):
    app.config["SMTP_URL"] = closed_url()
    record = mail.send_mail(**MESSAGE)  # no exception
    assert record.status == MailStatus.FAILED and record.attempts == 1
    assert "cannot connect to 127.0.0.1:" in record.last_error
    assert "Connection refused" in record.last_error
    assert record.sent_at is None
    app.config["SMTP_URL"] = smtp_server.url
    assert mail.retry_failed() == (1, 0)
    assert mail.retry_failed() == (0, 0)
    assert mail.deliver(record) is True
    assert len(smtp_server.messages) == 1
    [record] = records()
    assert record.status == MailStatus.SENT and record.attempts == 2
    assert record.last_error == "" and record.sent_at is not None


def test_a_refused_recipient_fails_with_the_servers_reply(smtp_app, smtp_server, ctx):
    smtp_server.refuse("nobody@example.org")
    record = mail.send_mail(**MESSAGE, cc=["nobody@example.org"])
    # The `to` recipient still gets the message; only the refused one fails.
    assert record.status == MailStatus.SENT
    [_, refused] = records()
    assert refused.status == MailStatus.FAILED
    assert refused.last_error == (
        f"127.0.0.1:{smtp_server.port}: recipient nobody@example.org refused: "
        "550 5.1.1 <nobody@example.org>: Recipient address rejected: User unknown"
    )
    assert [m.rcpt_tos for m in smtp_server.messages] == [("zoe@example.org",)]
    assert mail.retry_failed() == (0, 1)
    assert refused.attempts == 2 and len(smtp_server.messages) == 1


def test_deliver_twice_sends_once(smtp_app, smtp_server, ctx):
    record = mail.queue_mail(**MESSAGE)
    assert record.status == MailStatus.QUEUED and record.attempts == 0
    assert smtp_server.messages == []
    assert mail.deliver(record) is True
    assert mail.deliver(record) is True
    assert len(smtp_server.messages) == 1 and record.attempts == 1


def test_a_stale_copy_of_a_sent_record_is_not_sent_again(smtp_app, smtp_server, ctx):
    record = mail.queue_mail(**MESSAGE)
    assert record.status == MailStatus.QUEUED  # loaded now, and not refreshed below
    # Another request, with a session of its own, sends it meanwhile.
    with smtp_app.app_context():
        [other] = records()
        assert mail.deliver(other) is True
    assert mail.deliver(record) is True
    assert len(smtp_server.messages) == 1 and record.attempts == 1


INJECTIONS = [
    {"subject": "Hello\r\nBcc: evil@example.net"},
    {"subject": "Hello\u2028Bcc: evil@example.net"},
    {"to": "Zoë\nBcc: evil@example.net <zoe@example.org>"},
    {"to": "zoe@example.org\r\nBcc: evil@example.net"},
    {"cc": ["partner@example.org\nBcc: evil@example.net"]},
    {"bcc": ["hidden@example.net\r"]},
    {"reply_to": "Coordinator\r\n <coord@example.org>"},
    {"attachments": [("letter.pdf\r\nX-Evil: 1", "application/pdf", PDF)]},
]


@pytest.mark.parametrize("fields", INJECTIONS)
def test_header_injection_raises_and_stores_nothing(smtp_app, smtp_server, ctx, fields):
    with pytest.raises(ValueError, match="line break"):
        mail.send_mail(**{**MESSAGE, **fields})
    assert records() == [] and smtp_server.messages == []


def test_a_line_break_in_the_sender_name_raises(smtp_app, smtp_server, ctx):
    smtp_app.config["MAIL_FROM"] = "letterapp\nBcc: evil@example.net <letterapp@localhost>"
    with pytest.raises(ValueError, match="MAIL_FROM contains a line break"):
        mail.send_mail(**MESSAGE)
    assert records() == []


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"to": "not-an-address"}, "one email address"),
        ({"to": "zoe@example"}, "not a valid email address"),
        ({"to": "zoe@example.org, evil@example.net"}, "one email address"),
        ({"to": "Zoë <zoe@example.org"}, "one email address"),
        ({"cc": ["partner@"]}, "one email address"),
        ({"bcc": ["hidden@localhost"]}, "not a valid email address"),
        ({"attachments": [("a.pdf", "pdf", PDF)]}, "not a MIME type"),
        ({"subject": "x" * 301}, "longer than 300"),
    ],
)
def test_bad_fields_raise_and_store_nothing(smtp_app, smtp_server, ctx, fields, problem):
    with pytest.raises(ValueError, match=problem):
        mail.send_mail(**{**MESSAGE, **fields})
    assert records() == [] and smtp_server.messages == []


@pytest.mark.parametrize(
    "fields",
    [
        {"cc": "partner@example.org"},  # one string, not a list of addresses
        {"attachments": [("letter.pdf", "application/pdf", "text, not bytes")]},
    ],
)
def test_wrong_types_raise_and_store_nothing(smtp_app, smtp_server, ctx, fields):
    with pytest.raises(TypeError):
        mail.send_mail(**{**MESSAGE, **fields})
    assert records() == [] and smtp_server.messages == []


def test_mail_list_and_retry_commands(app, smtp_server, runner, ctx):
    app.config["SMTP_URL"] = closed_url()
    mail.send_mail(**{**MESSAGE, "subject": "First"})
    app.config["SMTP_URL"] = smtp_server.url
    mail.send_mail(**{**MESSAGE, "subject": "Second", "purpose": "confirm"})

    lines = runner.invoke(args=["mail", "list"]).output.splitlines()
    assert [line.split("\t")[:6] for line in lines] == [
        ["1", "failed", "1", "zoe@example.org", "test", "First"],
        ["2", "sent", "1", "zoe@example.org", "confirm", "Second"],
    ]
    assert "Connection refused" in lines[0].split("\t")[6]
    failed = runner.invoke(args=["mail", "list", "--status", "failed"]).output
    assert failed.startswith("1\tfailed\t") and len(failed.splitlines()) == 1

    result = runner.invoke(args=["mail", "retry"])
    assert result.exit_code == 0
    assert result.output == "sent 1 message(s); 0 still failing\n"
    assert runner.invoke(args=["mail", "list", "--status", "failed"]).output == ""
    assert [r.status for r in records()] == [MailStatus.SENT, MailStatus.SENT]
    assert len(smtp_server.messages) == 2


def test_mail_retry_exits_1_while_something_still_fails(smtp_app, smtp_server, runner, ctx):
    smtp_server.refuse("zoe@example.org")
    mail.send_mail(**MESSAGE)
    result = runner.invoke(args=["mail", "retry"])
    assert result.exit_code == 1
    assert result.output == "sent 0 message(s); 1 still failing\n"


def test_smtp_url_forms():
    assert mail.smtp_settings("smtp://mx.example.org") == mail.SMTPSettings(
        host="mx.example.org", port=25, ssl=False, starttls="auto", user=None, password=""
    )
    assert mail.smtp_settings("smtps://us%40er:p%3Ass%2Fword@mx.example.org") == mail.SMTPSettings(
        host="mx.example.org",
        port=465,
        ssl=True,
        starttls="auto",
        user="us@er",
        password="p:ss/word",
    )
    required = mail.smtp_settings("smtp://user:pw@mx.example.org:587?starttls=required")
    assert (required.port, required.starttls, required.user) == (587, "required", "user")
    for bad in ["http://mx.example.org", "smtp://", "smtp://mx:port", "smtp://mx?tls=1"]:
        with pytest.raises(ValueError, match="SMTP_URL"):
            mail.smtp_settings(bad)


def test_a_bad_smtp_url_is_a_recorded_failure(app, ctx):
    app.config["SMTP_URL"] = "smtp://mx.example.org?starttls=maybe"
    record = mail.send_mail(**MESSAGE)
    assert record.status == MailStatus.FAILED
    assert "?starttls=required" in record.last_error


def test_settings_come_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.delenv("SMTP_URL", raising=False)
    monkeypatch.delenv("OUTBOX_DIR", raising=False)
    monkeypatch.setenv("MAIL_FROM", "Coalition <coalition@example.org>")
    monkeypatch.setenv("SMTP_TIMEOUT", "2.5")
    test_config = {"TESTING": True, "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/t.db"}
    app = create_app(test_config)
    assert app.config["SMTP_URL"] is None
    assert app.config["MAIL_FROM"] == "Coalition <coalition@example.org>"
    assert app.config["SMTP_TIMEOUT"] == 2.5
    assert app.config["OUTBOX_DIR"] == f"{app.instance_path}/outbox"
    assert "mail" in app.cli.commands
    # A mistake in the settings stops the app at start, not every message later.
    monkeypatch.setenv("SMTP_URL", "smtp.example.org:587")
    with pytest.raises(ValueError, match="SMTP_URL"):
        create_app(test_config)


# STARTTLS, smtps:// and logging in, against aiosmtpd.


def login_checker(server, session, envelope, mechanism, auth_data):
    """An aiosmtpd authenticator that knows one user, `us@er` with `p:ss/word`."""
    known = (auth_data.login, auth_data.password) == (b"us@er", b"p:ss/word")
    # handled=False: aiosmtpd sends the 535 itself.
    return AuthResult(success=known, handled=False, auth_data=auth_data)


def test_plain_smtp_logs_in_with_the_url_decoded_user(app, start_smtp_server, ctx):
    server = start_smtp_server(authenticator=login_checker, auth_require_tls=False)
    app.config["SMTP_URL"] = f"smtp://us%40er:p%3Ass%2Fword@127.0.0.1:{server.port}"
    assert mail.send_mail(**MESSAGE).status == MailStatus.SENT
    [received] = server.messages
    assert received.login == ("us@er", "p:ss/word") and not received.tls


def test_a_wrong_password_is_a_recorded_failure(app, start_smtp_server, ctx):
    server = start_smtp_server(authenticator=login_checker, auth_require_tls=False)
    app.config["SMTP_URL"] = f"smtp://us%40er:wrong@127.0.0.1:{server.port}"
    record = mail.send_mail(**MESSAGE)
    assert record.status == MailStatus.FAILED
    assert "login refused: 535" in record.last_error and server.messages == []


def test_starttls_required_refuses_a_server_without_it(app, smtp_server, ctx):
    app.config["SMTP_URL"] = smtp_server.url + "?starttls=required"
    record = mail.send_mail(**MESSAGE)
    assert record.status == MailStatus.FAILED
    assert "does not offer STARTTLS" in record.last_error
    assert smtp_server.messages == []


def test_smtps_to_a_plain_server_is_a_recorded_failure(app, smtp_server, ctx):
    app.config["SMTP_URL"] = f"smtps://127.0.0.1:{smtp_server.port}"
    record = mail.send_mail(**MESSAGE)
    assert record.status == MailStatus.FAILED and record.last_error
    assert smtp_server.messages == []


@pytest.fixture
def certificate(tmp_path):
    """A self-signed certificate for 127.0.0.1, made with the openssl command."""
    if not shutil.which("openssl"):
        pytest.skip("the openssl command is needed to make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
        + ["-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"]
        + ["-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return cert, context


@pytest.fixture
def trusted(certificate, monkeypatch):
    """Make the client trust the test certificate, through OpenSSL's own setting."""
    cert, context = certificate
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    return context


def test_starttls_upgrades_before_logging_in(app, start_smtp_server, trusted, ctx):
    server = start_smtp_server(
        tls_context=trusted, require_starttls=True, authenticator=login_checker
    )
    app.config["SMTP_URL"] = f"smtp://us%40er:p%3Ass%2Fword@127.0.0.1:{server.port}"
    assert mail.send_mail(**MESSAGE).status == MailStatus.SENT
    [received] = server.messages
    assert received.tls and received.login == ("us@er", "p:ss/word")


def test_smtps_is_encrypted_from_the_start(app, start_smtp_server, trusted, ctx):
    server = start_smtp_server(ssl_context=trusted)
    app.config["SMTP_URL"] = f"smtps://127.0.0.1:{server.port}"
    assert mail.send_mail(**MESSAGE).status == MailStatus.SENT
    assert server.messages[0].tls


def test_an_untrusted_certificate_is_a_recorded_failure(app, start_smtp_server, certificate, ctx):
    server = start_smtp_server(tls_context=certificate[1])
    app.config["SMTP_URL"] = server.url  # STARTTLS offered, so taken, and the cert checked
    record = mail.send_mail(**MESSAGE)
    assert record.status == MailStatus.FAILED
    assert "CERTIFICATE_VERIFY_FAILED" in record.last_error
    assert server.messages == []
