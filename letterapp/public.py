"""Pages for signers: the letters, the sign-on form, the signatory list and the PDF."""

from datetime import date, datetime

from flask import (
    Blueprint,
    abort,
    current_app,
    redirect,
    render_template,
    request,
    session,
    url_for,
)

from . import signatures
from .forms import SignOnForm
from .letters import Letter, LetterError, list_letters, load_letter
from .markup import render_body
from .names import sort_key
from .pdf import PDFError, render_pdf

bp = Blueprint("public", __name__)


def get_letter(slug: str) -> Letter:
    """The letter with this slug, or 404 (a broken file is not shown half-way)."""
    try:
        return load_letter(current_app.config["LETTERS_DIR"], slug)
    except (FileNotFoundError, LetterError):
        abort(404)


def today(letter: Letter) -> date:
    return datetime.now(letter.timezone).date()


@bp.route("/")
def index():
    letters = [
        letter
        for _, letter in list_letters(current_app.config["LETTERS_DIR"])
        if isinstance(letter, Letter)
    ]
    letters.sort(key=lambda letter: letter.date, reverse=True)
    return render_template(
        "public/index.html",
        open_letters=[letter for letter in letters if letter.is_open()],
        closed_letters=[letter for letter in letters if not letter.is_open()],
    )


@bp.route("/letters/<slug:slug>", methods=["GET", "POST"])
def letter(slug: str):
    letter = get_letter(slug)
    form = SignOnForm()
    status = 200
    if request.method == "POST":
        if not letter.is_open():
            status = 403
        elif form.validate_on_submit():
            recorded = signatures.add_signature(slug, form.signer())
            session["signed"] = {"slug": slug, "name": form.name.data, "already": recorded is None}
            return redirect(url_for(".signed", slug=slug))
        else:
            status = 400
    return render_template(
        "public/letter.html",
        letter=letter,
        body=render_body(letter.body),
        form=form,
        count=signatures.count_approved(slug),
        today=today(letter),
    ), status


@bp.route("/letters/<slug:slug>/signed")
def signed(slug: str):
    letter = get_letter(slug)
    outcome = session.pop("signed", None)
    if outcome and outcome.get("slug") != slug:
        outcome = None
    return render_template("public/signed.html", letter=letter, outcome=outcome)


@bp.route("/letters/<slug:slug>/signatories")
def signatories(slug: str):
    letter = get_letter(slug)
    approved = signatures.signatures(slug, signatures.Status.APPROVED)
    approved.sort(key=lambda s: sort_key(s.display_name))
    return render_template(
        "public/signatories.html", letter=letter, signatories=approved, today=today(letter)
    )


@bp.route("/letters/<slug:slug>.pdf")
def pdf(slug: str):
    letter = get_letter(slug)
    as_of = today(letter)
    try:
        data = render_pdf(letter, signatures.approved_names(letter, as_of), as_of=as_of)
    except PDFError as error:
        current_app.logger.error("PDF of %s cannot be made: %s", slug, error)
        return render_template("public/pdf_error.html", letter=letter), 503
    filename = f"{slug}-{as_of.isoformat()}.pdf"
    return data, {
        "Content-Type": "application/pdf",
        "Content-Disposition": f'inline; filename="{filename}"',
    }
