"""Drafting in the browser: create and edit letters, their revisions, and re-confirmation.

A blueprint nested in the workspace's, so every page here is behind its login.
"""

import json
from itertools import pairwise

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user

from . import revisions
from . import signatures as store
from .auth import require_role
from .db import db
from .forms import ButtonForm, LetterTextForm, NewLetterForm
from .letters import LetterError, letter_path, load_letter, parse_letter
from .markup import render_body
from .models import Membership, Role
from .signer_emails import send_change_notice

bp = Blueprint("editing", __name__)

STARTER = """---
title: {title}
date: {date}
addressee:
  - Name and title of the person addressed
  - Their office
  - Postal address
re: {title}
salutation: Dear ...,
---
Opening paragraph.[^1]

## 1. First section

Text.

Thank you.

[^1]: A note.
"""


def letters_dir() -> str:
    return current_app.config["LETTERS_DIR"]


@bp.route("/new", methods=["GET", "POST"])
def new():
    form = NewLetterForm()
    if form.validate_on_submit():
        slug = form.slug.data
        if letter_path(letters_dir(), slug).exists():
            form.slug.errors.append("A letter with this short name exists already.")
        else:
            # A JSON string is a valid YAML scalar: quotes and colons in the title are safe.
            title = json.dumps(form.title.data, ensure_ascii=False)
            text = STARTER.format(title=title, date=form.date.data.isoformat())
            revisions.save(letters_dir(), slug, text, current_user.email, "created")
            db.session.add(Membership(user_id=current_user.id, letter_slug=slug, role=Role.OWNER))
            store.audit(slug, current_user.email, "created")
            db.session.commit()
            flash("Letter created. It is yours to write.", "success")
            return redirect(url_for(".edit", slug=slug))
    return render_template("manage/new.html", form=form)


@bp.route("/letters/<slug:slug>/edit", methods=["GET", "POST"])
def edit(slug: str):
    require_role(slug, Role.EDITOR)
    path = letter_path(letters_dir(), slug)
    form = LetterTextForm()
    if request.method == "GET":
        form.text.data = path.read_text(encoding="utf-8")
    problems, preview = [], None
    if form.validate_on_submit():
        try:
            letter = parse_letter(path, form.text.data)
        except LetterError as error:
            problems = [str(p) for p in error.problems]
        else:
            if "save" in request.form:
                return save(slug, form)
            preview = (letter, render_body(letter.body))
    return render_template(
        "manage/edit.html", slug=slug, form=form, problems=problems, preview=preview
    )


def save(slug: str, form: LetterTextForm):
    try:
        revision = revisions.save(
            letters_dir(), slug, form.text.data, current_user.email, form.note.data,
            form.minor.data,
        )  # fmt: skip
    except revisions.SaveError as error:
        flash(f"{error}. The letter on disk is unchanged; try again.", "error")
        return redirect(url_for(".edit", slug=slug))
    store.audit(slug, current_user.email, "edited the letter", detail=f"revision {revision.number}")
    db.session.commit()
    flash(f"Saved as revision {revision.number}.", "success")
    return redirect(url_for(".history", slug=slug))


@bp.get("/letters/<slug:slug>/revisions")
def history(slug: str):
    membership = require_role(slug, Role.VIEWER)
    try:
        revisions.current(load_letter(letters_dir(), slug))
    except (LetterError, FileNotFoundError):
        pass  # a broken file is shown on the dashboard; its history still is here
    found = revisions.history(slug)
    diffs = {
        later.number: revisions.word_diff(earlier.text, later.text)
        for earlier, later in pairwise(found)
    }
    return render_template(
        "manage/revisions.html",
        slug=slug,
        revisions=list(reversed(found)),
        diffs=diffs,
        stale=revisions.needs_reconfirmation(slug),
        can_edit=membership.role.allows(Role.EDITOR),
        form=ButtonForm(),
    )


@bp.post("/letters/<slug:slug>/revisions/<int:number>/restore")
def restore(slug: str, number: int):
    require_role(slug, Role.EDITOR)
    revision = revisions.get(slug, number)
    if revision and ButtonForm().validate_on_submit():
        new = revisions.save(
            letters_dir(), slug, revision.text, current_user.email, f"restored revision {number}"
        )
        store.audit(
            slug, current_user.email, "restored", detail=f"revision {number} as {new.number}"
        )
        db.session.commit()
        flash(f"Revision {number} restored as revision {new.number}.", "success")
    return redirect(url_for(".history", slug=slug))


@bp.post("/letters/<slug:slug>/revisions/notify")
def notify(slug: str):
    """Email the signers of superseded text the change, with their re-confirm link."""
    require_role(slug, Role.EDITOR)
    if ButtonForm().validate_on_submit():
        letter = load_letter(letters_dir(), slug)
        current = revisions.current(letter)
        sent = sum(
            send_change_notice(signature, letter, revisions.get(slug, signature.revision_number),
                               current)
            for signature in revisions.needs_reconfirmation(slug)
        )  # fmt: skip
        store.audit(slug, current_user.email, "asked to re-confirm", detail=f"{sent} signer(s)")
        db.session.commit()
        flash(f"Emailed {sent} signer(s) the change.", "success")
    return redirect(url_for(".history", slug=slug))
