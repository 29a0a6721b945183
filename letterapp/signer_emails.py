"""Messages to signers: the confirmation link, a repeat sign-on, a changed text.

Confirmations are queued with the sign-on and sent by a job after the response.

Each is written in the language the signer read the letter in (Signature.language).
"""

from datetime import timedelta

from flask import current_app, render_template, url_for
from flask_babel import force_locale
from flask_babel import lazy_gettext as _l

from . import jobs, mail
from .db import db
from .letters import Letter, translate
from .models import OutgoingMail, Signature, Status, utcnow
from .revisions import changed_paragraphs
from .tokens import CONFIRM, MANAGE, make_token

MAX_MESSAGES = 5  # per sign-on, so the form cannot be used to flood someone's inbox
# What this module sends; a pass sends what is queued with these purposes and never tried.
CONFIRM_PURPOSE = "confirm"
REPEAT_PURPOSE = "repeat"


def link_language(signature: Signature, letter: Letter) -> dict:
    """The signer's language, as a `lang` link argument when it is not the letter's own."""
    language = signature.language or letter.language
    return {} if language == letter.language else {"lang": language}


def in_signers_language(signature: Signature, letter: Letter):
    """A context where gettext speaks the signer's language."""
    return force_locale((signature.language or letter.language).replace("-", "_"))


def signer_message(template: str, subject, signature: Signature, letter: Letter, **context):
    """A message to a signer in the language they read the letter in: (subject, text).

    `subject` is a lazy message (`_l`) with a `%(title)s`; the template gets the
    letter's words in that language as `letter`, and the sign-on as `signature`.
    """
    words = translate(letter, signature.language)
    with in_signers_language(signature, letter):
        text = render_template(template, letter=words, signature=signature, **context)
        return str(subject) % {"title": words.title}, text


def signer_link(endpoint: str, purpose: str, signature: Signature, letter: Letter) -> str:
    """A signer's private link (confirm, or correct and withdraw), opening in their language."""
    token = make_token(purpose, signature.id)
    lang = link_language(signature, letter)
    return url_for(endpoint, slug=letter.slug, token=token, _external=True, **lang)


def queue_confirmation(signature: Signature, letter: Letter, *, repeat: bool = False) -> bool:
    """Queue the confirmation link (or, on a repeat, a note that it is recorded); False if capped.

    Only the text is stored, for `send_queued` to build and send. The caller
    commits: with a new sign-on, in the transaction that inserts it (its id must be
    flushed), so a stored sign-on always has its message waiting.
    """
    if signature.messages_sent >= MAX_MESSAGES:
        current_app.logger.warning("message cap reached for sign-on %s", signature.id)
        return False
    signature.messages_sent += 1
    waiting = signature.status == Status.PENDING
    days = current_app.config["CONFIRM_DAYS"]
    subject, text = signer_message(
        "email/confirm.txt",
        _l("Your sign-on: %(title)s") if repeat else _l("Confirm your sign-on: %(title)s"),
        signature,
        letter,
        repeat=repeat,
        confirm_url=signer_link("public.confirm", CONFIRM, signature, letter) if waiting else None,
        expires=(utcnow() + timedelta(days=days)).date(),
        manage_url=signer_link("public.manage", MANAGE, signature, letter),
    )
    mail.queue_later(
        to=signature.email,
        subject=subject[:250],
        text=text,
        purpose=REPEAT_PURPOSE if repeat else CONFIRM_PURPOSE,
        letter_slug=letter.slug,
        signature_id=signature.id,
    )
    return True


def send_confirmation(signature: Signature, letter: Letter, *, repeat: bool = False) -> bool:
    """Queue the confirmation (see `queue_confirmation`), commit, and send it from a job."""
    queued = queue_confirmation(signature, letter, repeat=repeat)
    db.session.commit()
    if queued:
        start_sending()
    return queued


def start_sending() -> None:
    """Send the queued messages to signers from a background job, after this request."""
    every = current_app.config["MAIL_BATCH_SECONDS"]
    jobs.enqueue_pass("letterapp.signer_emails.send_queued", every)


def send_queued() -> tuple[int, int]:
    """Build and send the messages to signers queued and never tried; (sent, failed).

    The job after each sign-on; what a dead process left is sent by the next pass
    or by `flask mail retry`. Failed messages wait for that command or the outbox page.
    """
    return mail.deliver_new(OutgoingMail.purpose.in_([CONFIRM_PURPOSE, REPEAT_PURPOSE]))


def send_change_notice(signature: Signature, letter: Letter, old, new) -> bool:
    """Tell a signer the text changed since they signed, with the link to re-confirm or withdraw."""
    if signature.messages_sent >= MAX_MESSAGES:
        return False
    signature.messages_sent += 1
    db.session.commit()
    subject, text = signer_message(
        "email/changed.txt",
        _l("The letter you signed has changed: %(title)s"),
        signature,
        letter,
        # The changes are those of the original text: revisions follow the letter's own file.
        changes=changed_paragraphs(old.text if old else "", new.text),
        manage_url=signer_link("public.manage", MANAGE, signature, letter),
    )
    mail.send_mail(
        to=signature.email,
        subject=subject[:250],
        text=text,
        purpose="changed",
        letter_slug=letter.slug,
        signature_id=signature.id,
    )
    return True
