"""Database models."""

import enum
from datetime import UTC, date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from .db import db


class UTCDateTime(sa.types.TypeDecorator):
    """A timezone-aware datetime stored as UTC, the same on SQLite and PostgreSQL."""

    impl = sa.DateTime
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is not None:
            if value.tzinfo is None:
                raise ValueError("naive datetime: give it a timezone")
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value

    def process_result_value(self, value, dialect):
        return value.replace(tzinfo=UTC) if value is not None else None


def utcnow() -> datetime:
    return datetime.now(UTC)


class Kind(enum.StrEnum):
    ORGANIZATION = "organization"
    INDIVIDUAL = "individual"


class Status(enum.StrEnum):
    PENDING = "pending"  # waiting for the signer to confirm by email
    CONFIRMED = "confirmed"  # confirmed, waiting for a coordinator
    APPROVED = "approved"  # in the letter
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"  # by the signer
    MERGED = "merged"  # a duplicate, folded into another sign-on


class Role(enum.StrEnum):
    """A coordinator's role on one letter; each includes what the ones after it may do."""

    OWNER = "owner"
    EDITOR = "editor"
    VIEWER = "viewer"

    def allows(self, needed: "Role") -> bool:
        order = [Role.VIEWER, Role.EDITOR, Role.OWNER]
        return order.index(self) >= order.index(needed)


class LetterState(enum.StrEnum):
    """Where a letter is in its life; "sent" is not stored here: delivery records it."""

    DRAFT = "draft"  # seen only by its coordinators and through its private preview link
    OPEN = "open"
    CLOSED = "closed"  # closed by a coordinator; a passed `closes` time closes it too


class MailStatus(enum.StrEnum):
    QUEUED = "queued"
    SENT = "sent"
    FAILED = "failed"


def _enum(cls: type[enum.Enum]) -> sa.Enum:
    """Store an enum's values (`approved`), not its Python names, as plain strings."""
    return sa.Enum(
        cls, native_enum=False, length=20, values_callable=lambda e: [m.value for m in e]
    )


class Signature(db.Model):
    """One sign-on to one letter, by an organisation or an individual."""

    __table_args__ = (
        # Stops racing duplicates that a check-then-insert would let through.
        sa.UniqueConstraint("letter_slug", "email_key", "name_key", name="uq_signature_signer"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    letter_slug: Mapped[str] = mapped_column(sa.String(100), index=True)
    kind: Mapped[Kind] = mapped_column(_enum(Kind))
    name: Mapped[str] = mapped_column(sa.String(200))
    acronym: Mapped[str] = mapped_column(sa.String(30), default="")
    contact_name: Mapped[str] = mapped_column(sa.String(200), default="")
    email: Mapped[str] = mapped_column(sa.String(254))
    country: Mapped[str] = mapped_column(sa.String(100), default="")
    website: Mapped[str] = mapped_column(sa.String(300), default="")
    contact_title: Mapped[str] = mapped_column(sa.String(200), default="")
    affiliation: Mapped[str] = mapped_column(sa.String(200), default="")
    authorised: Mapped[bool] = mapped_column(default=False)
    updates_opt_in: Mapped[bool] = mapped_column(default=False)
    status: Mapped[Status] = mapped_column(_enum(Status), default=Status.PENDING, index=True)
    signed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # How a coordinator wants the name printed; the signer's own `name` is kept.
    letter_name: Mapped[str | None] = mapped_column(sa.String(250))
    reject_reason: Mapped[str] = mapped_column(sa.String(500), default="")
    merged_into_id: Mapped[int | None] = mapped_column(sa.ForeignKey("signature.id"))
    # Emails sent about this sign-on, capped so the form cannot flood an inbox.
    messages_sent: Mapped[int] = mapped_column(default=0)
    contact_purged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The revision of the letter the signer saw (and last confirmed).
    revision_number: Mapped[int | None]
    # The language the signer read the letter in (`ko`); emails to them use it.
    # None: the letter's own language (sign-ons made before, added or imported).
    language: Mapped[str | None] = mapped_column(sa.String(35))
    # Folded forms of the signer's email and name, for duplicate detection.
    email_key: Mapped[str] = mapped_column(sa.String(254))
    name_key: Mapped[str] = mapped_column(sa.String(200))

    @property
    def display_name(self) -> str:
        """The name as it appears in the letter: the coordinator's, or `Name (ACRONYM)`."""
        if self.letter_name:
            return self.letter_name
        return f"{self.name} ({self.acronym})" if self.acronym else self.name

    def __repr__(self) -> str:
        return f"<Signature {self.id} {self.letter_slug} {self.status}>"


class User(db.Model):
    """A coordinator, who logs in to the workspace."""

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(sa.String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(sa.String(300))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    # Flask-Login's user interface.
    is_authenticated = True
    is_active = True
    is_anonymous = False

    def get_id(self) -> str:
        return str(self.id)

    def __repr__(self) -> str:
        return f"<User {self.email}>"


class Membership(db.Model):
    """A coordinator's role on one letter: a coalition shares a letter this way."""

    __table_args__ = (sa.UniqueConstraint("user_id", "letter_slug", name="uq_membership_user"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("user.id"), index=True)
    letter_slug: Mapped[str] = mapped_column(sa.String(100), index=True)
    role: Mapped[Role] = mapped_column(_enum(Role))


class AuditEntry(db.Model):
    """Who did what to a letter's sign-ons, and when."""

    id: Mapped[int] = mapped_column(primary_key=True)
    letter_slug: Mapped[str] = mapped_column(sa.String(100), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor: Mapped[str] = mapped_column(sa.String(254))  # a coordinator's email, "cli" or "signer"
    action: Mapped[str] = mapped_column(sa.String(40))
    signature_id: Mapped[int | None] = mapped_column(sa.ForeignKey("signature.id"))
    detail: Mapped[str] = mapped_column(sa.Text, default="")


class Revision(db.Model):
    """One saved version of a letter file: what signers saw is a fact on record."""

    __table_args__ = (sa.UniqueConstraint("letter_slug", "number", name="uq_revision_number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    letter_slug: Mapped[str] = mapped_column(sa.String(100), index=True)
    number: Mapped[int]
    text: Mapped[str] = mapped_column(sa.Text)  # the whole file, front matter and body
    sha256: Mapped[str] = mapped_column(sa.String(64))
    author: Mapped[str] = mapped_column(sa.String(254))
    note: Mapped[str] = mapped_column(sa.String(500), default="")
    # A typo fix: signers of the revision before need not confirm again.
    minor: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class OutgoingMail(db.Model):
    """One email, kept whole so a failed send can be retried and a sent one proven."""

    id: Mapped[int] = mapped_column(primary_key=True)
    letter_slug: Mapped[str | None] = mapped_column(sa.String(100), index=True)
    signature_id: Mapped[int | None] = mapped_column(sa.ForeignKey("signature.id"))
    purpose: Mapped[str] = mapped_column(sa.String(40))
    recipient: Mapped[str] = mapped_column(sa.String(254))
    subject: Mapped[str] = mapped_column(sa.String(300))
    message_id: Mapped[str] = mapped_column(sa.String(300))
    raw: Mapped[str] = mapped_column(sa.Text)  # the complete RFC 5322 message
    status: Mapped[MailStatus] = mapped_column(
        _enum(MailStatus), default=MailStatus.QUEUED, index=True
    )
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str] = mapped_column(sa.Text, default="")
    smtp_reply: Mapped[str] = mapped_column(sa.String(500), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class LetterRecord(db.Model):
    """A letter's delivery by email: the coordinators' draft, then what was sent and when.

    The letter file stays the source of the defaults: a draft field left None
    follows the file. What was sent (`prepared_at` to `sent_pdf_name`) is written
    once, when the delivery is prepared, so a retry sends what the first attempt
    did and the public page serves that PDF byte for byte.
    """

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(sa.String(100), unique=True)
    # The draft, edited in the workspace.
    recipients: Mapped[dict | None] = mapped_column(sa.JSON)  # {"to": [...], "cc": [...], ...}
    subject: Mapped[str | None] = mapped_column(sa.String(300))
    cover: Mapped[str | None] = mapped_column(sa.Text)  # the cover message, Markdown
    reply_to: Mapped[str] = mapped_column(sa.String(254), default="")
    # Frozen when the delivery is prepared.
    prepared_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    prepared_by: Mapped[str] = mapped_column(sa.String(254), default="")
    sent_recipients: Mapped[dict | None] = mapped_column(sa.JSON)
    sent_signature_ids: Mapped[list | None] = mapped_column(sa.JSON)  # the names in the PDF
    sent_as_of: Mapped[date | None] = mapped_column(sa.Date)
    # Loaded only when read: the public pages look at the record on every visit.
    sent_pdf: Mapped[bytes | None] = mapped_column(sa.LargeBinary, deferred=True)
    sent_pdf_name: Mapped[str | None] = mapped_column(sa.String(150))
    # When the last `to` address accepted the message: from then on the letter is sent.
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # One run sends a letter's mail at a time: the one holding this token, renewed as it goes.
    run_token: Mapped[str | None] = mapped_column(sa.String(32))
    run_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    notify_batch_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # A letter file without a record, as before states existed, is open.
    state: Mapped[LetterState] = mapped_column(
        _enum(LetterState), default=LetterState.OPEN, server_default=LetterState.OPEN.value
    )
    state_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Part of a draft's preview link: a new one makes every link shared before fail.
    preview_nonce: Mapped[str | None] = mapped_column(sa.String(32))
