"""Drafting in the browser: create and edit letters, their state, revisions and re-confirmation.

A blueprint nested in the workspace's, so every page here is behind its login.
"""

from itertools import pairwise

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user

from . import previews, revisions, states
from . import signatures as store
from .auth import require_role
from .db import db
from .forms import ButtonForm, LetterFieldsForm, LetterTextForm, NewLetterForm
from .letters import Letter, LetterError, format_letter, letter_path, load_letter, parse_letter
from .markup import render_body
from .models import LetterState, Membership, Role
from .pdf import check_printable
from .signer_emails import send_change_notice
from .workspace import get_letter

bp = Blueprint("editing", __name__)
# The previews of the unsaved text, for editor.js; the same fields as the edit page.
bp.add_url_rule(
    "/letters/<slug:slug>/edit/preview", view_func=previews.live_preview, methods=["POST"]
)
bp.add_url_rule("/letters/<slug:slug>/edit/pdf", view_func=previews.pdf_preview, methods=["POST"])

STARTER_BODY = """Opening paragraph.[^1]

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
            values = {
                "title": form.title.data, "date": form.date.data, "re": form.title.data,
                "addressee": ["Name and title of the person addressed", "Their office",
                              "Postal address"],
                "salutation": "Dear ...,",
            }  # fmt: skip
            text = format_letter(values, STARTER_BODY)
            revisions.save(letters_dir(), slug, text, current_user.email, "created")
            db.session.add(Membership(user_id=current_user.id, letter_slug=slug, role=Role.OWNER))
            states.start_draft(slug)
            store.audit(slug, current_user.email, "created", detail="as a draft")
            db.session.commit()
            flash("Letter created as a draft: only its coordinators see it.", "success")
            return redirect(url_for(".edit", slug=slug))
    return render_template("manage/new.html", form=form)


def saved_letter(slug: str) -> Letter:
    """The letter as saved; a file the fields cannot show sends to the whole-file editor."""
    try:
        return load_letter(letters_dir(), slug)
    except FileNotFoundError:
        abort(404)
    except LetterError:
        flash("The letter file has problems: fix them in the whole file first.", "error")
        abort(redirect(url_for(".edit_file", slug=slug)))


@bp.route("/letters/<slug:slug>/edit", methods=["GET", "POST"])
def edit(slug: str):
    require_role(slug, Role.EDITOR)
    saved = saved_letter(slug)
    form = LetterFieldsForm()
    preview, pages, problems = None, None, []
    if request.method == "GET":
        form.fill(saved)
        preview = (saved, render_body(saved.body))
    if form.validate_on_submit():
        # The recipients are edited on the Deliver page: the file keeps its own.
        text = format_letter(form.values() | {"recipients": saved.recipients}, form.body.data)
        try:
            letter = parse_letter(saved.path, text)
        except LetterError as error:
            problems = previews.show_problems(form, text, error)
        else:
            if "save" in request.form:
                return save(slug, text, form.note.data, form.minor.data)
            preview = (letter, render_body(letter.body))
            if "pdf" in request.form:
                pages = previews.pdf_pages(letter)
    return render_template(
        "manage/edit.html", letter=saved, form=form, preview=preview, pages=pages,
        problems=problems, unprintable=check_printable(preview[0], []) if preview else [],
        **state_context(saved),
    )  # fmt: skip


@bp.route("/letters/<slug:slug>/edit/file", methods=["GET", "POST"])
def edit_file(slug: str):
    """The whole letter file in one text area, for what the fields cannot say."""
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
                return save(slug, form.text.data, form.note.data, form.minor.data)
            preview = (letter, render_body(letter.body))
    return render_template(
        "manage/edit_file.html", slug=slug, form=form, problems=problems, preview=preview
    )


def save(slug: str, text: str, note: str, minor: bool):
    try:
        revision = revisions.save(letters_dir(), slug, text, current_user.email, note, minor)
    except revisions.SaveError as error:
        flash(f"{error}. The letter on disk is unchanged; try again.", "error")
        return redirect(url_for(".edit", slug=slug))
    store.audit(slug, current_user.email, "edited the letter", detail=f"revision {revision.number}")
    db.session.commit()
    flash(f"Saved as revision {revision.number}.", "success")
    return redirect(url_for(".history", slug=slug))


def state_context(letter: Letter) -> dict:
    """The letter's state, its moves and the draft's preview link, for a page to show."""
    state = states.state_of(letter)
    link = None
    if state == LetterState.DRAFT:
        token = states.preview_token(letter.slug)
        link = url_for("public.draft_preview", slug=letter.slug, token=token, _external=True)
    return {"state": state, "moves": states.moves(letter), "preview_link": link,
            "button": ButtonForm()}  # fmt: skip


@bp.post("/letters/<slug:slug>/state")
def change_state(slug: str):
    letter = get_letter(slug, Role.EDITOR)
    target = request.form.get("state", "")
    if ButtonForm().validate_on_submit():
        if target not in states.moves(letter):
            flash(f"The letter cannot be made {target[:20]!r} from here.", "error")
        else:
            try:
                states.move(slug, LetterState(target), current_user.email)
            except states.StateError as error:
                flash(str(error), "error")
            else:
                flash(f"The letter is now {target}.", "success")
    return redirect(url_for("manage.dashboard", slug=slug))


@bp.post("/letters/<slug:slug>/preview-link")
def renew_preview_link(slug: str):
    require_role(slug, Role.EDITOR)
    if ButtonForm().validate_on_submit():
        states.renew_preview_link(slug, current_user.email)
        flash("A new preview link is made: the links shared before no longer work.", "success")
    return redirect(url_for("manage.dashboard", slug=slug))


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
