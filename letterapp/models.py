"""Database models."""

import enum
from datetime import UTC, datetime

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
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


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
    status: Mapped[Status] = mapped_column(_enum(Status), default=Status.PENDING, index=True)
    signed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Folded forms of the signer's email and name, for duplicate detection.
    email_key: Mapped[str] = mapped_column(sa.String(254))
    name_key: Mapped[str] = mapped_column(sa.String(200))

    @property
    def display_name(self) -> str:
        """The name as it appears in the letter: `Name (ACRONYM)`."""
        return f"{self.name} ({self.acronym})" if self.acronym else self.name

    def __repr__(self) -> str:
        return f"<Signature {self.id} {self.letter_slug} {self.status}>"
