"""Messages to signers: the confirmation link, and what happens on a repeat sign-on.

Each is written in the language the signer read the letter in (Signature.language).
"""

from datetime import timedelta

from flask import current_app, render_template, url_for
from flask_babel import force_locale
from flask_babel import gettext as _

from . import mail
from .db import db
from .letters import Letter, translate
from .models import Signature, Status, utcnow
from .revisions import changed_paragraphs
from .tokens import CONFIRM, MANAGE, make_token

MAX_MESSAGES = 5  # per sign-on, so the form cannot be used to flood someone's inbox


def _language(signature: Signature, letter: Letter) -> dict:
    """The signer's language, as a `lang` link argument when it is not the letter's own."""
    language = signature.language or letter.language
    return {} if language == letter.language else {"lang": language}


def _in_signers_language(signature: Signature, letter: Letter):
    """A context where gettext speaks the signer's language."""
    return force_locale((signature.language or letter.language).replace("-", "_"))


def send_confirmation(signature: Signature, letter: Letter, *, repeat: bool = False) -> bool:
    """Email the confirmation link (or, on a repeat sign-on, say it is recorded); False if capped."""
    if signature.messages_sent >= MAX_MESSAGES:
        current_app.logger.warning("message cap reached for sign-on %s", signature.id)
        return False
    signature.messages_sent += 1
    db.session.commit()
    waiting = signature.status == Status.PENDING
    days = current_app.config["CONFIRM_DAYS"]
    lang = _language(signature, letter)
    with _in_signers_language(signature, letter):
        text = render_template(
            "email/confirm.txt",
            letter=translate(letter, lang.get("lang")),
            signature=signature,
            repeat=repeat,
            confirm_url=url_for(
                "public.confirm",
                slug=letter.slug,
                token=make_token(CONFIRM, signature.id),
                _external=True,
                **lang,
            )
            if waiting
            else None,
            expires=(utcnow() + timedelta(days=days)).date(),
            manage_url=url_for(
                "public.manage",
                slug=letter.slug,
                token=make_token(MANAGE, signature.id),
                _external=True,
                **lang,
            ),
        )
        title = translate(letter, lang.get("lang")).title
        if repeat:
            subject = _("Your sign-on: %(title)s", title=title)
        else:
            subject = _("Confirm your sign-on: %(title)s", title=title)
    mail.send_mail(
        to=signature.email,
        subject=subject[:250],
        text=text,
        purpose="confirm",
        letter_slug=letter.slug,
        signature_id=signature.id,
    )
    return True


def send_change_notice(signature: Signature, letter: Letter, old, new) -> bool:
    """Tell a signer the text changed since they signed, with the link to re-confirm or withdraw."""
    if signature.messages_sent >= MAX_MESSAGES:
        return False
    signature.messages_sent += 1
    db.session.commit()
    lang = _language(signature, letter)
    with _in_signers_language(signature, letter):
        # The changes are those of the original text: revisions follow the letter's own file.
        text = render_template(
            "email/changed.txt",
            letter=translate(letter, lang.get("lang")),
            signature=signature,
            changes=changed_paragraphs(old.text if old else "", new.text),
            manage_url=url_for(
                "public.manage",
                slug=letter.slug,
                token=make_token(MANAGE, signature.id),
                _external=True,
                **lang,
            ),
        )
        title = translate(letter, lang.get("lang")).title
        subject = _("The letter you signed has changed: %(title)s", title=title)
    mail.send_mail(
        to=signature.email,
        subject=subject[:250],
        text=text,
        purpose="changed",
        letter_slug=letter.slug,
        signature_id=signature.id,
    )
    return True
