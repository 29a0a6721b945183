"""Delivering the letter: emailed to its addressees, and word to its signatories.

A blueprint nested in the workspace's, so every page here is behind its login.
"""

from flask import Blueprint, flash, redirect, render_template, request, url_for

from . import delivery
from .auth import require_role
from .delivery import DeliveryError
from .forms import ButtonForm, DeliveryForm, NotifyForm, SendForm
from .letters import RECIPIENT_KINDS, Letter
from .models import Role
from .workspace import actor, attachment, get_letter

bp = Blueprint("delivering", __name__)


def delivery_page(letter: Letter, form: DeliveryForm | None = None, status: int = 200):
    delivery.delivered(letter.slug)  # marks it sent if a retry elsewhere finished the job
    record = delivery.find_record(letter.slug)
    current = delivery.draft(letter, record)
    prepared = bool(record and record.prepared_at)
    if form is None:
        form = DeliveryForm(
            data={
                **{k: "\n".join(getattr(current.recipients, k)) for k in RECIPIENT_KINDS},
                "reply_to": current.reply_to,
                "subject": current.subject,
                "cover": current.cover,
            }
        )
    message, problem = None, None
    if prepared or request.args.get("preview"):
        try:
            message = delivery.preview(letter)
        except DeliveryError as error:
            problem = str(error)
    sent = bool(record and record.sent_at)
    told, unreachable = delivery.notify_progress(letter) if sent else (None, 0)
    return render_template(
        "manage/deliver.html",
        letter=letter,
        record=record,
        draft=current,
        form=form,
        message=message,
        problem=problem,
        can_edit=require_role(letter.slug, Role.VIEWER).role.allows(Role.EDITOR),
        send_form=SendForm(data={"digest": current.digest()}),
        button=ButtonForm(),
        notify_form=NotifyForm(),
        rows=delivery.deliveries(letter.slug) if prepared else [],
        roles=delivery.roles(record) if prepared else {},
        progress=delivery.progress(letter.slug, delivery.DELIVERY),
        told=told,
        unreachable=unreachable,
        sent_on=delivery.sent_on(letter, record) if sent else None,
        batch_size=delivery.batch_size(),
        utc=delivery.utc,
    ), status


@bp.route("/letters/<slug:slug>/deliver", methods=["GET", "POST"])
def deliver(slug: str):
    letter = get_letter(slug)
    if request.method == "GET":
        return delivery_page(letter)
    require_role(slug, Role.EDITOR)
    form = DeliveryForm()
    if not form.validate_on_submit():
        flash("The message was not saved: correct the fields marked below.", "error")
        return delivery_page(letter, form, 400)
    try:
        delivery.save_draft(letter, form.draft(), actor())
    except DeliveryError as error:
        flash(str(error), "error")
        return redirect(url_for(".deliver", slug=slug))
    flash("Saved. Check the message below, then send it.", "success")
    return redirect(url_for(".deliver", slug=slug, preview=1, _anchor="preview"))


@bp.post("/letters/<slug:slug>/deliver/reset")
def deliver_reset(slug: str):
    letter = get_letter(slug, Role.EDITOR)
    if ButtonForm().validate_on_submit():
        try:
            delivery.reset_draft(letter, actor())
        except DeliveryError as error:
            flash(str(error), "error")
        else:
            flash("The recipients, subject and message follow the letter file again.", "success")
    return redirect(url_for(".deliver", slug=slug))


@bp.post("/letters/<slug:slug>/deliver/send")
def deliver_send(slug: str):
    letter = get_letter(slug, Role.EDITOR)
    form = SendForm()
    record = delivery.find_record(slug)
    first = not (record and record.prepared_at)
    if not form.validate_on_submit():
        flash("The form expired; try again.", "error")
    elif first and form.digest.data != delivery.draft(letter, record).digest():
        flash("The message changed since you saw it: check it again before sending.", "error")
        return redirect(url_for(".deliver", slug=slug, preview=1, _anchor="preview"))
    elif first and not form.checked.data:
        flash("Tick the box to confirm the message is ready, then send.", "error")
        return redirect(url_for(".deliver", slug=slug, preview=1, _anchor="preview"))
    else:
        try:
            done = delivery.send(letter, actor())
        except DeliveryError as error:
            flash(str(error), "error")
        else:
            if done.sent == done.total:
                flash(f"Sent to all {done.total} recipient(s).", "success")
            else:
                flash(
                    f"Sent to {done.sent} of {done.total} recipient(s); "
                    f"{done.total - done.sent} not yet: see the errors below and retry.",
                    "error",
                )
    return redirect(url_for(".deliver", slug=slug))


def download_or_back(slug: str, make):
    """The download `make()` returns, or back to the delivery page with its error."""
    try:
        return make()
    except DeliveryError as error:
        flash(str(error), "error")
        return redirect(url_for(".deliver", slug=slug))


@bp.get("/letters/<slug:slug>/deliver/message.eml")
def deliver_message(slug: str):
    letter = get_letter(slug)

    def message():
        preview = delivery.preview(letter)
        filename = preview.pdf_name.removesuffix(".pdf") + ".eml"
        return attachment(preview.raw, "message/rfc822", filename)

    return download_or_back(slug, message)


@bp.get("/letters/<slug:slug>/deliver/receipt.txt")
def deliver_receipt(slug: str):
    letter = get_letter(slug)
    filename = f"{slug}-delivery-receipt.txt"
    return download_or_back(
        slug, lambda: attachment(delivery.receipt(letter), "text/plain", filename)
    )


@bp.post("/letters/<slug:slug>/deliver/notify")
def deliver_notify(slug: str):
    letter = get_letter(slug, Role.EDITOR)
    form = NotifyForm()
    if form.validate_on_submit():
        try:
            told = delivery.notify_batch(letter, actor(), attach=form.attach.data)
        except DeliveryError as error:
            flash(str(error), "error")
        else:
            flash(
                f"Signatories told: {told.sent} sent, {told.failed} failed, "
                f"{told.waiting} waiting.",
                "success",
            )
    else:
        flash("The form expired; try again.", "error")
    return redirect(url_for(".deliver", slug=slug, _anchor="signatories"))
