"""Messages to signers: the confirmation link, and what happens on a repeat sign-on."""

from datetime import timedelta

from flask import current_app, render_template, url_for

from . import mail
from .db import db
from .letters import Letter
from .models import Signature, Status, utcnow
from .revisions import changed_paragraphs
from .tokens import CONFIRM, MANAGE, make_token

MAX_MESSAGES = 5  # per sign-on, so the form cannot be used to flood someone's inbox


def send_confirmation(signature: Signature, letter: Letter, *, repeat: bool = False) -> bool:
    """Email the confirmation link (or, on a repeat sign-on, say it is recorded); False if capped."""
    if signature.messages_sent >= MAX_MESSAGES:
        current_app.logger.warning("message cap reached for sign-on %s", signature.id)
        return False
    signature.messages_sent += 1
    db.session.commit()
    waiting = signature.status == Status.PENDING
    days = current_app.config["CONFIRM_DAYS"]
    text = render_template(
        "email/confirm.txt",
        letter=letter,
        signature=signature,
        repeat=repeat,
        confirm_url=url_for(
            "public.confirm",
            slug=letter.slug,
            token=make_token(CONFIRM, signature.id),
            _external=True,
        )
        if waiting
        else None,
        expires=(utcnow() + timedelta(days=days)).date(),
        manage_url=url_for(
            "public.manage",
            slug=letter.slug,
            token=make_token(MANAGE, signature.id),
            _external=True,
        ),
    )
    subject = f"{'Your sign-on' if repeat else 'Confirm your sign-on'}: {letter.title}"
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
    text = render_template(
        "email/changed.txt",
        letter=letter,
        signature=signature,
        changes=changed_paragraphs(old.text if old else "", new.text),
        manage_url=url_for(
            "public.manage",
            slug=letter.slug,
            token=make_token(MANAGE, signature.id),
            _external=True,
        ),
    )
    mail.send_mail(
        to=signature.email,
        subject=f"The letter you signed has changed: {letter.title}"[:250],
        text=text,
        purpose="changed",
        letter_slug=letter.slug,
        signature_id=signature.id,
    )
    return True
