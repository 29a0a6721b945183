"""Revisions of a letter: saved atomically, recorded in the database, compared word by word."""

import difflib
import hashlib
import os
import re
import tempfile
from pathlib import Path

import sqlalchemy as sa
from markupsafe import Markup, escape
from sqlalchemy.exc import IntegrityError

from .db import db
from .letters import Letter, letter_path, parse_letter
from .models import AuditEntry, Revision, Signature, Status

DISK = "edited on disk"


class SaveError(Exception):
    """The letter could not be written; the file on disk is unchanged."""


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def latest(slug: str) -> Revision | None:
    return db.session.scalar(
        sa.select(Revision).where(Revision.letter_slug == slug).order_by(Revision.number.desc())
    )


def history(slug: str) -> list[Revision]:
    query = sa.select(Revision).where(Revision.letter_slug == slug).order_by(Revision.number)
    return list(db.session.scalars(query))


def get(slug: str, number: int) -> Revision | None:
    return db.session.scalar(
        sa.select(Revision).where(Revision.letter_slug == slug, Revision.number == number)
    )


def record(slug: str, text: str, author: str, note: str = "", minor: bool = False) -> Revision:
    """The revision holding exactly `text`: the latest one, or a new one after it."""
    for _ in range(3):  # two workers may record the same edit at once: one wins
        last = latest(slug)
        if last and last.sha256 == _sha(text):
            return last
        revision = Revision(
            letter_slug=slug, number=(last.number + 1) if last else 1, text=text,
            sha256=_sha(text), author=author, note=note[:500], minor=minor,
        )  # fmt: skip
        db.session.add(revision)
        try:
            db.session.commit()
            return revision
        except IntegrityError:
            db.session.rollback()
    raise RuntimeError(f"could not record a revision of {slug}")


def current(letter: Letter) -> Revision:
    """The revision of the file as it is now; an edit made on disk becomes a new one."""
    return record(letter.slug, letter.path.read_text(encoding="utf-8"), DISK, "picked up from disk")


def save(letters_dir, slug: str, text: str, author: str, note: str = "", minor: bool = False):
    """Check and write a letter file atomically, then record the revision.

    The text goes to a temporary file that replaces the old one in a single
    rename, so a crash or a full disk never leaves half a letter.
    """
    path = letter_path(letters_dir, slug)
    parse_letter(path, text)  # raises LetterError: a bad letter is never saved
    if path.exists():  # the text being replaced is on record first, however it was written
        record(slug, path.read_text(encoding="utf-8"), DISK, "picked up from disk")
    try:
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{slug}.", suffix=".tmp")
    except OSError as error:
        raise SaveError(f"could not save {path.name}: {error.strerror}") from error
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except OSError as error:
        Path(temporary).unlink(missing_ok=True)
        raise SaveError(f"could not save {path.name}: {error.strerror}") from error
    return record(slug, text, author, note, minor)


_WORDS = re.compile(r"\s+|[^\s]+")


def _word_ops(old: str, new: str):
    """(kept, removed, added) runs of words, in order, from `old` to `new`."""
    before, after = _WORDS.findall(old), _WORDS.findall(new)
    matcher = difflib.SequenceMatcher(a=before, b=after, autojunk=False)
    for op, a1, a2, b1, b2 in matcher.get_opcodes():
        if op == "equal":
            yield "".join(before[a1:a2]), "", ""
        else:
            yield "", "".join(before[a1:a2]), "".join(after[b1:b2])


def word_diff(old: str, new: str) -> Markup:
    """The change from `old` to `new`, word by word, as escaped HTML with <del> and <ins>."""
    parts = []
    for kept, removed, added in _word_ops(old, new):
        parts.append(escape(kept))
        if removed:
            parts.append(Markup("<del>%s</del>") % removed)
        if added:
            parts.append(Markup("<ins>%s</ins>") % added)
    return Markup("").join(parts)


def changed_paragraphs(old: str, new: str) -> list[tuple[str, str]]:
    """(before, after) for each changed paragraph, for a plain-text email."""
    before, after = old.splitlines(), new.splitlines()
    matcher = difflib.SequenceMatcher(a=before, b=after, autojunk=False)
    return [
        ("\n".join(before[a1:a2]).strip(), "\n".join(after[b1:b2]).strip())
        for op, a1, a2, b1, b2 in matcher.get_opcodes()
        if op != "equal"
    ]


def binding_number(slug: str) -> int | None:
    """The newest revision signers must have seen: minor changes (typo fixes) do not count."""
    return db.session.scalar(
        sa.select(sa.func.max(Revision.number)).where(
            Revision.letter_slug == slug, Revision.minor.is_(False)
        )
    )


def needs_reconfirmation(slug: str) -> list[Signature]:
    """Live sign-ons made on a revision the text has since changed from."""
    binding = binding_number(slug)
    if binding is None:
        return []
    query = sa.select(Signature).where(
        Signature.letter_slug == slug,
        Signature.status.in_((Status.PENDING, Status.CONFIRMED, Status.APPROVED)),
        Signature.revision_number < binding,
    )
    return list(db.session.scalars(query))


def superseded(signature: Signature) -> tuple[Revision, Revision] | None:
    """(the revision signed, the latest) if the text changed since the signer saw it."""
    binding = binding_number(signature.letter_slug)
    if signature.revision_number is None or binding is None or signature.revision_number >= binding:
        return None
    return get(signature.letter_slug, signature.revision_number), latest(signature.letter_slug)


def reconfirm(signature: Signature) -> None:
    """The signer has read the current text and still signs it."""
    signature.revision_number = latest(signature.letter_slug).number
    db.session.add(
        AuditEntry(
            letter_slug=signature.letter_slug, actor="signer", action="re-confirmed",
            signature_id=signature.id, detail=f"revision {signature.revision_number}",
        )
    )  # fmt: skip
    db.session.commit()
