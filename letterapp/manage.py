"""The coordinators' workspace: `/manage/...`, one letter at a time, behind login."""

import io
from datetime import UTC, date, datetime

import sqlalchemy as sa
from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user, login_required
from sqlalchemy.exc import IntegrityError
from wtforms.fields.choices import SelectChoice

from . import delivering, editing, exports, jobs, revisions
from . import signatures as store
from .auth import letters_of, require_role
from .csvfiles import read_signatories, write_signatories
from .db import db
from .forms import (
    ButtonForm,
    ExportForm,
    ImportForm,
    LetterNameForm,
    MergeForm,
    RejectForm,
    SignatoryForm,
)
from .letters import Letter, LetterError, load_letter, translate
from .models import AuditEntry, MailStatus, OutgoingMail, Role, Signature, Status
from .pdf import PDFError
from .workspace import actor, attachment, get_letter, page_image

bp = Blueprint("manage", __name__, url_prefix="/manage")
# Nested, so behind the same login: drafting, and delivering the letter.
bp.register_blueprint(editing.bp)
bp.register_blueprint(delivering.bp)
PAGE_SIZE = 100


@bp.before_request
@login_required
def require_login() -> None:
    """Every page here needs a logged-in coordinator."""


@bp.get("/")
def letters():
    memberships = letters_of(current_user)
    counts = {m.letter_slug: store.counts(m.letter_slug) for m in memberships}
    return render_template("manage/letters.html", memberships=memberships, counts=counts)


@bp.get("/letters/<slug:slug>")
def dashboard(slug: str):
    membership = require_role(slug, Role.VIEWER)
    letter, problems = None, []
    try:
        letter = load_letter(current_app.config["LETTERS_DIR"], slug)
    except FileNotFoundError:
        problems = ["The letter file is missing."]
    except LetterError as error:
        problems = [str(p) for p in error.problems]
    failed_mail = db.session.scalar(
        sa.select(sa.func.count())
        .select_from(OutgoingMail)
        .where(OutgoingMail.letter_slug == slug, OutgoingMail.status == MailStatus.FAILED)
    )
    recent = db.session.scalars(
        sa.select(AuditEntry)
        .where(AuditEntry.letter_slug == slug)
        .order_by(AuditEntry.id.desc())
        .limit(8)
    )
    return render_template(
        "manage/dashboard.html",
        slug=slug,
        letter=letter,
        role=membership.role,
        problems=problems,
        counts=store.counts(slug),
        per_day=store.per_day(slug, letter) if letter else [],
        time_left=letter.closes - datetime.now(UTC) if letter and letter.closes else None,
        failed_mail=failed_mail,
        recent=list(recent),
        can_edit=membership.role.allows(Role.EDITOR),
        **(editing.state_context(letter) if letter else {}),
    )


@bp.get("/letters/<slug:slug>/signons")
def queue(slug: str):
    letter = get_letter(slug)
    status = request.args.get("status", "")
    search = request.args.get("q", "").strip()[:200]
    query = sa.select(Signature).where(Signature.letter_slug == slug)
    if status in Status.__members__.values():
        query = query.where(Signature.status == status)
    if search:
        like = f"%{search}%"
        query = query.where(
            sa.or_(
                Signature.name.ilike(like),
                Signature.acronym.ilike(like),
                Signature.email.ilike(like),
                Signature.contact_name.ilike(like),
                Signature.country.ilike(like),
            )
        )
    page = max(request.args.get("page", 1, type=int), 1)
    rows = db.paginate(query.order_by(Signature.id.desc()), page=page, per_page=PAGE_SIZE)
    return render_template(
        "manage/queue.html",
        letter=letter,
        rows=rows,
        status=status,
        search=search,
        counts=store.counts(slug),
        name_in_letter=lambda s: store.name_in_letter(s, letter),
        can_edit=require_role(slug, Role.VIEWER).role.allows(Role.EDITOR),
        button=ButtonForm(),
        reject_form=RejectForm(),
        name_form=LetterNameForm(),
    )


def back_to_queue(slug: str):
    target = request.form.get("next", "")
    if not target.startswith(f"/manage/letters/{slug}/"):
        target = url_for(".queue", slug=slug)
    return redirect(target)


@bp.post("/letters/<slug:slug>/signons/approve")
def approve(slug: str):
    get_letter(slug, Role.EDITOR)
    ids = [int(i) for i in request.form.getlist("ids") if i.isdigit()]
    if ButtonForm().validate_on_submit() and ids:
        try:
            changed = store.set_status(slug, ids, Status.APPROVED, actor())
        except LookupError:
            abort(404)
        flash(f"Approved {len(changed)} sign-on(s).", "success")
    elif not ids:
        flash("Select at least one sign-on to approve.", "error")
    return back_to_queue(slug)


def get_signature(slug: str, signature_id: int) -> Signature:
    signature = store.get_signature(slug, signature_id)
    if signature is None:
        abort(404)
    return signature


@bp.post("/letters/<slug:slug>/signons/<int:signature_id>/reject")
def reject(slug: str, signature_id: int):
    get_letter(slug, Role.EDITOR)
    get_signature(slug, signature_id)
    form = RejectForm()
    if form.validate_on_submit():
        store.set_status(slug, [signature_id], Status.REJECTED, actor(), form.reason.data)
        flash("Rejected; the reason is kept.", "success")
    else:
        flash(" ".join(form.reason.errors) or "The form expired; try again.", "error")
    return back_to_queue(slug)


@bp.post("/letters/<slug:slug>/signons/<int:signature_id>/name")
def rename(slug: str, signature_id: int):
    get_letter(slug, Role.EDITOR)
    signature = get_signature(slug, signature_id)
    form = LetterNameForm()
    if form.validate_on_submit():
        store.set_letter_name(signature, form.letter_name.data, actor())
        flash("Saved how the name appears in the letter.", "success")
    else:
        flash(" ".join(form.letter_name.errors) or "The form expired; try again.", "error")
    return back_to_queue(slug)


@bp.get("/letters/<slug:slug>/duplicates")
def duplicates(slug: str):
    letter = get_letter(slug)
    return render_template(
        "manage/duplicates.html",
        letter=letter,
        pairs=store.likely_duplicates(slug),
        form=MergeForm(),
        can_edit=require_role(slug, Role.VIEWER).role.allows(Role.EDITOR),
    )


@bp.post("/letters/<slug:slug>/duplicates/merge")
def merge(slug: str):
    get_letter(slug, Role.EDITOR)
    form = MergeForm()
    if form.validate_on_submit():
        keep = get_signature(slug, form.keep.data)
        duplicate = get_signature(slug, form.duplicate.data)
        store.merge(keep, duplicate, actor())
        flash(f"Merged sign-on {duplicate.id} into {keep.id}.", "success")
    else:
        errors = [e for field_errors in form.errors.values() for e in field_errors]
        flash("Could not merge: " + "; ".join(errors), "error")
    return redirect(url_for(".duplicates", slug=slug))


@bp.route("/letters/<slug:slug>/add", methods=["GET", "POST"])
def add(slug: str):
    letter = get_letter(slug, Role.EDITOR)
    form = SignatoryForm()
    if form.validate_on_submit():
        if store.add_by_hand(slug, form.signer(), actor()):
            flash(f"Added {form.name.data}, approved.", "success")
            return redirect(url_for(".add", slug=slug))
        form.name.errors.append("This signer is already recorded for this letter.")
    return render_template("manage/add.html", letter=letter, form=form)


@bp.route("/letters/<slug:slug>/import", methods=["GET", "POST"])
def import_csv(slug: str):
    letter = get_letter(slug, Role.EDITOR)
    form = ImportForm()
    plan = None
    if form.validate_on_submit():
        if form.file.data:
            raw = form.file.data.read()
            try:
                form.csv_text.data = raw.decode("utf-8-sig")
            except UnicodeDecodeError:
                flash("The file is not UTF-8 text: save it as “CSV UTF-8” and try again.", "error")
                return render_template("manage/import.html", letter=letter, form=form)
        plan = read_signatories(form.csv_text.data or "", letter, store.existing_keys(slug))
        if "confirm" in request.form and not plan.errors and not form.file.data:
            try:
                count = store.import_rows(slug, plan.rows, actor())
            except IntegrityError:
                flash("A sign-on in the file arrived meanwhile: check the preview again.", "error")
            else:
                flash(f"Imported {count} sign-on(s); skipped {plan.duplicates} duplicate(s).")
                return redirect(url_for(".queue", slug=slug, status="approved"))
    return render_template("manage/import.html", letter=letter, form=form, plan=plan)


@bp.get("/letters/<slug:slug>/export.csv")
def export_csv(slug: str):
    get_letter(slug)
    which = request.args.get("status", "approved")
    rows = store.signatures(slug, None if which == "all" else Status.APPROVED)
    out = io.StringIO()
    out.write("\ufeff")  # spreadsheet programs need the BOM to read UTF-8 (Hangul)
    write_signatories(rows, out)
    filename = f"{slug}-{which}-{date.today().isoformat()}.csv"
    return attachment(out.getvalue(), "text/csv", filename)


def export_options(letter: Letter) -> ExportForm:
    """The export options from the query string; the defaults when there is none."""
    form = ExportForm(formdata=request.args or None, meta={"csrf": False})
    form.language.choices = [SelectChoice("", f"{letter.language} (the letter's own)")] + [
        SelectChoice(code, code) for code in letter.languages[1:]
    ]
    if not request.args:
        form.as_of.data = letter.today()
    return form


def export_pdf_bytes(letter: Letter, form: ExportForm) -> bytes | None:
    """The PDF as the form asks; None while a background job makes it (exports)."""
    # The preview images and the download of one export share one render (pdfcache).
    return exports.pdf_or_start(translate(letter, form.language.data), **export_choices(form))


def export_choices(form: ExportForm) -> dict:
    return {"as_of": form.as_of.data, "notes": form.notes.data, "paper": form.paper.data}


@bp.get("/letters/<slug:slug>/pdf")
def export(slug: str):
    letter = get_letter(slug)
    form = export_options(letter)
    if request.args and not form.validate():
        return export_page(letter, form)
    if not request.args:
        exports.prepare(letter)  # the usual choice: ready by the time it is asked for
    if not (request.args.get("download") or request.args.get("preview")):
        return export_page(letter, form)
    if request.args.get("retry"):
        exports.forget_failure(translate(letter, form.language.data), **export_choices(form))
    try:
        data = export_pdf_bytes(letter, form)
    except PDFError as error:
        return export_page(letter, form, problem=str(error))
    if data is None:
        return export_page(letter, form, preparing=True)
    if request.args.get("download"):
        language = f"{form.language.data}-" if form.language.data else ""
        filename = f"{slug}-{language}{form.as_of.data.isoformat()}.pdf"
        return attachment(data, "application/pdf", filename)
    return export_page(letter, form, ready=True)


def export_page(letter: Letter, form: ExportForm, **state):
    # Warn while signers of superseded text have not re-confirmed.
    stale = revisions.needs_reconfirmation(letter.slug)
    asked = {k: v for k, v in request.args.items() if k != "retry"}
    return render_template(
        "manage/export.html", letter=letter, form=form, stale=stale, asked=asked, **state
    )


@bp.get("/letters/<slug:slug>/preview-<int:page>.png")
def preview(slug: str, page: int):
    letter = get_letter(slug)
    form = export_options(letter)
    if not form.validate() or not 1 <= page <= 50:
        abort(404)
    try:
        data = export_pdf_bytes(letter, form)
    except PDFError:
        abort(404)
    if data is None:
        abort(404)  # the export page shows the images once the PDF is ready
    return Response(page_image(data, page), mimetype="image/png")


@bp.get("/letters/<slug:slug>/audit")
def audit_log(slug: str):
    letter = get_letter(slug)
    entries = db.session.scalars(
        sa.select(AuditEntry).where(AuditEntry.letter_slug == slug).order_by(AuditEntry.id.desc())
    )
    return render_template("manage/audit.html", letter=letter, entries=list(entries))


OUTBOX_WAIT = 5  # seconds the retry button waits for the job to end


@bp.route("/letters/<slug:slug>/outbox", methods=["GET", "POST"])
def outbox(slug: str):
    letter = get_letter(slug)
    form = ButtonForm()
    if form.validate_on_submit():
        require_role(slug, Role.EDITOR)
        unsent = OutgoingMail.letter_slug == slug, OutgoingMail.status != MailStatus.SENT
        waiting = list(db.session.scalars(sa.select(OutgoingMail.id).where(*unsent)))
        # A background job, waited for a few seconds: a slow mail server never holds
        # a web worker for long, and a quick one gives the answer on this page.
        job = jobs.wait(jobs.enqueue("letterapp.mail.retry_failed"), timeout=OUTBOX_WAIT)
        if job.state == "finished":
            sent = db.session.scalar(
                sa.select(sa.func.count())
                .select_from(OutgoingMail)
                .where(OutgoingMail.id.in_(waiting), OutgoingMail.status == MailStatus.SENT)
            )
            flash(f"Retried {len(waiting)} message(s): {sent} sent.", "success")
        else:
            flash(f"Retrying {len(waiting)} message(s): reload this page to follow.", "success")
        return redirect(url_for(".outbox", slug=slug))
    messages = db.session.scalars(
        sa.select(OutgoingMail)
        .where(OutgoingMail.letter_slug == slug)
        .order_by(OutgoingMail.id.desc())
        .limit(200)
    )
    return render_template("manage/outbox.html", letter=letter, messages=list(messages), form=form)
