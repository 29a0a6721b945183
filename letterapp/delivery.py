"""Delivering a letter: the PDF emailed to its addressees, proof of it, and word to the signers.

The delivery is prepared once. The PDF is rendered as of the send date and
stored with the letter's `LetterRecord`, and the message is queued in the outbox
(`OutgoingMail`, purpose "delivery", one record per recipient), in the same
transaction that marks the letter prepared. Sending again only delivers the
records not sent yet, and one run at a time holds a lease in the database, so a
retry after a failure, a double click or a repeated command never sends anyone
the letter twice.
"""

import hashlib
import os
import secrets
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from email import message_from_string
from email.message import EmailMessage
from email.policy import default as default_policy
from math import ceil
from urllib.parse import urlsplit

import sqlalchemy as sa
from flask import current_app, has_request_context, render_template, url_for
from flask_babel import lazy_gettext as _l
from markupsafe import Markup
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from . import mail
from . import signatures as store
from .db import db
from .letters import RECIPIENT_KINDS, Letter, Recipients
from .markup import render_message, sanitise
from .models import LetterRecord, MailStatus, OutgoingMail, Signature, utcnow
from .pdf import PDFError, render_pdf
from .signer_emails import link_language, signer_message

DELIVERY = "delivery"  # OutgoingMail.purpose of the letter to its addressees
NOTIFY = "notify"  # and of the message to each signatory
LEASE = timedelta(minutes=5)  # a run silent this long has died: another may take over
LEASE_STEP = 30  # seconds a pause between batches sleeps before renewing the lease


class DeliveryError(Exception):
    """The letter cannot be sent, or its signers told, now; the message says why."""


@dataclass(frozen=True)
class Draft:
    """The message as it stands: the workspace's edits over the letter file's defaults."""

    recipients: Recipients
    subject: str
    cover: str  # Markdown; also the plain-text part as it is
    reply_to: str
    edited: frozenset[str]  # the fields that differ from the defaults

    def digest(self) -> str:
        """A fingerprint, to tell whether the message changed since it was previewed."""
        parts = [*self.recipients.to, "", *self.recipients.cc, "", *self.recipients.bcc]
        text = "\0".join([*parts, self.subject, self.cover, self.reply_to])
        return hashlib.sha256(text.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class Preview:
    """The complete message, as it goes out, and who gets it."""

    raw: str
    envelope: list[tuple[str, str]]  # (To, Cc or Bcc; the address as written)
    pdf_name: str
    pdf_size: int
    frozen: bool  # the prepared message itself, not one built from the draft

    @property
    def message(self) -> EmailMessage:
        return message_from_string(self.raw, policy=default_policy)

    @property
    def html(self) -> Markup:
        """The HTML part, sanitised again to be shown inside a page."""
        return sanitise(self.message.get_body(("html",)).get_content())


@dataclass(frozen=True)
class Progress:
    """How far a batch of outbox records has got."""

    total: int = 0
    sent: int = 0
    failed: int = 0

    @property
    def waiting(self) -> int:
        return self.total - self.sent - self.failed


def _setting(name: str, default: float) -> float:
    """A number from the app's config, else the environment, else the default."""
    value = current_app.config.get(name, os.environ.get(name, default))
    try:
        return float(value)
    except (TypeError, ValueError):
        raise DeliveryError(f"{name} must be a number, not {value!r}") from None


def find_record(slug: str) -> LetterRecord | None:
    """The letter's record, if it has one."""
    return db.session.scalar(sa.select(LetterRecord).where(LetterRecord.slug == slug))


def letter_record(slug: str) -> LetterRecord:
    """The letter's record, made on first use; the unique slug settles a race to make it."""
    record = find_record(slug)
    if record is None:
        db.session.add(LetterRecord(slug=slug))
        try:
            db.session.commit()
        except IntegrityError:
            db.session.rollback()
        record = find_record(slug)
    return record


def delivered(slug: str) -> LetterRecord | None:
    """The record of a letter that has been sent, else None."""
    record = find_record(slug)
    if record and record.prepared_at and not record.sent_at:
        _mark_sent(record, "mail retry")  # the Email page's retry may have finished the job
    return record if record and record.sent_at else None


def sent_on(letter: Letter, record: LetterRecord) -> date:
    """The day the letter was sent, in its own time zone."""
    return record.sent_at.astimezone(letter.timezone).date()


def default_cover(letter: Letter) -> str:
    """The cover message until a coordinator writes one: salutation, title, date, count."""
    count = len(store.approved(letter, letter.today()))
    return render_template("email/cover.md", letter=letter, count=count)


def draft(letter: Letter, record: LetterRecord | None = None) -> Draft:
    """The cover message and recipients: the workspace's edits, else the letter file's."""
    record = record or find_record(letter.slug)
    edited = set()
    recipients = letter.recipients
    if record and record.recipients is not None:
        recipients = Recipients(**{k: tuple(record.recipients.get(k, ())) for k in RECIPIENT_KINDS})
        edited.add("recipients")
    subject, cover = letter.title, None
    if record and record.subject is not None:
        subject = record.subject
        edited.add("subject")
    if record and record.cover is not None:
        cover = record.cover
        edited.add("cover")
    return Draft(
        recipients=recipients,
        subject=subject,
        cover=cover if cover is not None else default_cover(letter),
        reply_to=record.reply_to if record else "",
        edited=frozenset(edited),
    )


def save_draft(letter: Letter, new: Draft, actor: str) -> None:
    """Keep the workspace's edits; a field equal to its default is kept as None, to follow the file."""
    record = letter_record(letter.slug)
    if record.prepared_at:
        raise DeliveryError("The letter is being sent: its message can no longer change.")
    record.recipients = (
        None
        if new.recipients == letter.recipients
        else {kind: list(getattr(new.recipients, kind)) for kind in RECIPIENT_KINDS}
    )
    record.subject = None if new.subject == letter.title else new.subject
    record.cover = None if new.cover == default_cover(letter) else new.cover
    record.reply_to = new.reply_to
    store.audit(letter.slug, actor, "edited the delivery", detail=f"subject: {new.subject!r}")
    db.session.commit()


def reset_draft(letter: Letter, actor: str) -> None:
    """Drop the workspace's edits: the message follows the letter file again."""
    record = letter_record(letter.slug)
    if record.prepared_at:
        raise DeliveryError("The letter is being sent: its message can no longer change.")
    record.recipients = record.subject = record.cover = None
    record.reply_to = ""
    store.audit(letter.slug, actor, "reset the delivery", detail="to the letter file's values")
    db.session.commit()


def _envelope(recipients: Recipients) -> list[tuple[str, str]]:
    """Each recipient with the header it is in: To, Cc, or Bcc (the envelope only)."""
    # mail.queue_mail takes one To address: the other addressees are copied openly.
    first, *others = recipients.to
    return (
        [("To", first)]
        + [("Cc", a) for a in [*others, *recipients.cc]]
        + [("Bcc", a) for a in recipients.bcc]
    )


def _message(letter: Letter, current: Draft, pdf: bytes, pdf_name: str) -> dict:
    """The arguments of mail.queue_mail for the delivery."""
    if not current.recipients.to:
        raise DeliveryError(
            "No one to send it to: list the addresses under `recipients:` in the letter file, "
            "or enter them on the delivery page."
        )
    envelope = _envelope(current.recipients)
    html = render_template("email/delivery.html", letter=letter, body=render_message(current.cover))
    return {
        "to": envelope[0][1],
        "cc": [address for role, address in envelope if role == "Cc"],
        "bcc": [address for role, address in envelope if role == "Bcc"],
        "subject": current.subject,
        "text": current.cover,
        "html": html,
        "attachments": [(pdf_name, "application/pdf", pdf)],
        "reply_to": current.reply_to or None,
        "purpose": DELIVERY,
        "letter_slug": letter.slug,
    }


def _render(letter: Letter, as_of: date) -> tuple[bytes, list[int]]:
    """The PDF as of `as_of`, and the ids of the signatories it lists."""
    signed = store.approved(letter, as_of)
    names = [store.name_in_letter(s, letter) for s in signed]
    try:
        return render_pdf(letter, names, as_of=as_of), [s.id for s in signed]
    except PDFError as error:
        raise DeliveryError(f"The PDF cannot be made: {error}") from None


def pdf_name(letter: Letter, as_of: date) -> str:
    """The attachment's file name: `slug-YYYY-MM-DD.pdf`."""
    return f"{letter.slug}-{as_of.isoformat()}.pdf"


@contextmanager
def _scratch_session() -> Iterator[None]:
    """Point db.session at an empty in-memory database for the block.

    mail.queue_mail builds a message and stores it in one step. A preview or a
    dry run needs the message only: it is built by the same code that sends
    it, and stored where no retry can ever find it and send it.
    """
    engine = sa.create_engine("sqlite://")
    db.metadata.create_all(engine, tables=[OutgoingMail.__table__])
    real = db.session.registry()
    scratch = Session(engine)
    db.session.registry.set(scratch)
    try:
        yield
    finally:
        db.session.registry.set(real)
        scratch.close()
        engine.dispose()


def preview(letter: Letter) -> Preview:
    """The exact message: the prepared one once sending has begun, else built now from the draft."""
    record = find_record(letter.slug)
    if record and record.prepared_at:
        rows = deliveries(letter.slug)
        sent_to = Recipients(**{k: tuple(record.sent_recipients[k]) for k in RECIPIENT_KINDS})
        return Preview(
            raw=rows[0].raw,
            envelope=_envelope(sent_to),
            pdf_name=record.sent_pdf_name,
            pdf_size=len(record.sent_pdf),
            frozen=True,
        )
    current = draft(letter, record)
    as_of = letter.today()
    pdf, _ = _render(letter, as_of)
    fields = _message(letter, current, pdf, pdf_name(letter, as_of))
    try:
        with _scratch_session():
            raw = mail.queue_mail(**fields).raw
    except ValueError as error:
        raise DeliveryError(str(error)) from None
    return Preview(raw, _envelope(current.recipients), fields["attachments"][0][0], len(pdf), False)


def prepare(letter: Letter, actor: str) -> LetterRecord:
    """Freeze the delivery once: the PDF as of today, stored, and the message queued per recipient."""
    record = letter_record(letter.slug)
    if record.prepared_at is not None:
        return record
    current = draft(letter, record)
    as_of = letter.today()
    pdf, signed_ids = _render(letter, as_of)
    name = pdf_name(letter, as_of)
    fields = _message(letter, current, pdf, name)
    db.session.commit()  # the claim below starts a transaction of its own
    claimed = db.session.execute(
        sa.update(LetterRecord)
        .where(LetterRecord.id == record.id, LetterRecord.prepared_at.is_(None))
        .values(
            prepared_at=utcnow(),
            prepared_by=actor,
            sent_as_of=as_of,
            sent_pdf=pdf,
            sent_pdf_name=name,
            sent_recipients={k: list(getattr(current.recipients, k)) for k in RECIPIENT_KINDS},
            sent_signature_ids=signed_ids,
        )
    ).rowcount
    if claimed != 1:  # another run prepared it meanwhile
        db.session.rollback()
        db.session.refresh(record)
        return record
    count = len(_envelope(current.recipients))
    store.audit(letter.slug, actor, "prepared the delivery", detail=f"{name}, {count} recipient(s)")
    try:
        # queue_mail commits the claim, the audit entry and the records together.
        mail.queue_mail(**fields)
    except ValueError as error:
        db.session.rollback()
        raise DeliveryError(str(error)) from None
    db.session.refresh(record)
    return record


@contextmanager
def _lease(slug: str) -> Iterator[Callable[[], bool]]:
    """Hold the letter's sending lease for the block; DeliveryError if another run holds it.

    Yields a function that renews the lease and says whether it is still ours.
    """
    letter_record(slug)
    db.session.commit()
    token, now = secrets.token_hex(16), utcnow()
    mine = (LetterRecord.slug == slug, LetterRecord.run_token == token)
    free = sa.or_(LetterRecord.run_token.is_(None), LetterRecord.run_at < now - LEASE)
    taken = db.session.execute(
        sa.update(LetterRecord)
        .where(LetterRecord.slug == slug, free)
        .values(run_token=token, run_at=now)
    ).rowcount
    db.session.commit()
    if taken != 1:
        raise DeliveryError(
            "Another send for this letter is running: wait for it to end, then look again."
        )

    def renew() -> bool:
        kept = db.session.execute(
            sa.update(LetterRecord).where(*mine).values(run_at=utcnow())
        ).rowcount
        db.session.commit()
        return kept == 1

    try:
        yield renew
    finally:
        db.session.rollback()
        db.session.execute(sa.update(LetterRecord).where(*mine).values(run_token=None))
        db.session.commit()


def _unsent(slug: str, purpose: str, tried: bool | None = None) -> list[int]:
    """Ids of the records not sent yet, never tried first; only those (not) tried before if asked."""
    query = (
        sa.select(OutgoingMail.id)
        .where(
            OutgoingMail.letter_slug == slug,
            OutgoingMail.purpose == purpose,
            OutgoingMail.status != MailStatus.SENT,
        )
        .order_by(OutgoingMail.attempts, OutgoingMail.id)
    )
    if tried is not None:
        query = query.where((OutgoingMail.attempts > 0) if tried else (OutgoingMail.attempts == 0))
    return list(db.session.scalars(query))


def _deliver(ids: list[int], renew: Callable[[], bool], on_sent=None) -> None:
    """Deliver records one by one while the lease is ours."""
    for mail_id in ids:
        if not renew():
            raise DeliveryError("Another run took over this letter's sending; it goes on there.")
        message = db.session.get(OutgoingMail, mail_id)
        mail.deliver(message)
        if on_sent:
            on_sent(message)


def send(letter: Letter, actor: str) -> Progress:
    """Prepare the delivery unless it is, then send it to every recipient who does not have it."""
    with _lease(letter.slug) as renew:
        record = prepare(letter, actor)
        _deliver(_unsent(letter.slug, DELIVERY), renew)
        _mark_sent(record, actor)
    return progress(letter.slug, DELIVERY)


def _mark_sent(record: LetterRecord, actor: str) -> None:
    """Mark the letter sent once every `to` address has accepted it, at the last one's time."""
    if record.sent_at or not record.prepared_at:
        return
    rows = {row.recipient.casefold(): row for row in deliveries(record.slug)}
    wanted = [rows.get(_key(address)) for address in record.sent_recipients["to"]]
    if not wanted or not all(row is not None and row.status == MailStatus.SENT for row in wanted):
        return
    marked = db.session.execute(
        sa.update(LetterRecord)
        .where(LetterRecord.id == record.id, LetterRecord.sent_at.is_(None))
        .values(sent_at=max(row.sent_at for row in wanted))
    ).rowcount
    if marked:
        store.audit(record.slug, actor, "sent the letter", detail=record.sent_pdf_name)
    db.session.commit()


def _key(address: str) -> str:
    """An address as its outbox record holds it, folded."""
    return mail.recipient_address("recipient", address).addr_spec.casefold()


def deliveries(slug: str) -> list[OutgoingMail]:
    """The outbox records of the letter's delivery, one per recipient."""
    return list(
        db.session.scalars(
            sa.select(OutgoingMail)
            .where(OutgoingMail.letter_slug == slug, OutgoingMail.purpose == DELIVERY)
            .order_by(OutgoingMail.id)
        )
    )


def roles(record: LetterRecord) -> dict[str, tuple[str, str]]:
    """Each outbox address's role and the address as written: {"a@b.org": ("Cc", "A <a@b.org>")}."""
    sent_to = Recipients(**{k: tuple(record.sent_recipients[k]) for k in RECIPIENT_KINDS})
    return {_key(address): (role, address) for role, address in _envelope(sent_to)}


def progress(slug: str, purpose: str) -> Progress:
    """Counts of the letter's outbox records for one purpose, by status."""
    statuses = Counter(
        db.session.scalars(
            sa.select(OutgoingMail.status).where(
                OutgoingMail.letter_slug == slug, OutgoingMail.purpose == purpose
            )
        )
    )
    return Progress(
        total=statuses.total(),
        sent=statuses[MailStatus.SENT],
        failed=statuses[MailStatus.FAILED],
    )


def receipt(letter: Letter) -> str:
    """A plain-text receipt of the delivery: the PDF's fingerprint, and per recipient the proof."""
    record = find_record(letter.slug)
    if not record or not record.prepared_at:
        raise DeliveryError("The letter has not been sent.")
    return render_template(
        "manage/receipt.txt",
        letter=letter,
        record=record,
        rows=deliveries(letter.slug),
        roles=roles(record),
        key=lambda row: row.recipient.casefold(),
        sha256=hashlib.sha256(record.sent_pdf).hexdigest(),
        sender=current_app.config["MAIL_FROM"],
        utc=utc,
        sent_on=sent_on(letter, record) if record.sent_at else None,
        signatories=len(record.sent_signature_ids or []),
    )


# Telling the signatories.


def public_url(endpoint: str, **values) -> str:
    """An absolute link for an email: from the request, or from PUBLIC_URL on the command line."""
    if has_request_context():
        return url_for(endpoint, _external=True, **values)
    base = urlsplit(str(current_app.config.get("PUBLIC_URL") or os.environ.get("PUBLIC_URL", "")))
    if base.scheme not in ("http", "https") or not base.netloc:
        raise DeliveryError(
            "Set PUBLIC_URL to the site's address (e.g. https://letters.example.org): "
            "the messages to the signatories link to the letter."
        )
    adapter = current_app.url_map.bind(
        base.netloc, script_name=base.path or "/", url_scheme=base.scheme
    )
    return adapter.build(endpoint, values, force_external=True)


def batch_size() -> int:
    """How many messages to the signatories go in one batch (NOTIFY_BATCH_SIZE)."""
    return max(int(_setting("NOTIFY_BATCH_SIZE", 50)), 1)


def batch_pause() -> float:
    """Seconds between two batches (NOTIFY_PAUSE_SECONDS)."""
    return max(_setting("NOTIFY_PAUSE_SECONDS", 60), 0)


def _sent_record(letter: Letter) -> LetterRecord:
    record = delivered(letter.slug)
    if record is None:
        raise DeliveryError("The letter has not been delivered yet: send it first.")
    return record


def _reachable(signature: Signature) -> bool:
    if not signature.email or signature.contact_purged_at:
        return False
    try:
        mail.recipient_address("to", signature.email)
    except ValueError:
        return False
    return True


def _in_the_letter(record: LetterRecord) -> list[Signature]:
    """The signatories in the delivered PDF, whatever became of their sign-on since."""
    ids = record.sent_signature_ids or []
    return list(
        db.session.scalars(sa.select(Signature).where(Signature.id.in_(ids)).order_by(Signature.id))
    )


def _untold(record: LetterRecord) -> list[Signature]:
    """Signatories in the delivered PDF with a usable address and no message yet."""
    told = set(
        db.session.scalars(
            sa.select(OutgoingMail.signature_id).where(
                OutgoingMail.letter_slug == record.slug, OutgoingMail.purpose == NOTIFY
            )
        )
    )
    return [s for s in _in_the_letter(record) if s.id not in told and _reachable(s)]


def notify_progress(letter: Letter) -> tuple[Progress, int]:
    """Messages to the signatories: sent and failed of those to send, and how many have no address."""
    record = _sent_record(letter)
    signed = _in_the_letter(record)
    reachable = sum(_reachable(s) for s in signed)
    told = progress(letter.slug, NOTIFY)
    return Progress(total=reachable, sent=told.sent, failed=told.failed), len(signed) - reachable


def notify_pending(letter: Letter) -> int:
    """How many messages a run would try: one per signatory not told, and each failed one again."""
    record = _sent_record(letter)
    return len(_untold(record)) + len(_unsent(letter.slug, NOTIFY))


def _queue_word(
    letter: Letter, record: LetterRecord, signatories: list[Signature], attach: bool
) -> list[int]:
    """Queue one message to each signatory, to their address alone; return the records' ids."""
    if not signatories:
        return []
    attachments = [(record.sent_pdf_name, "application/pdf", record.sent_pdf)] if attach else []
    queued = []
    for signature in signatories:
        lang = link_language(signature, letter)
        subject, text = signer_message(
            "email/delivered.txt",
            _l("Delivered: %(title)s"),
            signature,
            letter,
            record=record,
            name=store.name_in_letter(signature, letter),
            sent_on=sent_on(letter, record),
            attached=attach,
            letter_url=public_url("public.letter", slug=letter.slug, **lang),
            pdf_url=public_url("public.pdf", slug=letter.slug, **lang),
        )
        row = mail.queue_mail(
            to=signature.email,
            subject=subject[:300],
            text=text,
            purpose=NOTIFY,
            letter_slug=letter.slug,
            signature_id=signature.id,
            attachments=attachments,
            reply_to=record.reply_to or None,
        )
        queued.append(row.id)
    return queued


def _next_batch(letter: Letter, record: LetterRecord, size: int, attach: bool) -> list[int]:
    """Records left queued by a run that stopped, then new ones, up to `size`.

    Each batch is queued just before it is sent, so no long queue waits in the
    outbox for `mail retry` to send all at once, past the rate.
    """
    ids = _unsent(letter.slug, NOTIFY, tried=False)[:size]
    return ids + _queue_word(letter, record, _untold(record)[: size - len(ids)], attach)


def notify_batch(letter: Letter, actor: str, attach: bool = False) -> Progress:
    """Send the next batch of messages to the signatories; when all have been tried, retry failures.

    A batch is NOTIFY_BATCH_SIZE messages; the next may go NOTIFY_PAUSE_SECONDS later.
    """
    size, pause = batch_size(), batch_pause()
    with _lease(letter.slug) as renew:
        record = _sent_record(letter)
        if (left := _pause_left(record, pause)) > 0:
            raise DeliveryError(f"The next batch can go in {ceil(left)} seconds.")
        ids = _next_batch(letter, record, size, attach) or _unsent(letter.slug, NOTIFY)[:size]
        if ids:
            _deliver(ids, renew)
            _batch_done(record)
            store.audit(letter.slug, actor, "told the signatories", detail=f"{len(ids)} message(s)")
            db.session.commit()
    return notify_progress(letter)[0]


def notify_all(
    letter: Letter,
    actor: str,
    *,
    attach: bool = False,
    on_sent: Callable[[OutgoingMail], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> Progress:
    """Tell every signatory not told yet, and retry each failure once, in paced batches."""
    size, pause = batch_size(), batch_pause()
    with _lease(letter.slug) as renew:
        record = _sent_record(letter)
        retry = _unsent(letter.slug, NOTIFY, tried=True)  # each failure is retried once
        tried = 0
        while True:
            while (left := _pause_left(record, pause)) > 0:
                sleep(min(left, LEASE_STEP))  # in steps, renewing the lease between them
                if not renew():
                    raise DeliveryError("Another run took over this letter's sending.")
            ids = _next_batch(letter, record, size, attach)
            if not ids:
                ids, retry = retry[:size], retry[size:]
            if not ids:
                break
            _deliver(ids, renew, on_sent)
            _batch_done(record)
            tried += len(ids)
        store.audit(letter.slug, actor, "told the signatories", detail=f"{tried} message(s)")
        db.session.commit()
    return notify_progress(letter)[0]


def _pause_left(record: LetterRecord, pause: float) -> float:
    """Seconds to wait before the next batch may go."""
    if record.notify_batch_at is None:
        return 0
    return pause - (utcnow() - record.notify_batch_at).total_seconds()


def _batch_done(record: LetterRecord) -> None:
    record.notify_batch_at = utcnow()
    db.session.commit()


def utc(moment: datetime | None) -> str:
    """A time for the receipt and the workspace: `2026-11-23 14:30:02 UTC`."""
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC") if moment else ""
