"""Pages for signers: the letters, the sign-on form, the signatory list and the PDF."""

import time

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user
from flask_wtf.csrf import generate_csrf
from markupsafe import Markup

from . import delivery, exports, revisions, signatures, states
from .db import db
from .forms import ButtonForm, CorrectionForm, ResendForm, SignOnForm
from .i18n import current_language, in_current_language
from .letters import Letter, LetterError, list_letters, load_letter, translate
from .limits import SIGN_ON, SIGN_ON_PER_EMAIL, by_submitted_email, limiter
from .markup import render_body
from .models import AuditEntry, Kind, Signature, Status
from .pdf import PDFError
from .signer_emails import queue_confirmation, send_confirmation, start_sending
from .tokens import CONFIRM, MANAGE, TokenError, read_token

bp = Blueprint("public", __name__)


def get_letter(slug: str) -> Letter:
    """The letter as the public sees it, or 404: a broken file or a draft is not shown."""
    try:
        letter = states.public_view(load_letter(current_app.config["LETTERS_DIR"], slug))
    except (FileNotFoundError, LetterError):
        abort(404)
    if letter is None:
        abort(404)
    return letter


@bp.route("/")
def index():
    letters = [
        in_current_language(visible)
        for _slug, letter in list_letters(current_app.config["LETTERS_DIR"])
        if isinstance(letter, Letter) and (visible := states.public_view(letter))
    ]
    letters.sort(key=lambda letter: letter.date, reverse=True)
    return render_template(
        "public/index.html",
        open_letters=[letter for letter in letters if letter.is_open()],
        closed_letters=[letter for letter in letters if not letter.is_open()],
    )


@bp.route("/letters/<slug:slug>", methods=["GET", "POST"])
@limiter.limit(SIGN_ON, methods=["POST"])
@limiter.limit(SIGN_ON_PER_EMAIL, key_func=by_submitted_email("sign-on"), methods=["POST"])
def letter(slug: str):
    letter = get_letter(slug)
    if request.method == "GET":
        return letter_page(letter)
    form = SignOnForm()
    status = 400
    if not letter.is_open():
        status = 403
    elif form.validate_on_submit():
        if form.homepage.data:
            current_app.logger.info("honeypot filled on %s: sign-on dropped", slug)
        else:
            sign_on(letter, form)
        return redirect(url_for(".signed", slug=slug))
    return letter_page(letter, form), status


def letter_page(letter: Letter, form: SignOnForm | None = None) -> str:
    """The letter with its sign-on form: `form` as submitted, or an empty one.

    A visitor's first view (an empty form, no messages, not logged in) differs
    from the next visitor's only by the CSRF token, so each worker renders it
    once while the letter, its count, its day and its delivery stay the same,
    and puts each visitor's token in.
    """
    text = in_current_language(letter)
    count = signatures.count_approved(letter.slug)
    delivered = delivery.delivered(letter.slug)
    context = {"letter": text, "count": count, "today": letter.today(), "delivered": delivered}
    if form or "_flashes" in session or current_user.is_authenticated:
        return _render_letter_page(form or SignOnForm(), **context)
    key = (
        count,
        context["today"],
        delivered.sent_at if delivered else None,
        letter.is_open(),
        request.script_root,
    )
    token = generate_csrf()  # the form's token: the same throughout a request
    pages = current_app.extensions.setdefault("letterapp_letter_pages", {})
    language = current_language()  # the words around the letter follow it too
    cached = pages.get((letter.slug, language))
    # Equal, not the same object: `load_letter` gives a new Letter on every call.
    if cached and cached[0] == text and cached[1] == key:
        return cached[3].replace(cached[2], token)
    html = _render_letter_page(SignOnForm(), **context)
    pages[letter.slug, language] = (text, key, token, html)
    return html


def _render_letter_page(form: SignOnForm, letter: Letter, **context) -> str:
    return render_template(
        "public/letter.html", letter=letter, body=render_body(letter.body), form=form, **context
    )


@bp.route("/letters/<slug:slug>/preview/<token>")
def draft_preview(slug: str, token: str):
    """A draft as signers will read it, for partners holding the private link; no sign-on."""
    try:
        letter = load_letter(current_app.config["LETTERS_DIR"], slug)
    except (FileNotFoundError, LetterError):
        abort(404)
    if not states.preview_allowed(slug, token):
        abort(404)
    page = render_template(
        "public/draft_preview.html", letter=letter, body=render_body(letter.body)
    )
    return page, {"X-Robots-Tag": "noindex, nofollow", "Cache-Control": "private, no-store"}


def sign_on(letter: Letter, form: SignOnForm) -> None:
    """Store a sign-on and email its signer; a repeat gets the same page and an email saying so.

    The page never tells whether an address has signed: only its owner learns it.
    The sign-on and its confirmation are stored in one transaction; a job sends it.
    """
    signer = form.signer()
    organisation = signer["kind"] == Kind.ORGANIZATION
    signer["authorised"] = bool(form.authorised.data) and organisation
    signer["updates_opt_in"] = bool(form.updates_opt_in.data)
    signer["revision_number"] = revision_number(letter)
    signer["language"] = current_language()
    signature = signatures.add_signature(letter.slug, signer)
    if signature is None:
        send_confirmation(signatures.find_same_signer(letter.slug, signer), letter, repeat=True)
    else:
        queue_confirmation(signature, letter)
        db.session.commit()
        start_sending()
    session["signed"] = {"slug": letter.slug, "email": signer["email"]}


def revision_number(letter: Letter) -> int:
    """The number of the letter's current revision, looked up once per version of its file.

    `load_letter` gives an equal Letter while the file is unchanged, and the
    revision of an unchanged file stays the same.
    """
    cached = current_app.extensions.setdefault("letterapp_revision_numbers", {})
    found = cached.get(letter.slug)
    if found and found[0] == letter:
        return found[1]
    number = revisions.current(letter).number
    cached[letter.slug] = (letter, number)
    return number


@bp.route("/letters/<slug:slug>/signed")
def signed(slug: str):
    letter = get_letter(slug)
    outcome = session.pop("signed", None)
    if outcome and outcome.get("slug") != slug:
        outcome = None
    return render_template(
        "public/signed.html", letter=in_current_language(letter), outcome=outcome
    )


def linked_signature(slug: str, purpose: str, token: str) -> tuple[Letter, Signature]:
    """The letter and the sign-on a signer's link points to; else a page saying why (400)."""
    letter = get_letter(slug)
    max_age = current_app.config["CONFIRM_DAYS"] * 86400 if purpose == CONFIRM else None
    try:
        signature = signatures.get_signature(slug, read_token(purpose, token, max_age))
    except TokenError as error:
        problem = str(error)
    else:
        if signature is not None and signature.status != Status.MERGED:
            return letter, signature
        problem = _("This sign-on no longer exists.")
    page = render_template(
        "public/link_problem.html", letter=in_current_language(letter), problem=problem
    )
    abort(make_response(page, 400))


@bp.route("/letters/<slug:slug>/confirm/<token>", methods=["GET", "POST"])
def confirm(slug: str, token: str):
    # A GET only shows the button: mail scanners open every link in a message.
    letter, signature = linked_signature(slug, CONFIRM, token)
    form = ButtonForm()
    if form.validate_on_submit():
        if letter.is_open() and signatures.confirm(signature, letter):
            flash(_("Thank you: your sign-on is confirmed."), "success")
        return redirect(url_for(".confirm", slug=slug, token=token))
    return render_template(
        "public/confirm.html", letter=in_current_language(letter), signature=signature, form=form
    )


@bp.route("/letters/<slug:slug>/resend", methods=["GET", "POST"])
@limiter.limit(SIGN_ON, methods=["POST"])
@limiter.limit(SIGN_ON_PER_EMAIL, key_func=by_submitted_email("resend"), methods=["POST"])
def resend(slug: str):
    letter = get_letter(slug)
    form = ResendForm()
    if form.validate_on_submit():
        for signature in signatures.find_by_email(slug, form.email.data):
            if signature.status == Status.PENDING:
                send_confirmation(signature, letter)
        flash(
            _(
                "If a sign-on with this address is waiting for confirmation, "
                "we have sent the link again. Please check your inbox."
            ),
            "success",
        )
        return redirect(url_for(".resend", slug=slug))
    return render_template("public/resend.html", letter=in_current_language(letter), form=form)


@bp.route("/letters/<slug:slug>/signon/<token>", methods=["GET", "POST"])
def manage(slug: str, token: str):
    letter, signature = linked_signature(slug, MANAGE, token)
    form = CorrectionForm(obj=signature)
    withdraw_form = ButtonForm(prefix="withdraw")
    if not letter.is_open() or signature.status == Status.WITHDRAWN:
        form = withdraw_form = None
    elif form.validate_on_submit():
        if signatures.correct(signature, letter, form.signer()):
            flash(_("Your correction is saved."), "success")
            return redirect(url_for(".manage", slug=slug, token=token))
        form.name.errors.append(_("Another sign-on with this name and email is already recorded."))
    revisions.current(letter)
    changed = revisions.superseded(signature)
    return render_template(
        "public/manage.html",
        letter=in_current_language(letter),
        signature=signature,
        form=form,
        withdraw_form=withdraw_form,
        reconfirm_form=ButtonForm(prefix="reconfirm") if changed and withdraw_form else None,
        diff=revisions.word_diff(changed[0].text, changed[1].text) if changed else None,
        name_in_letter=signatures.name_in_letter(signature, letter),
    )


def signer_button(slug: str, token: str, prefix: str, action, message: str):
    """Do what a signer's button on their private page asks, while the letter is open."""
    letter, signature = linked_signature(slug, MANAGE, token)
    if ButtonForm(prefix=prefix).validate_on_submit() and letter.is_open():
        action(signature)
        flash(message, "success")
    return redirect(url_for(".manage", slug=slug, token=token))


@bp.post("/letters/<slug:slug>/signon/<token>/reconfirm")
def reconfirm(slug: str, token: str):
    message = _("Thank you: you have re-confirmed your sign-on to the current text.")
    return signer_button(slug, token, "reconfirm", revisions.reconfirm, message)


@bp.post("/letters/<slug:slug>/signon/<token>/withdraw")
def withdraw(slug: str, token: str):
    message = _("Your sign-on is withdrawn: your name will not appear in the letter.")
    return signer_button(slug, token, "withdraw", signatures.withdraw, message)


# Seconds a rendered list of names is reused while nothing in its key changes.
NAME_LIST_MAX_AGE = 60


def _name_list(letter: Letter) -> Markup:
    """The list of approved names as HTML: the `name_list` block of the page, rendered alone."""
    approved = signatures.approved(letter)
    if letter.group_signatories:
        approved.sort(key=lambda s: s.kind != Kind.ORGANIZATION)  # stable: keeps name order
    template = current_app.jinja_env.get_template("public/signatories.html")
    context = template.new_context(
        {
            "letter": letter,
            "signatories": [(s, signatures.name_in_letter(s, letter)) for s in approved],
        }
    )
    return Markup("".join(template.blocks["name_list"](context)))


@bp.route("/letters/<slug:slug>/signatories")
def signatories(slug: str):
    letter = get_letter(slug)
    count = signatures.count_approved(slug)
    last_change = db.session.scalar(
        db.select(db.func.max(AuditEntry.id)).where(AuditEntry.letter_slug == slug)
    )
    # Every change to a sign-on writes an audit entry, so the approved count and the
    # letter's last entry tell when each worker must render its list again.
    key = (count, last_change, letter.signatory_format, letter.group_signatories)
    name_lists = current_app.extensions.setdefault("letterapp_name_lists", {})
    # One list per language: its headings (Organisations, Individuals) are translated.
    cached = name_lists.get((slug, current_language()))
    if cached and cached[0] == key and time.monotonic() - cached[1] < NAME_LIST_MAX_AGE:
        names = cached[2]
    else:
        names = _name_list(letter)
        name_lists[(slug, current_language())] = (key, time.monotonic(), names)
    return render_template(
        "public/signatories.html",
        letter=in_current_language(letter),
        count=count,
        names=names,
        today=letter.today(),
    )


@bp.route("/letters/<slug:slug>.pdf")
def pdf(slug: str):
    """The PDF in the letter's own language, or in a translation's with `?lang=ko`."""
    original = get_letter(slug)
    letter = translate(original, request.args.get("lang"))
    if sent := delivery.delivered(slug):
        # The PDF as delivered, byte for byte: it never changes after the letter is sent.
        return sent.sent_pdf, {
            "Content-Type": "application/pdf",
            "Content-Disposition": f'inline; filename="{sent.sent_pdf_name}"',
        }
    as_of = letter.today()
    try:
        data = exports.pdf_or_start(letter, as_of=as_of)
    except PDFError as error:
        current_app.logger.error("PDF of %s cannot be made: %s", slug, error)
        return render_template("public/pdf_error.html", letter=letter), 503
    if data is None:
        page = render_template("public/pdf_preparing.html", letter=letter)
        return page, 202, {"Retry-After": "3", "Cache-Control": "no-store"}
    language = "" if letter is original else f"{letter.language}-"
    filename = f"{slug}-{language}{as_of.isoformat()}.pdf"
    return data, {
        "Content-Type": "application/pdf",
        "Content-Disposition": f'inline; filename="{filename}"',
    }
