"""Email: built with the standard library, recorded in the outbox, sent over SMTP or to .eml files.

Every message is stored whole in `OutgoingMail` before it is sent, one row per
envelope recipient: the `to` address, each Cc and each Bcc get a row of their
own holding the same message. A row's `recipient` is the only address its SMTP
transaction names, so a Bcc address is never written into any header, and a
recipient one server refuses is retried alone, without sending the message
twice to those who already have it.

A message for one address may also be stored as its plain text alone
(`queue_later`, no Message-ID yet): `deliver` builds it just before sending.
"""

import ipaddress
import os
import re
import smtplib
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from email.charset import QP, Charset
from email.errors import NonASCIILocalPartDefect
from email.header import Header
from email.headerregistry import Address
from email.message import EmailMessage
from email.mime.text import MIMEText
from email.policy import default as default_policy
from email.utils import formataddr, formatdate, make_msgid
from functools import lru_cache
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import click
import sqlalchemy as sa
from email_validator import EmailNotValidError, validate_email
from flask import Flask, current_app
from flask.cli import AppGroup

from .db import db
from .models import MailStatus, OutgoingMail, utcnow

# Bodies and attachments go out as quoted-printable or base64 and non-ASCII
# headers as encoded words, so the message is plain ASCII and any SMTP server
# takes it. Only an address with a non-ASCII local part needs RFC 6532 headers.
ASCII_POLICY = default_policy.clone(cte_type="7bit")
UTF8_POLICY = ASCII_POLICY.clone(utf8=True)
# The plain-text path's body: UTF-8 as quoted-printable, readable in an .eml file.
PLAIN_CHARSET = Charset("utf-8")
PLAIN_CHARSET.body_encoding = QP

# Everything str.splitlines() breaks on: the email package splits headers there too.
LINE_BREAKS = re.compile("[\r\n\v\f\x1c\x1d\x1e\x85\u2028\u2029]")
MIMETYPE = re.compile(r"[\w.+-]+/[\w.+-]+", re.ASCII)
STARTTLS_MODES = ("auto", "required")
MAX_SUBJECT = 300  # OutgoingMail.subject
MAX_PURPOSE = 40  # OutgoingMail.purpose

mail_cli = AppGroup("mail", help="List outgoing email and retry what was not sent.")


class DeliveryError(Exception):
    """A message could not be handed over; the text says why, for the coordinator."""


@dataclass(frozen=True)
class SMTPSettings:
    """Where and how to connect, read from SMTP_URL."""

    host: str
    port: int
    ssl: bool  # smtps://: TLS from the first byte
    starttls: str  # "auto": upgrade when offered; "required": refuse to go on without
    user: str | None
    password: str


def init_app(app: Flask) -> None:
    """Read the mail settings from the environment and register the `mail` commands."""
    app.config.setdefault("SMTP_URL", os.environ.get("SMTP_URL") or None)
    app.config.setdefault(
        "MAIL_FROM", os.environ.get("MAIL_FROM", "letterapp <letterapp@localhost>")
    )
    app.config.setdefault("SMTP_TIMEOUT", float(os.environ.get("SMTP_TIMEOUT", "10")))
    # Without Redis, each web worker sends queued mail at most this often, in batches:
    # a batch costs a third of what the same messages cost one by one (measured).
    app.config.setdefault("MAIL_BATCH_SECONDS", float(os.environ.get("MAIL_BATCH_SECONDS", "0.15")))
    app.config.setdefault(
        "OUTBOX_DIR", os.environ.get("OUTBOX_DIR", os.path.join(app.instance_path, "outbox"))
    )
    # A typo in the settings should stop the app at start, not fail every message later.
    sender_address(app.config["MAIL_FROM"])
    if app.config["SMTP_URL"]:
        smtp_settings(app.config["SMTP_URL"])
    app.cli.add_command(mail_cli)


def _refuse_line_breaks(field: str, value: str) -> None:
    """Stop a header value that could start a new header (header injection)."""
    if LINE_BREAKS.search(value):
        raise ValueError(f"{field} contains a line break, which is not allowed in an email header")


def _parse_address(field: str, value: str) -> Address:
    """Parse `addr@example.org` or `Name <addr@example.org>` into one address."""
    _refuse_line_breaks(field, value)
    try:
        # Parsed as a To header whatever the field, to get the address parser.
        header = default_policy.header_factory("To", value)
    except (IndexError, ValueError):  # the parser's reaction to some input, e.g. `a@`
        raise ValueError(f"{field} must be one email address, not {value!r}") from None
    # A non-ASCII local part is fine here: email_validator decides below.
    defects = [d for d in header.defects if not isinstance(d, NonASCIILocalPartDefect)]
    if len(header.addresses) != 1 or defects:
        problem = f": {defects[0]}" if defects else ""
        raise ValueError(f"{field} must be one email address, not {value!r}{problem}")
    return header.addresses[0]


@lru_cache(maxsize=8)  # every message parses the same MAIL_FROM
def sender_address(value: str) -> Address:
    """The From address, from MAIL_FROM (`Name <addr>` or a bare address)."""
    address = _parse_address("MAIL_FROM", value)
    # Not checked with email_validator: `letterapp@localhost`, the development
    # default, is a special-use domain it refuses.
    if not address.username or not address.domain:
        raise ValueError(f"MAIL_FROM must be an email address, not {value!r}")
    return address


def recipient_address(field: str, value: str) -> Address:
    """A recipient checked by email_validator, its domain in ASCII (IDNA) form."""
    parsed = _parse_address(field, value)
    try:
        valid = validate_email(parsed.addr_spec, check_deliverability=False)
    except EmailNotValidError as error:
        raise ValueError(
            f"{field}: {parsed.addr_spec!r} is not a valid email address: {error}"
        ) from None
    return Address(parsed.display_name, username=valid.local_part, domain=valid.ascii_domain)


def _check_attachment(filename: str, mimetype: str, data: bytes) -> tuple[str, str]:
    """Check one attachment; return its MIME maintype and subtype."""
    _refuse_line_breaks("attachment filename", filename)
    if not MIMETYPE.fullmatch(mimetype):
        raise ValueError(f"attachment {filename!r}: {mimetype!r} is not a MIME type")
    if not isinstance(data, bytes):
        raise TypeError(f"attachment {filename!r}: the content must be bytes")
    maintype, _, subtype = mimetype.partition("/")
    return maintype, subtype


def _unique(addresses: Sequence[Address], seen: set[str]) -> list[Address]:
    """Drop addresses already in `seen` (case-insensitively), adding the rest to it."""
    kept = []
    for address in addresses:
        key = address.addr_spec.casefold()
        if key not in seen:
            seen.add(key)
            kept.append(address)
    return kept


def _build(
    *,
    to: str,
    subject: str,
    text: str,
    html: str | None = None,
    purpose: str,
    attachments: Sequence[tuple[str, str, bytes]] = (),
    reply_to: str | None = None,
    cc: Sequence[str] = (),
    bcc: Sequence[str] = (),
) -> tuple[str, str, list[Address]]:
    """Check and build one message: its Message-ID, its text and its envelope recipients."""
    # Everything is checked before anything is built.
    _check_header_fields(subject, purpose)
    if isinstance(cc, str) or isinstance(bcc, str):
        raise TypeError("cc and bcc take a list of addresses, not one string")
    sender = sender_address(current_app.config["MAIL_FROM"])
    seen: set[str] = set()
    primary = _unique([recipient_address("to", to)], seen)
    copies = _unique([recipient_address("cc", a) for a in cc], seen)
    blind = _unique([recipient_address("bcc", a) for a in bcc], seen)
    answer_to = recipient_address("reply_to", reply_to) if reply_to else None
    parts = [(name, _check_attachment(name, kind, data), data) for name, kind, data in attachments]

    everyone = [sender, *primary, *copies, *blind] + ([answer_to] if answer_to else [])
    international = not all(a.addr_spec.isascii() for a in everyone)
    message_id = make_msgid(domain=sender.domain)
    if html is None and not parts and not international:
        raw = _plain_text(sender, primary, copies, answer_to, subject, text, message_id)
        return message_id, raw, [*primary, *copies, *blind]
    message = EmailMessage(policy=UTF8_POLICY if international else ASCII_POLICY)
    message["From"] = sender
    message["To"] = primary
    if copies:
        message["Cc"] = copies
    if answer_to:
        message["Reply-To"] = answer_to
    message["Subject"] = subject
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = message_id
    message.set_content(text)
    if html is not None:
        message.add_alternative(html, subtype="html")
    for filename, (maintype, subtype), data in parts:
        message.add_attachment(data, maintype, subtype, filename=filename)
    return message_id, message.as_string(), [*primary, *copies, *blind]


def _plain_text(
    sender: Address,
    primary: list[Address],
    copies: list[Address],
    answer_to: Address | None,
    subject: str,
    text: str,
    message_id: str,
) -> str:
    """A plain-text message to ASCII addresses, built with the email package's older API.

    Every sign-on's confirmation is such a message. The older API does not parse
    back each header it is given: 0.22 ms a message against 0.95 ms (measured),
    a tenth of the server's work per sign-on. Non-ASCII names and subjects are
    still encoded words, folded by `Header`.
    """

    def addresses(found: list[Address]) -> str:
        return ", ".join(formataddr((a.display_name, a.addr_spec)) for a in found)

    message = MIMEText(text, "plain", PLAIN_CHARSET)
    message["From"] = addresses([sender])
    message["To"] = addresses(primary)
    if copies:
        message["Cc"] = addresses(copies)
    if answer_to:
        message["Reply-To"] = addresses([answer_to])
    message["Subject"] = _subject(subject)
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = message_id
    return message.as_string(maxheaderlen=78)  # as_string folds no header by default


def _subject(subject: str) -> str | Header:
    """The subject as it reads when it is plain ASCII words, else as encoded words.

    Plain is what a reader's mail tools show as is, and ~0.1 ms a message
    cheaper (measured). Encoded are a subject in another script, one that a
    reader would decode (`=?`), and a word too long to fold at a space.
    """
    plain = subject.isascii() and subject.isprintable() and "=?" not in subject
    if plain and all(len(word) <= 60 for word in subject.split()):
        return subject
    return Header(subject, "utf-8", header_name="Subject")


def _check_header_fields(subject: str, purpose: str) -> None:
    _refuse_line_breaks("subject", subject)
    if len(subject) > MAX_SUBJECT:
        raise ValueError(f"the subject is longer than {MAX_SUBJECT} characters")
    if not 0 < len(purpose) <= MAX_PURPOSE:
        raise ValueError(f"purpose must be 1 to {MAX_PURPOSE} characters")


def _queue(
    *,
    purpose: str,
    letter_slug: str | None = None,
    signature_id: int | None = None,
    **message,
) -> list[OutgoingMail]:
    """Build one message and store it once per envelope recipient, `to` first."""
    message_id, raw, recipients = _build(purpose=purpose, **message)
    rows = [
        OutgoingMail(
            letter_slug=letter_slug,
            signature_id=signature_id,
            purpose=purpose,
            recipient=address.addr_spec,
            subject=message["subject"],
            message_id=message_id,
            raw=raw,
            status=MailStatus.QUEUED,
        )
        for address in recipients
    ]
    db.session.add_all(rows)
    db.session.commit()
    return rows


def queue_mail(
    *,
    to: str,
    subject: str,
    text: str,
    html: str | None = None,
    purpose: str,
    letter_slug: str | None = None,
    signature_id: int | None = None,
    attachments: Sequence[tuple[str, str, bytes]] = (),
    reply_to: str | None = None,
    cc: Sequence[str] = (),
    bcc: Sequence[str] = (),
) -> OutgoingMail:
    """Store a message for sending; return the record for `to`.

    Cc and Bcc recipients get records of their own, with the same message.
    Raise ValueError, storing nothing, for a bad address or a line break in a header.
    """
    return _queue(
        to=to,
        subject=subject,
        text=text,
        html=html,
        purpose=purpose,
        letter_slug=letter_slug,
        signature_id=signature_id,
        attachments=attachments,
        reply_to=reply_to,
        cc=cc,
        bcc=bcc,
    )[0]


def send_mail(**message) -> OutgoingMail:
    """Store a message (the keywords of `queue_mail`) and send it now; return the `to` record."""
    rows = _queue(**message)
    for row in rows:
        deliver(row)
    return rows[0]


def queue_later(
    *,
    to: str,
    subject: str,
    text: str,
    purpose: str,
    letter_slug: str | None = None,
    signature_id: int | None = None,
) -> OutgoingMail:
    """Store a plain-text message to one address, for `deliver` to build and send later.

    Only the text is kept (in `raw`, with no Message-ID yet): a web request pays
    for one insert, not for the email package. The caller commits, so the message
    is stored in the same transaction as what it is about, or not at all.
    """
    _refuse_line_breaks("to", to)
    _check_header_fields(subject, purpose)
    row = OutgoingMail(
        letter_slug=letter_slug,
        signature_id=signature_id,
        purpose=purpose,
        recipient=to,
        subject=subject,
        message_id="",  # not built yet
        raw=text,
        status=MailStatus.QUEUED,
    )
    db.session.add(row)
    return row


def _build_stored(mail: OutgoingMail) -> None:
    """Turn the text stored by `queue_later` into the whole message, in place."""
    try:
        message_id, raw, [address] = _build(
            to=mail.recipient, subject=mail.subject, text=mail.raw, purpose=mail.purpose
        )
    except ValueError as error:
        raise DeliveryError(f"the message cannot be built: {error}") from None
    mail.message_id, mail.raw, mail.recipient = message_id, raw, address.addr_spec


def smtp_settings(url: str) -> SMTPSettings:
    """Read `smtp://user:pass@host:port?starttls=required` or `smtps://...`."""
    parts = urlsplit(url)
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        raise ValueError("SMTP_URL must look like smtp://user:password@host:port or smtps://...")
    try:
        port = parts.port
    except ValueError:
        raise ValueError("SMTP_URL has a port that is not a number from 0 to 65535") from None
    query = parse_qs(parts.query)
    starttls = query.pop("starttls", ["auto"])[-1]
    if starttls not in STARTTLS_MODES or query:
        raise ValueError("SMTP_URL takes one option, ?starttls=required")
    if parts.scheme == "smtps" and starttls == "required":
        raise ValueError("SMTP_URL: smtps:// is encrypted from the start; drop ?starttls")
    return SMTPSettings(
        host=parts.hostname,
        port=port or (465 if parts.scheme == "smtps" else 25),
        ssl=parts.scheme == "smtps",
        starttls=starttls,
        user=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password or ""),
    )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _reply(code: int, text: bytes | str) -> str:
    """An SMTP reply on one line: `550 5.1.1 <x@example.org>: unknown`."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return " ".join(f"{code} {text}".split())


def _reason(error: Exception) -> str:
    """What went wrong, in the server's words when it gave any."""
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        refused = error.recipients.items()
        return "; ".join(f"recipient {a} refused: {_reply(*reply)}" for a, reply in refused)
    if isinstance(error, smtplib.SMTPSenderRefused):
        return f"sender {error.sender} refused: {_reply(error.smtp_code, error.smtp_error)}"
    if isinstance(error, smtplib.SMTPAuthenticationError):
        return f"login refused: {_reply(error.smtp_code, error.smtp_error)}"
    if isinstance(error, smtplib.SMTPResponseException):
        return _reply(error.smtp_code, error.smtp_error)
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return str(error) or type(error).__name__


def _connect(settings: SMTPSettings, timeout: float) -> smtplib.SMTP:
    if settings.ssl:
        context = ssl.create_default_context()
        return smtplib.SMTP_SSL(settings.host, settings.port, timeout=timeout, context=context)
    return smtplib.SMTP(settings.host, settings.port, timeout=timeout)


def _secure_and_login(smtp: smtplib.SMTP, settings: SMTPSettings) -> None:
    """Upgrade to TLS when the server offers it (or SMTP_URL insists), then log in."""
    smtp.ehlo_or_helo_if_needed()
    encrypted = settings.ssl
    if not encrypted and smtp.has_extn("starttls"):
        smtp.starttls(context=ssl.create_default_context())
        smtp.ehlo()
        encrypted = True
    if not encrypted and settings.starttls == "required":
        raise DeliveryError("the server does not offer STARTTLS, and SMTP_URL requires it")
    if settings.user:
        # A password sent in clear can be read on any network between here and there.
        if not encrypted and not _is_loopback(settings.host):
            raise DeliveryError(
                f"not sending the SMTP password unencrypted to {settings.host}: "
                "the server offers no STARTTLS; use smtps:// or another server"
            )
        smtp.login(settings.user, settings.password)


def _transaction(smtp: smtplib.SMTP, sender: str, recipient: str, data: bytes) -> str:
    """MAIL, RCPT and DATA for one recipient; return the server's reply to DATA.

    smtplib's sendmail() keeps that reply (with the server's queue id) to itself,
    so the three commands are sent here.
    """
    options = []
    if not data.isascii():
        if not smtp.has_extn("smtputf8"):
            raise DeliveryError(
                "the server does not accept internationalised addresses (no SMTPUTF8)"
            )
        options = ["SMTPUTF8", "BODY=8BITMIME"]
    code, reply = smtp.mail(sender, options)
    if code != 250:
        raise smtplib.SMTPSenderRefused(code, reply, sender)
    code, reply = smtp.rcpt(recipient)
    if code not in (250, 251):
        raise smtplib.SMTPRecipientsRefused({recipient: (code, reply)})
    code, reply = smtp.data(data)
    if code != 250:
        raise smtplib.SMTPDataError(code, reply)
    return _reply(code, reply)


def _close(smtp: smtplib.SMTP) -> None:
    """Say goodbye; once DATA is accepted, a failing QUIT changes nothing."""
    try:
        smtp.quit()
    except (smtplib.SMTPException, OSError):
        smtp.close()


def _wire_format(raw: str) -> bytes:
    """The stored message with CRLF line ends, as SMTP carries it."""
    return re.sub(r"\r\n|\r|\n", "\r\n", raw).encode("utf-8")


def _send_smtp(mail: OutgoingMail, url: str) -> str:
    """Send one record over SMTP; return the server's reply to DATA."""
    try:
        settings = smtp_settings(url)
    except ValueError as error:
        raise DeliveryError(str(error)) from None
    where = f"{settings.host}:{settings.port}"
    sender = sender_address(current_app.config["MAIL_FROM"]).addr_spec
    try:
        smtp = _connect(settings, float(current_app.config["SMTP_TIMEOUT"]))
    except (smtplib.SMTPException, OSError) as error:
        raise DeliveryError(f"cannot connect to {where}: {_reason(error)}") from error
    try:
        _secure_and_login(smtp, settings)
        return _transaction(smtp, sender, mail.recipient, _wire_format(mail.raw))
    except (smtplib.SMTPException, OSError, DeliveryError) as error:
        raise DeliveryError(f"{where}: {_reason(error)}") from error
    finally:
        _close(smtp)


def _write_outbox(mail: OutgoingMail) -> str:
    """Write the message to OUTBOX_DIR, for development without a mail server."""
    outbox = Path(current_app.config["OUTBOX_DIR"])
    path = outbox / f"{mail.id}-{re.sub(r'[^A-Za-z0-9_-]', '_', mail.purpose)}.eml"
    try:
        outbox.mkdir(parents=True, exist_ok=True)
        path.write_text(mail.raw, encoding="utf-8")
    except OSError as error:
        raise DeliveryError(f"cannot write {path}: {_reason(error)}") from error
    # Addresses stay out of the logs: the outbox record has them, for coordinators.
    current_app.logger.info("mail %s (%s) written to %s", mail.id, mail.purpose, path)
    return f"written to {path}"


def _claim(mail: OutgoingMail) -> bool:
    """Count an attempt, unless the message was sent or attempted since it was read.

    The check and the count are one UPDATE, so two workers holding the same
    record (a retry button pressed twice) do not both send it.
    """
    claimed = db.session.execute(
        sa.update(OutgoingMail)
        .where(
            OutgoingMail.id == mail.id,
            OutgoingMail.status != MailStatus.SENT,
            OutgoingMail.attempts == mail.attempts,
        )
        .values(attempts=OutgoingMail.attempts + 1)
    ).rowcount
    db.session.commit()
    return claimed == 1


def deliver(mail: OutgoingMail) -> bool:
    """Send one stored message, unless it was sent already; record and return the outcome.

    A failure is recorded in `last_error` for the coordinator to see and retry,
    never raised.
    """
    if not _claim(mail):
        return mail.status == MailStatus.SENT
    _send_claimed(mail)
    db.session.commit()
    return mail.status == MailStatus.SENT


# Messages claimed by one transaction in `deliver_new`: a crash while sending
# them leaves at most this many to be sent twice by `flask mail retry`.
BATCH = 50


def deliver_new(*conditions) -> tuple[int, int]:
    """Send the queued messages never tried that meet `conditions`; return (sent, failed).

    What any process queued is sent once: a batch is claimed by one UPDATE, and
    its outcomes are recorded in one transaction, however many messages it has.
    """
    sent = failed = 0
    while True:
        claimed = db.session.scalars(
            sa.update(OutgoingMail)
            .where(
                OutgoingMail.id.in_(
                    sa.select(OutgoingMail.id)
                    .where(
                        OutgoingMail.status == MailStatus.QUEUED,
                        OutgoingMail.attempts == 0,
                        *conditions,
                    )
                    .order_by(OutgoingMail.id)
                    .limit(BATCH)
                ),
                OutgoingMail.attempts == 0,  # not claimed by another process meanwhile
            )
            .values(attempts=1)
            .returning(OutgoingMail.id),
            execution_options={"synchronize_session": False},
        ).all()
        db.session.commit()
        if not claimed:
            return sent, failed
        batch = db.session.scalars(
            sa.select(OutgoingMail).where(OutgoingMail.id.in_(claimed)).order_by(OutgoingMail.id)
        ).all()
        done = 0
        for mail in batch:
            _send_claimed(mail)
            done += mail.status == MailStatus.SENT
        db.session.commit()
        sent, failed = sent + done, failed + len(batch) - done
        if len(claimed) < BATCH:
            return sent, failed


def _send_claimed(mail: OutgoingMail) -> None:
    """Build the message if needed, send it, and note the outcome on the record."""
    url = current_app.config["SMTP_URL"]
    try:
        if not mail.message_id:
            _build_stored(mail)
        reply = _send_smtp(mail, url) if url else _write_outbox(mail)
    except DeliveryError as error:
        mail.status = MailStatus.FAILED
        mail.last_error = str(error)
        current_app.logger.warning(
            "mail %s (%s) failed; the error is in its outbox record", mail.id, mail.purpose
        )
    else:
        mail.status = MailStatus.SENT
        mail.sent_at = utcnow()
        mail.smtp_reply = reply[:500]
        mail.last_error = ""


def retry_failed() -> tuple[int, int]:
    """Deliver every queued or failed message; return (sent, still failing)."""
    waiting = db.session.scalars(
        sa.select(OutgoingMail)
        .where(OutgoingMail.status.in_([MailStatus.QUEUED, MailStatus.FAILED]))
        .order_by(OutgoingMail.id)
    ).all()
    sent = sum(deliver(mail) for mail in waiting)
    return sent, len(waiting) - sent


def _one_line(text: str) -> str:
    return " ".join(text.split())


@mail_cli.command("list")
@click.option("--status", type=click.Choice([s.value for s in MailStatus]))
def mail_list(status: str | None) -> None:
    """One line per message: id, status, attempts, recipient, purpose, subject, last error."""
    query = sa.select(OutgoingMail).order_by(OutgoingMail.id)
    if status:
        query = query.where(OutgoingMail.status == MailStatus(status))
    for mail in db.session.scalars(query):
        cells = (
            mail.id,
            mail.status.value,
            mail.attempts,
            mail.recipient,
            mail.purpose,
            _one_line(mail.subject),
            _one_line(mail.last_error),
        )
        click.echo("\t".join(map(str, cells)))


@mail_cli.command("retry")
def mail_retry() -> None:
    """Send every queued or failed message again; exit 1 if some still fail."""
    sent, failing = retry_failed()
    click.echo(f"sent {sent} message(s); {failing} still failing")
    if failing:
        raise click.exceptions.Exit(1)
