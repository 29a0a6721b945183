"""Languages: which one each public page speaks, and Flask-Babel's setup.

The signer's explicit choice (`?lang=ko`, then remembered in the session) wins, then
the browser's Accept-Language, then the letter's own language. A letter's page offers
the letter's languages; other public pages offer the languages we ship messages for.
Coordinators' pages and commands stay in English.
"""

from pathlib import Path

from babel import Locale, UnknownLocaleError
from flask import Flask, current_app, has_request_context, request, session
from flask_babel import Babel, get_locale
from flask_babel import lazy_gettext as _l

from .letters import Letter, LetterError, load_letter, translate
from .models import Status

SHIPPED = ("en", "ko")  # translations/<language>/LC_MESSAGES/messages.po, and English
TRANSLATIONS = Path(__file__).resolve().parent.parent / "translations"

babel = Babel()

# A sign-on's status as its signer reads it.
STATUS_NAMES = {
    Status.PENDING: _l("waiting for your confirmation"),
    Status.CONFIRMED: _l("confirmed"),
    Status.APPROVED: _l("approved"),
    Status.REJECTED: _l("rejected"),
    Status.WITHDRAWN: _l("withdrawn"),
    Status.MERGED: _l("merged"),
}


def init_app(app: Flask) -> None:
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", str(TRANSLATIONS))
    babel.init_app(app, locale_selector=select_locale)
    app.add_template_global(current_language)
    app.add_template_filter(language_name)
    app.add_template_filter(status_name)
    app.after_request(_vary)


def offered_languages() -> tuple[str, ...]:
    """The languages this request's page can be read in, the default first."""
    slug = (request.view_args or {}).get("slug")
    if slug:
        try:
            return load_letter(current_app.config["LETTERS_DIR"], slug).languages
        except (FileNotFoundError, LetterError):
            pass
    return SHIPPED


def select_locale() -> str | None:
    """Flask-Babel's locale selector; None means English (the default)."""
    if not has_request_context() or request.blueprint != "public":
        return None
    offered = offered_languages()
    chosen = request.args.get("lang")
    if chosen in offered:
        session["lang"] = chosen
    elif session.get("lang") in offered:
        chosen = session["lang"]
    else:
        chosen = request.accept_languages.best_match(offered) or offered[0]
    return chosen.replace("-", "_")


def current_language() -> str:
    """The language of this request as a tag: `ko`, `pt-BR`."""
    return str(get_locale() or "en").replace("_", "-")


def in_current_language(letter: Letter) -> Letter:
    """The letter as the signer reads it: translated if it has this request's language."""
    return translate(letter, current_language())


def language_name(code: str) -> str:
    """A language's name in that language: `한국어` for ko."""
    try:
        return Locale.parse(code.replace("-", "_")).get_display_name() or code
    except (ValueError, UnknownLocaleError):
        return code


def status_name(status: Status) -> str:
    return str(STATUS_NAMES[Status(status)])


def _vary(response):
    # Public pages differ by the browser's languages and by the choice in the session.
    if has_request_context() and request.blueprint == "public":
        response.vary.update(("Accept-Language", "Cookie"))
    return response
