"""Recording and reading sign-ons."""

from collections import Counter, defaultdict
from datetime import date, datetime, timedelta
from itertools import combinations

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from .db import db
from .letters import Letter
from .models import AuditEntry, Kind, LetterRecord, OutgoingMail, Signature, Status, utcnow
from .names import fold, fold_email, likely_same_keys, sort_key


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


def add_signature(slug: str, signer: dict) -> Signature | None:
    """Insert a pending sign-on; return None (and roll back) if the same signer is recorded.

    The insert comes first and the unique constraint decides, so two workers
    racing with the same sign-on can never both store it. The caller commits,
    with what belongs to the sign-on (its confirmation) in the same transaction.
    """
    signature = new_signature(slug, signer)
    db.session.add(signature)
    try:
        db.session.flush()
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


def name_in_letter(signature: Signature, letter: Letter) -> str:
    """How a signatory appears in this letter, in the format its coordinators chose."""
    if signature.letter_name:
        return signature.letter_name
    name = signature.name
    organisation = signature.kind == Kind.ORGANIZATION and signature.acronym
    if organisation and letter.signatory_format != "name":
        name = f"{name} ({signature.acronym})"
    if letter.signatory_format == "name-acronym-country" and signature.country:
        name = f"{name}, {signature.country}"
    return name


def approved(letter: Letter, as_of: date | None = None) -> list[Signature]:
    """Approved sign-ons, by the end of `as_of` if given, sorted as in the letter."""
    query = sa.select(Signature).where(
        Signature.letter_slug == letter.slug, Signature.status == Status.APPROVED
    )
    if as_of:
        query = query.where(Signature.signed_at <= letter.end_of(as_of))
    found = db.session.scalars(query)
    return sorted(found, key=lambda s: sort_key(name_in_letter(s, letter)))


def approved_names(letter: Letter, as_of: date) -> list[str]:
    """Names of approved signatories who signed by the end of `as_of`, in letter order."""
    return [name_in_letter(s, letter) for s in approved(letter, as_of)]


# Built once: the letter page asks on every view, and building costs more than the query.
_COUNT_APPROVED = (
    sa.select(sa.func.count())
    .select_from(Signature)
    .where(Signature.letter_slug == sa.bindparam("slug"), Signature.status == Status.APPROVED)
)


def count_approved(slug: str) -> int:
    return db.session.scalar(_COUNT_APPROVED, {"slug": slug})


def set_status(
    slug: str, ids: list[int], status: Status, actor: str, reason: str = ""
) -> list[Signature]:
    """Approve or reject sign-ons, with an audit entry each; raise LookupError naming unknown ids."""
    found = list(
        db.session.scalars(
            sa.select(Signature).where(Signature.letter_slug == slug, Signature.id.in_(ids))
        )
    )
    unknown = sorted(set(ids) - {s.id for s in found})
    if unknown:
        raise LookupError(", ".join(map(str, unknown)))
    action = {Status.APPROVED: "approved", Status.REJECTED: "rejected"}[status]
    for signature in found:
        signature.status = status
        if status == Status.REJECTED:
            signature.reject_reason = reason
        audit(slug, actor, action, signature, reason)
    db.session.commit()
    return found


def set_letter_name(signature: Signature, name: str | None, actor: str) -> None:
    """Set how a name appears in the letter; the signer's own name is kept."""
    signature.letter_name = name or None
    audit(signature.letter_slug, actor, "edited", signature, f"in the letter as {name!r}")
    db.session.commit()


ACTIVE = (Status.PENDING, Status.CONFIRMED, Status.APPROVED)


def likely_duplicates(slug: str) -> list[tuple[Signature, Signature, str]]:
    """Pairs of active sign-ons with the same email or likely the same name, and why."""
    groups: dict[tuple[str, str], list[Signature]] = defaultdict(list)
    query = (
        sa.select(Signature)
        .where(Signature.letter_slug == slug, Signature.status.in_(ACTIVE))
        .order_by(Signature.id)
    )
    for signature in db.session.scalars(query):
        groups[("the same email", signature.email_key)].append(signature)
        for key in likely_same_keys(signature.name, signature.acronym):
            groups[("a similar name", key)].append(signature)
    pairs: dict[tuple[int, int], tuple[Signature, Signature, str]] = {}
    for (why, _), group in groups.items():
        for first, second in combinations(group, 2):
            pairs.setdefault((first.id, second.id), (first, second, why))
    return [pairs[key] for key in sorted(pairs)]


def merge(keep: Signature, duplicate: Signature, actor: str) -> None:
    """Keep one sign-on and record the other as merged into it."""
    duplicate.status = Status.MERGED
    duplicate.merged_into_id = keep.id
    audit(keep.letter_slug, actor, "merged", duplicate, f"into sign-on {keep.id}")
    db.session.commit()


def counts(slug: str) -> dict[Status, int]:
    rows = db.session.execute(
        sa.select(Signature.status, sa.func.count())
        .where(Signature.letter_slug == slug)
        .group_by(Signature.status)
    )
    found = dict(rows.all())
    return {status: found.get(status, 0) for status in Status}


def per_day(slug: str, letter: Letter) -> list[tuple[date, int]]:
    """Sign-ons per day in the letter's time zone, for the dashboard."""
    days: Counter[date] = Counter()
    query = sa.select(Signature.signed_at).where(Signature.letter_slug == slug)
    for signed_at in db.session.scalars(query):
        days[signed_at.astimezone(letter.timezone).date()] += 1
    return sorted(days.items())


def get_signature(slug: str, signature_id: int) -> Signature | None:
    signature = db.session.get(Signature, signature_id)
    return signature if signature and signature.letter_slug == slug else None


def find_by_email(slug: str, email: str) -> list[Signature]:
    query = sa.select(Signature).where(
        Signature.letter_slug == slug, Signature.email_key == fold_email(email)
    )
    return list(db.session.scalars(query))


def find_same_signer(slug: str, signer: dict) -> Signature | None:
    keys = signer_keys(signer["name"], signer["email"])
    return db.session.scalar(
        sa.select(Signature).where(
            Signature.letter_slug == slug,
            Signature.name_key == keys["name_key"],
            Signature.email_key == keys["email_key"],
        )
    )


def audit(slug: str, actor: str, action: str, signature: Signature | None = None, detail=""):
    """Add an audit entry to the session; the caller commits it with the change it records."""
    db.session.add(
        AuditEntry(
            letter_slug=slug,
            actor=actor,
            action=action,
            signature_id=signature.id if signature else None,
            detail=detail,
        )
    )


def confirm(signature: Signature, letter: Letter) -> bool:
    """Mark a sign-on confirmed by its signer (approved if the letter moderates itself)."""
    if signature.status != Status.PENDING:
        return False
    auto = letter.moderation == "auto"
    signature.status = Status.APPROVED if auto else Status.CONFIRMED
    signature.confirmed_at = utcnow()
    audit(signature.letter_slug, "signer", "confirmed", signature, "auto-approved" if auto else "")
    db.session.commit()
    return True


def withdraw(signature: Signature) -> None:
    signature.status = Status.WITHDRAWN
    audit(signature.letter_slug, "signer", "withdrew", signature)
    db.session.commit()


def correct(signature: Signature, letter: Letter, values: dict) -> bool:
    """Apply a signer's correction; False if it would duplicate another sign-on.

    A correction to an approved sign-on goes back to the coordinators in manual
    moderation: the letter must not change without them seeing it.
    """
    changes = {k: v for k, v in values.items() if getattr(signature, k) != v}
    if not changes:
        return True
    for key, value in changes.items():
        setattr(signature, key, value)
    signature.name_key = signer_keys(signature.name, signature.email)["name_key"]
    signature.letter_name = None  # the coordinator's version was of the old name
    if signature.status == Status.APPROVED and letter.moderation == "manual":
        signature.status = Status.CONFIRMED
    detail = ", ".join(f"{k}: {v!r}" for k, v in changes.items())
    audit(signature.letter_slug, "signer", "corrected", signature, detail)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        return False
    return True


def import_rows(slug: str, rows: list[dict], actor: str) -> int:
    """Store checked rows as approved sign-ons in one transaction: all or nothing.

    Raises IntegrityError if one of them was signed meanwhile; nothing is stored then.
    """
    for row in rows:
        values = dict(row)
        signed_at = values.pop("signed_at", None)
        db.session.add(new_signature(slug, values, status=Status.APPROVED, signed_at=signed_at))
    audit(slug, actor, "imported", detail=f"{len(rows)} sign-on(s)")
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise
    return len(rows)


def add_by_hand(slug: str, signer: dict, actor: str) -> Signature | None:
    """A coordinator adds a sign-on (from an email reply): approved; None if already there."""
    signature = new_signature(slug, signer, status=Status.APPROVED)
    db.session.add(signature)
    try:
        db.session.flush()
    except IntegrityError:
        db.session.rollback()
        return None
    audit(slug, actor, "added", signature)
    db.session.commit()
    return signature


def due_for_purge(days: int, slug: str | None = None) -> list[str]:
    """Letters sent more than `days` ago: their signers' contact details should go."""
    query = sa.select(LetterRecord.slug).where(
        LetterRecord.sent_at.is_not(None), LetterRecord.sent_at <= utcnow() - timedelta(days=days)
    )
    if slug:
        query = query.where(LetterRecord.slug == slug)
    return list(db.session.scalars(query))


def purge_contacts(slug: str, actor: str) -> int:
    """Remove the contact details of a letter's signers; the public names stay.

    Signers who asked to hear about the letter's follow-up keep theirs. The
    folded email in the duplicate key goes too: it is contact data as well.
    """
    query = sa.select(Signature).where(
        Signature.letter_slug == slug,
        Signature.contact_purged_at.is_(None),
        Signature.updates_opt_in.is_(False),
    )
    ids = []
    for signature in db.session.scalars(query):
        signature.email = ""
        signature.email_key = f"purged:{signature.id}"
        signature.contact_name = signature.contact_title = ""
        signature.contact_purged_at = utcnow()
        ids.append(signature.id)
    # The messages sent to them carry the same details.
    db.session.execute(
        sa.update(OutgoingMail)
        .where(OutgoingMail.signature_id.in_(ids))
        .values(raw="", recipient="", subject="")
    )
    audit(slug, actor, "purged contacts", detail=f"{len(ids)} sign-on(s)")
    db.session.commit()
    return len(ids)
