"""The editor's previews of the unsaved text: the live HTML preview and the PDF pages.

The views are registered on the editing blueprint (editing.py), behind its login.
"""

import base64
import re
import subprocess
from datetime import date
from pathlib import Path

import babel
from flask import current_app, jsonify, render_template

from . import signatures as store
from .auth import require_role
from .forms import LetterFieldsForm, text_lines
from .letters import Letter, LetterError, format_letter, letter_path, parse_letter
from .markup import render_body
from .models import Role
from .pdf import PDFError, check_printable
from .pdfcache import get_pdf
from .workspace import page_image

PREVIEW_PAGES = 8  # pages drawn by the PDF preview; a longer letter is checked on Export


def show_problems(form: LetterFieldsForm, text: str, error: LetterError) -> list[str]:
    """Put each problem of the composed file next to its field; return those of no field."""
    lines = text.split("\n")
    end = lines.index("---", 1)  # format_letter writes the closing line exactly
    general = []
    for problem in error.problems:
        if problem.line > end + 1:
            form.body.errors.append(f"Line {problem.line - end - 1}: {problem.message}")
            continue
        key = next(
            (
                m[1]
                for line in reversed(lines[1 : problem.line])
                if (m := re.match(r"(\w+):", line))
            ),
            "",
        )
        if key in form and key != "csrf_token":
            form[key].errors.append(problem.message)
        else:
            general.append(problem.message)
    return general


def pdf_pages(letter: Letter) -> list[str] | str:
    """The first pages of the letter's PDF as PNG data URLs, or why there is no PDF."""
    as_of = letter.today()
    try:
        data = get_pdf(letter, store.approved_names(letter, as_of), as_of=as_of)
    except PDFError as error:
        return str(error)
    pages = []
    for number in range(1, PREVIEW_PAGES + 1):
        try:
            image = page_image(data, number)
        except subprocess.CalledProcessError:
            break  # past the last page
        pages.append("data:image/png;base64," + base64.b64encode(image).decode("ascii"))
    return pages


def form_letter(slug: str, form: LetterFieldsForm) -> tuple[Letter | None, list[dict]]:
    """The letter the posted fields make, or None, and the problems of each field."""
    form.validate()
    text = format_letter(form.values(), form.body.data or "")
    letter, general = None, []
    try:
        letter = parse_letter(letter_path(current_app.config["LETTERS_DIR"], slug), text)
    except LetterError as error:
        general = show_problems(form, text, error)
    problems = [{"field": "", "label": "The letter", "message": m} for m in general] + [
        {"field": name, "label": form[name].label.text, "message": message}
        for name, messages in form.errors.items()
        for message in dict.fromkeys(messages)
        if name != "csrf_token"
    ]
    return letter, problems


def live_preview(slug: str):
    """The letter as the fields give it, for the editor's live preview (editor.js)."""
    require_role(slug, Role.EDITOR)
    form = LetterFieldsForm()
    letter, problems = form_letter(slug, form)
    if letter is None:
        letter = rough_letter(letter_path(current_app.config["LETTERS_DIR"], slug), form)
    html = render_template("manage/_preview.html", letter=letter, body=render_body(letter.body))
    return jsonify(html=html, problems=problems, unprintable=check_printable(letter, []))


def pdf_preview(slug: str):
    """The PDF pages of the text in the fields, for the editor's PDF button (editor.js)."""
    require_role(slug, Role.EDITOR)
    letter, problems = form_letter(slug, LetterFieldsForm())
    if letter is None or problems:
        shown = "; ".join(f"{p['label']}: {p['message']}" for p in problems[:3])
        return jsonify(pages=[], error=f"the fields need correcting: {shown}")
    pages = pdf_pages(letter)
    if isinstance(pages, str):
        return jsonify(pages=[], error=pages)
    return jsonify(pages=pages, error=None)


def rough_letter(path: Path, form: LetterFieldsForm) -> Letter:
    """The letter as far as the fields make sense, to preview while it still has problems."""
    values = form.values()
    try:
        babel.Locale.parse(str(values["language"]).replace("-", "_"))
    except (ValueError, TypeError, babel.UnknownLocaleError):
        values["language"] = "en"
    texts = {k: values[k] or "" for k in ("title", "re", "salutation", "closing", "language")}
    return Letter(
        slug=path.stem, path=path, date=values["date"] or date.today(), body=form.body.data or "",
        addressee=tuple(text_lines(form.addressee.data)), attn=tuple(text_lines(form.attn.data)),
        **texts,
    )  # fmt: skip
