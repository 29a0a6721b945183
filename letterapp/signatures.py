"""Recording and reading sign-ons."""

from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from .db import db
from .letters import Letter
from .models import Signature, Status, utcnow
from .names import fold, fold_email, sort_key


def signer_keys(name: str, email: str) -> dict[str, str]:
    """The folded name and email that identify one signer on one letter."""
    return {"name_key": fold(name)[:200], "email_key": fold_email(email)[:254]}


def new_signature(
    slug: str,
    signer: dict[str, str],
    *,
    status: Status = Status.PENDING,
    signed_at: datetime | None = None,
) -> Signature:
    return Signature(
        letter_slug=slug,
        status=status,
        signed_at=signed_at or utcnow(),
        **signer,
        **signer_keys(signer["name"], signer["email"]),
    )


def add_signature(slug: str, signer: dict[str, str]) -> Signature | None:
    """Store a pending sign-on; return None if the same signer is already recorded.

    The insert comes first and the unique constraint decides, so two workers
    racing with the same sign-on can never both store it.
    """
    signature = new_signature(slug, signer)
    db.session.add(signature)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        return None
    return signature


def existing_keys(slug: str) -> set[tuple[str, str]]:
    rows = db.session.execute(
        sa.select(Signature.name_key, Signature.email_key).where(Signature.letter_slug == slug)
    )
    return {(row.name_key, row.email_key) for row in rows}


def signatures(slug: str, status: Status | None = None) -> list[Signature]:
    query = sa.select(Signature).where(Signature.letter_slug == slug).order_by(Signature.id)
    if status:
        query = query.where(Signature.status == status)
    return list(db.session.scalars(query))


def approved_names(letter: Letter, as_of: date) -> list[str]:
    """Names of approved signatories who signed by the end of `as_of`, in letter order."""
    query = sa.select(Signature).where(
        Signature.letter_slug == letter.slug,
        Signature.status == Status.APPROVED,
        Signature.signed_at <= letter.end_of(as_of),
    )
    return sorted((s.display_name for s in db.session.scalars(query)), key=sort_key)


def count_approved(slug: str) -> int:
    return db.session.scalar(
        sa.select(sa.func.count())
        .select_from(Signature)
        .where(Signature.letter_slug == slug, Signature.status == Status.APPROVED)
    )


def set_status(slug: str, ids: list[int], status: Status) -> list[Signature]:
    """Set the status of the given sign-ons; raise LookupError naming unknown ids."""
    found = list(
        db.session.scalars(
            sa.select(Signature).where(Signature.letter_slug == slug, Signature.id.in_(ids))
        )
    )
    unknown = sorted(set(ids) - {s.id for s in found})
    if unknown:
        raise LookupError(", ".join(map(str, unknown)))
    for signature in found:
        signature.status = status
    db.session.commit()
    return found
