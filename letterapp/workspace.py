"""Helpers shared by the workspace's pages (manage, editing, delivering)."""

import subprocess
import tempfile
from pathlib import Path

from flask import Response, abort, current_app, flash, redirect, url_for
from flask_login import current_user

from .auth import require_role
from .letters import Letter, LetterError, load_letter
from .models import Role


def get_letter(slug: str, role: Role = Role.VIEWER) -> Letter:
    """The letter, if the coordinator has `role` on it and the file is valid; else 404 or back."""
    require_role(slug, role)
    try:
        return load_letter(current_app.config["LETTERS_DIR"], slug)
    except FileNotFoundError:
        abort(404)
    except LetterError:
        flash("The letter file has problems: fix them first (see below).", "error")
        abort(redirect(url_for("manage.dashboard", slug=slug)))


def actor() -> str:
    """The coordinator doing it, as the audit log names them."""
    return current_user.email


def attachment(body: str | bytes, mimetype: str, filename: str) -> Response:
    """A download the browser saves as `filename`."""
    return Response(
        body,
        mimetype=mimetype,
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def page_image(pdf: bytes, page: int) -> bytes:
    """One page of a PDF as PNG, drawn by poppler's pdftoppm."""
    with tempfile.TemporaryDirectory() as folder:
        source = Path(folder) / "letter.pdf"
        source.write_bytes(pdf)
        subprocess.run(
            ["pdftoppm", "-png", "-r", "60", "-f", str(page), "-l", str(page), "-singlefile",
             str(source), str(Path(folder) / "page")],
            check=True, timeout=60, capture_output=True,
        )  # fmt: skip
        image = Path(folder) / "page.png"
        if not image.exists():
            abort(404)
        return image.read_bytes()
