"""Coordinator commands: `flask --app letterapp letter ...` and `... signatures ...`."""

from datetime import date
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import AppGroup
from sqlalchemy.exc import IntegrityError

from . import delivery, revisions, states
from . import signatures as store
from .csvfiles import read_signatories, write_signatories
from .delivery import DeliveryError
from .letters import (
    Letter,
    LetterError,
    letter_path,
    list_letters,
    load_letter,
    load_translation,
    translation_files,
)
from .markup import NOTE_STYLES
from .models import LetterState, MailStatus, Status
from .pdf import PAPERS, PDFError, check_printable
from .pdfcache import get_pdf

letter_cli = AppGroup("letter", help="Check, list and render letters.")
signatures_cli = AppGroup("signatures", help="List, moderate, import and export sign-ons.")


def init_app(app: Flask) -> None:
    app.cli.add_command(letter_cli)
    app.cli.add_command(signatures_cli)


def _letter(slug: str, language: str | None = None) -> Letter:
    """Load a letter (or its translation), or stop with each problem as `file:line: message`."""
    try:
        return load_letter(current_app.config["LETTERS_DIR"], slug, language)
    except FileNotFoundError:
        if language:
            raise click.ClickException(
                f"no {language!r} translation of {slug!r} (no file {slug}.{language}.md)"
            ) from None
        raise click.ClickException(
            f"no letter {slug!r} in {current_app.config['LETTERS_DIR']}"
        ) from None
    except LetterError as error:
        for problem in error.problems:
            click.echo(str(problem), err=True)
        raise click.ClickException(
            f"{slug}: {len(error.problems)} problem(s) in the letter file"
        ) from None


def existing_slug(slug: str) -> str:
    """Accept the slug of any letter file, even one that has problems."""
    try:
        letter_path(current_app.config["LETTERS_DIR"], slug).stat()
    except FileNotFoundError:
        raise click.ClickException(
            f"no letter {slug!r} in {current_app.config['LETTERS_DIR']}"
        ) from None
    return slug


def _as_of(ctx, param, value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        raise click.BadParameter("write it as YYYY-MM-DD") from None


@letter_cli.command("list")
def letter_list() -> None:
    """List the letters in LETTERS_DIR with their state and signatory count."""
    for slug, letter in list_letters(current_app.config["LETTERS_DIR"]):
        if isinstance(letter, LetterError):
            click.echo(
                f"{slug}\tERROR ({len(letter.problems)} problem(s): run 'letter check {slug}')"
            )
            continue
        state = states.state_of(letter)
        click.echo(f"{slug}\t{state}\t{store.count_approved(slug)} approved\t{letter.title}")


@letter_cli.command("check")
@click.argument("slug")
def letter_check(slug: str) -> None:
    """Check a letter file, its translations and its approved names; exit 1 on any problem."""
    letter = _letter(slug)
    names = [store.name_in_letter(s, letter) for s in store.approved(letter)]
    problems = [f"{letter.path.name}: {problem}" for problem in check_printable(letter, names)]
    for language, path in translation_files(current_app.config["LETTERS_DIR"], slug).items():
        try:
            translated = load_translation(current_app.config["LETTERS_DIR"], slug, language)
        except LetterError as error:
            problems += [str(problem) for problem in error.problems]
            continue
        problems += [f"{path.name}: {problem}" for problem in check_printable(translated, names)]
    for problem in problems:
        click.echo(problem, err=True)
    if problems:
        raise click.ClickException(f"{slug}: {len(problems)} problem(s)")
    translated = (
        f", translations: {', '.join(letter.languages[1:])}" if letter.languages[1:] else ""
    )
    click.echo(
        f"{slug}: ok ({len(letter.body.split())} words, {len(names)} approved signatories"
        f"{translated})"
    )


@letter_cli.command("render")
@click.argument("slug")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option(
    "--as-of", callback=_as_of, help="List signatories who signed by this date (default today)."
)
@click.option("--notes", type=click.Choice(NOTE_STYLES), default="endnotes", show_default=True)
@click.option("--paper", type=click.Choice(list(PAPERS)), default="a4", show_default=True)
@click.option(
    "--lang", "language", help="A translation's language, e.g. ko (default: the letter's own)."
)
def letter_render(
    slug: str, output: Path, as_of: date | None, notes: str, paper: str, language: str | None
) -> None:
    """Render the letter with its approved signatories to a PDF file."""
    letter = _letter(slug, language)
    as_of = as_of or letter.today()
    names = store.approved_names(letter, as_of)
    try:
        data = get_pdf(letter, names, as_of=as_of, notes=notes, paper=paper)
    except PDFError as error:
        raise click.ClickException(str(error)) from None
    try:
        output.write_bytes(data)
    except OSError as error:
        raise click.ClickException(f"cannot write {output}: {error.strerror}") from None
    click.echo(f"wrote {output} ({len(names)} signatories as of {as_of}, {len(data) // 1024} KiB)")


@letter_cli.command("state")
@click.argument("slug")
@click.argument("state", required=False, type=click.Choice([s.value for s in LetterState]))
def letter_state(slug: str, state: str | None) -> None:
    """Show a letter's state, or set it: draft (hidden from the public), open or closed."""
    letter = _letter(slug)
    if state:
        try:
            states.move(slug, LetterState(state), "cli")
        except states.StateError as error:
            raise click.ClickException(str(error)) from None
    click.echo(f"{slug}: {states.state_of(letter)}")


@letter_cli.command("history")
@click.argument("slug")
def letter_history(slug: str) -> None:
    """List the revisions of a letter: number, time (UTC), author, note."""
    revisions.current(_letter(slug))  # an edit made on disk becomes a revision first
    for revision in revisions.history(slug):
        when = revision.created_at.strftime("%Y-%m-%d %H:%M")
        minor = " (minor)" if revision.minor else ""
        click.echo(f"{revision.number}\t{when}\t{revision.author}\t{revision.note}{minor}")


@signatures_cli.command("list")
@click.argument("slug")
@click.option("--status", type=click.Choice([s.value for s in Status]))
def signatures_list(slug: str, status: str | None) -> None:
    """One line per sign-on: id, status, name in the letter, kind, email, signed_at."""
    for s in store.signatures(existing_slug(slug), Status(status) if status else None):
        cells = (
            s.id,
            s.status.value,
            s.display_name,
            s.kind.value,
            s.email,
            s.signed_at.isoformat(),
        )
        click.echo("\t".join(map(str, cells)))


def _moderate(slug: str, ids: tuple[int, ...], status: Status) -> None:
    try:
        changed = store.set_status(existing_slug(slug), list(ids), status, actor="cli")
    except LookupError as error:
        raise click.ClickException(
            f"no sign-on with id {error} on {slug}; nothing changed"
        ) from None
    click.echo(f"{status.value} {len(changed)} sign-on(s)")


@signatures_cli.command("approve")
@click.argument("slug")
@click.argument("ids", nargs=-1, type=int)
@click.option(
    "--all-pending", is_flag=True, help="Approve every pending sign-on, confirmed by email or not."
)
@click.option("--all-confirmed", is_flag=True, help="Approve every sign-on confirmed by email.")
def signatures_approve(
    slug: str, ids: tuple[int, ...], all_pending: bool, all_confirmed: bool
) -> None:
    """Approve sign-ons by id, or all those waiting."""
    if [bool(ids), all_pending, all_confirmed].count(True) != 1:
        raise click.UsageError("give sign-on ids, --all-pending or --all-confirmed: one of them")
    waiting = [Status.CONFIRMED] + ([Status.PENDING] if all_pending else [])
    if not ids:
        found = store.signatures(existing_slug(slug))
        ids = tuple(s.id for s in found if s.status in waiting)
    _moderate(slug, ids, Status.APPROVED)


@signatures_cli.command("reject")
@click.argument("slug")
@click.argument("ids", nargs=-1, type=int, required=True)
def signatures_reject(slug: str, ids: tuple[int, ...]) -> None:
    """Reject sign-ons by id."""
    _moderate(slug, ids, Status.REJECTED)


@signatures_cli.command("import")
@click.argument("slug")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def signatures_import(slug: str, file: Path) -> None:
    """Import approved sign-ons from a CSV file; nothing is imported if any row is bad.

    Columns: name,kind,email required; acronym,contact_name,country,signed_at optional.
    """
    letter = _letter(slug)
    try:
        text = file.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise click.ClickException(f"{file} is not UTF-8 text; save it as CSV UTF-8") from None
    plan = read_signatories(text, letter, store.existing_keys(slug))
    if plan.errors:
        for error in plan.errors:
            click.echo(f"{file}: {error}", err=True)
        reason = f"{plan.bad_rows} bad row(s)" if plan.bad_rows else "the file is refused"
        raise click.ClickException(f"{reason}; nothing was imported")
    try:
        store.import_rows(slug, plan.rows, actor="cli")
    except IntegrityError:
        raise click.ClickException(
            "a sign-on in the file arrived meanwhile; nothing was imported, run again"
        ) from None
    click.echo(f"imported {len(plan.rows)} sign-on(s); skipped {plan.duplicates} duplicate(s)")


@signatures_cli.command("purge-contacts")
@click.argument("slug", required=False)
@click.option("--now", is_flag=True, help="Purge SLUG now, whether or not it was sent.")
def signatures_purge_contacts(slug: str | None, now: bool) -> None:
    """Remove signers' contact details PURGE_CONTACTS_DAYS after a letter was sent.

    Without SLUG, every letter due is purged: run it daily (cron). Public names
    stay; signers who opted in to updates keep their details.
    """
    if now and not slug:
        raise click.UsageError("--now needs a SLUG")
    days = current_app.config["PURGE_CONTACTS_DAYS"]
    due = [existing_slug(slug)] if now else store.due_for_purge(days, slug)
    for letter_slug in due:
        count = store.purge_contacts(letter_slug, actor="cli")
        click.echo(f"{letter_slug}: purged the contact details of {count} sign-on(s)")
    if not due:
        click.echo("no letter is due for purging")


@signatures_cli.command("export")
@click.argument("slug")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True)
def signatures_export(slug: str, output: Path) -> None:
    """Export approved sign-ons as CSV (UTF-8 with BOM, formula-safe)."""
    approved = store.signatures(existing_slug(slug), Status.APPROVED)
    try:
        with output.open("w", encoding="utf-8-sig", newline="") as out:
            write_signatories(approved, out)
    except OSError as error:
        raise click.ClickException(f"cannot write {output}: {error.strerror}") from None
    click.echo(f"wrote {output} ({len(approved)} approved sign-ons)")


def _show(message: delivery.Preview) -> None:
    """The message's recipients, subject and attachment, one per line."""
    for role, address in message.envelope:
        click.echo(f"{role + ':':9} {address}")
    click.echo(f"Subject:  {message.message['Subject']}")
    click.echo(f"Attached: {message.pdf_name} ({message.pdf_size // 1024} KiB)")


@letter_cli.command("send")
@click.argument("slug")
@click.option(
    "--dry-run", is_flag=True, help="Write the complete message to a .eml file and send nothing."
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where --dry-run writes the message (default: SLUG-DATE.eml here).",
)
@click.option("--yes", is_flag=True, help="Send without asking first.")
def letter_send(slug: str, dry_run: bool, output: Path | None, yes: bool) -> None:
    """Email the letter's PDF to its recipients; run it again to retry those not sent.

    The PDF is made when it is first sent, with the signatories approved by
    that day, and kept: the public page serves it from then on. No recipient is
    ever sent it twice.
    """
    letter = _letter(slug)
    try:
        message = delivery.preview(letter)
    except DeliveryError as error:
        raise click.ClickException(str(error)) from None
    _show(message)
    if dry_run:
        path = output or Path(message.pdf_name.removesuffix(".pdf") + ".eml")
        try:
            path.write_text(message.raw, encoding="utf-8")
        except OSError as error:
            raise click.ClickException(f"cannot write {path}: {error.strerror}") from None
        click.echo(f"dry run: wrote the complete message to {path.resolve()}; nothing was sent")
        return
    before = delivery.progress(slug, delivery.DELIVERY)
    if message.frozen and before.sent == before.total:
        click.echo(f"{slug}: already sent to all {before.total} recipient(s); nothing to send")
        return
    waiting = before.total - before.sent if message.frozen else len(message.envelope)
    if not yes:
        click.confirm(f"Send it to {waiting} recipient(s) now?", abort=True)
    try:
        done = delivery.send(letter, actor="cli")
    except DeliveryError as error:
        raise click.ClickException(str(error)) from None
    for row in delivery.deliveries(slug):
        reply = row.smtp_reply if row.status == MailStatus.SENT else row.last_error
        click.echo(f"{row.status.value}\t{row.recipient}\t{reply}")
    if done.sent < done.total:
        raise click.ClickException(
            f"{done.total - done.sent} recipient(s) do not have it yet: "
            f"run 'letter send {slug}' again to retry them (and only them)"
        )
    click.echo(f"sent to all {done.total} recipient(s); 'letter receipt {slug}' prints the proof")


@letter_cli.command("receipt")
@click.argument("slug")
def letter_receipt(slug: str) -> None:
    """Print the delivery receipt: per recipient, the Message-ID, time and server's reply."""
    try:
        click.echo(delivery.receipt(_letter(slug)), nl=False)
    except DeliveryError as error:
        raise click.ClickException(str(error)) from None


@letter_cli.command("notify")
@click.argument("slug")
@click.option("--attach", is_flag=True, help="Attach the PDF (default: link to it).")
@click.option("--yes", is_flag=True, help="Send without asking first.")
def letter_notify(slug: str, attach: bool, yes: bool) -> None:
    """Tell each signatory in the delivered letter that it was delivered: one message each.

    Messages go NOTIFY_BATCH_SIZE (50) at a time with NOTIFY_PAUSE_SECONDS (60)
    between batches; their links start with PUBLIC_URL. Run it again to retry
    those that failed; no one is told twice.
    """
    letter = _letter(slug)
    try:
        pending = delivery.notify_pending(letter)
        if not pending:
            click.echo(f"{slug}: every signatory with an address has been told; nothing to send")
            return
        if not yes:
            click.confirm(f"Send {pending} message(s) to the signatories now?", abort=True)
        with click.progressbar(length=pending, label="Telling the signatories") as bar:
            told = delivery.notify_all(
                letter, "cli", attach=attach, on_sent=lambda message: bar.update(1)
            )
    except DeliveryError as error:
        raise click.ClickException(str(error)) from None
    click.echo(
        f"{told.sent} sent, {told.failed} failed, {told.waiting} not sent yet, of {told.total}"
    )
    if told.failed:
        raise click.ClickException(f"{told.failed} failed: run 'letter notify {slug}' to retry")
