"""A letter's state (draft, open, closed, sent) and a draft's private preview link.

The state is kept on the letter's LetterRecord. A letter file without a record
is open, as every letter was before states existed. "Sent" is not stored here:
the delivery sets `sent_at`, and from then on the state no longer changes.
"""

import dataclasses
import secrets

import sqlalchemy as sa
from flask import current_app
from itsdangerous import BadSignature, URLSafeSerializer

from . import delivery
from .db import db
from .letters import Letter
from .models import LetterRecord, LetterState, utcnow
from .signatures import audit

SENT = "sent"
# The moves offered on the workspace's pages; the command line may set any state.
MOVES = {
    LetterState.DRAFT: (LetterState.OPEN,),
    LetterState.OPEN: (LetterState.CLOSED,),
    LetterState.CLOSED: (LetterState.OPEN,),
}


class StateError(Exception):
    """A move the letter cannot make; the message is for the coordinator."""


def state_of(letter: Letter) -> str:
    """The letter's state as signers meet it: a passed `closes` time closes an open letter."""
    record = delivery.find_record(letter.slug)
    if record and record.sent_at:
        return SENT
    state = record.state if record else LetterState.OPEN
    if state == LetterState.OPEN and not letter.is_open():
        return LetterState.CLOSED
    return state


def moves(letter: Letter) -> tuple[LetterState, ...]:
    """The states a coordinator may move the letter to from the workspace."""
    record = delivery.find_record(letter.slug)
    if record and record.sent_at:
        return ()
    return MOVES[record.state if record else LetterState.OPEN]


# Built once: every public page asks, and building costs more than the query.
# Only the columns it needs: a sent letter's record also holds the whole PDF.
_PUBLIC_STATE = sa.select(
    LetterRecord.sent_at, LetterRecord.state, LetterRecord.state_changed_at
).where(LetterRecord.slug == sa.bindparam("slug"))


def public_view(letter: Letter) -> Letter | None:
    """The letter as the public sees it: None while a draft; closed once closed by hand.

    A letter closed by a coordinator is given the closing moment as its `closes`,
    so every page and check that asks `is_open()` treats it as closed.
    """
    record = db.session.execute(_PUBLIC_STATE, {"slug": letter.slug}).first()
    if record is None or record.sent_at:
        return letter
    if record.state == LetterState.DRAFT:
        return None
    closed_at = record.state_changed_at
    if record.state == LetterState.CLOSED and closed_at and letter.is_open(closed_at):
        return dataclasses.replace(letter, closes=closed_at.astimezone(letter.timezone))
    return letter


def move(slug: str, state: LetterState, actor: str) -> None:
    """Set the letter's state and write it in the audit log; StateError if it cannot be."""
    record = delivery.letter_record(slug)
    if record.sent_at:
        raise StateError("The letter has been sent: its state no longer changes.")
    before = record.state
    if before == state:
        raise StateError(f"The letter is {state} already.")
    record.state = state
    record.state_changed_at = utcnow()
    audit(slug, actor, f"made it {state}", detail=f"{before} -> {state}")
    db.session.commit()


def start_draft(slug: str) -> None:
    """A new letter starts as a draft; the caller commits."""
    record = delivery.letter_record(slug)
    record.state = LetterState.DRAFT
    record.state_changed_at = utcnow()


def _serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt="letter-preview")


def preview_token(slug: str) -> str:
    """The token of the draft's preview link, made on first use."""
    record = delivery.letter_record(slug)
    if not record.preview_nonce:
        record.preview_nonce = secrets.token_urlsafe(12)
        db.session.commit()
    return _serializer().dumps([slug, record.preview_nonce])


def renew_preview_link(slug: str, actor: str) -> None:
    """A new nonce: every preview link shared before stops working."""
    record = delivery.letter_record(slug)
    record.preview_nonce = secrets.token_urlsafe(12)
    audit(slug, actor, "new preview link", detail="earlier preview links no longer work")
    db.session.commit()


def preview_allowed(slug: str, token: str) -> bool:
    """Whether `token` is the letter's current preview link."""
    try:
        signed_slug, nonce = _serializer().loads(token)
    except (BadSignature, ValueError, TypeError):
        return False
    record = delivery.find_record(slug)
    return (
        signed_slug == slug
        and record is not None
        and record.preview_nonce is not None
        and secrets.compare_digest(str(nonce), record.preview_nonce)
    )
