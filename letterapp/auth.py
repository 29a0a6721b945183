"""Coordinator login: Flask-Login, rate-limited, and per-letter roles."""

import os
from functools import cache
from urllib.parse import urlsplit

import sqlalchemy as sa
from email_validator import EmailNotValidError, validate_email
from flask import (
    Blueprint,
    Flask,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import LoginManager, current_user, login_required, login_user, logout_user
from flask_wtf import FlaskForm
from werkzeug.security import check_password_hash, generate_password_hash
from wtforms import EmailField, PasswordField
from wtforms.validators import DataRequired, Length

from .db import db
from .forms import ButtonForm, clean_text
from .limits import by_submitted_email, limiter
from .models import Membership, Role, User
from .names import fold_email

__all__ = ["letters_of", "login_required", "require_role"]

bp = Blueprint("auth", __name__, url_prefix="/manage")
login_manager = LoginManager()

WRONG_LOGIN = "Email or password is wrong."
MIN_PASSWORD = 12


class LoginForm(FlaskForm):
    """A coordinator's email and password."""

    email = EmailField(
        "Email address",
        filters=[clean_text],
        validators=[DataRequired("Enter your email address."), Length(max=254)],
        render_kw={"autocomplete": "username", "spellcheck": "false"},
    )
    password = PasswordField(
        "Password",
        validators=[DataRequired("Enter your password.")],
        render_kw={"autocomplete": "current-password"},
    )


def init_app(app: Flask) -> None:
    """Set up login, the login pages, the `user` commands and the cookie flags."""
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = "Log in to see this page."
    login_manager.login_message_category = "info"
    # A session cookie replayed from another address or browser is dropped.
    login_manager.session_protection = "strong"
    app.register_blueprint(bp)

    # Secure outside development: an explicit SESSION_COOKIE_SECURE=true/false
    # in the environment wins, else plain-HTTP cookies only in debug or tests.
    if "SESSION_COOKIE_SECURE" not in os.environ and not (app.debug or app.testing):
        app.config["SESSION_COOKIE_SECURE"] = True
    app.config.setdefault("REMEMBER_COOKIE_SECURE", app.config["SESSION_COOKIE_SECURE"])
    app.config.setdefault("REMEMBER_COOKIE_HTTPONLY", True)
    app.config.setdefault("REMEMBER_COOKIE_SAMESITE", "Lax")


@login_manager.user_loader
def load_user(user_id: str) -> User | None:
    return db.session.get(User, int(user_id))


def email_key(email: str) -> str:
    """The form an email is stored and looked up in: normalised by email_validator, folded."""
    try:
        email = validate_email(email, check_deliverability=False).normalized
    except EmailNotValidError:
        pass  # looked up as typed: it matches no one, which is the right answer
    return fold_email(email)


def hash_password(password: str) -> str:
    return generate_password_hash(password)  # scrypt, salted


@cache
def _dummy_hash() -> str:
    return hash_password("not anyone's password")


def authenticate(email: str, password: str) -> User | None:
    """The user with this email and password, or None; as slow for unknown emails."""
    user = db.session.scalar(sa.select(User).where(User.email == email_key(email)))
    # Checking a hash either way keeps the response time from telling which
    # emails have accounts.
    matches = check_password_hash(user.password_hash if user else _dummy_hash(), password)
    return user if user and matches else None


def safe_next(target: str | None) -> str | None:
    """`target` if it is a path inside the workspace, else None (no open redirect)."""
    if not target or not target.startswith("/manage/"):
        return None
    # Browsers read `\` as `/` and drop tabs and newlines: refuse anything odd.
    if "\\" in target or not target.isprintable() or not target.isascii() or " " in target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return None
    return target


def _landing() -> str:
    """Where a coordinator goes after login: the workspace's letter list."""
    if "manage.letters" in current_app.view_functions:
        return url_for("manage.letters")
    return "/manage/"


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit("10 per minute; 50 per hour", methods=["POST"])
@limiter.limit("20 per hour", key_func=by_submitted_email("login"), methods=["POST"])
def login():
    target = safe_next(request.args.get("next")) or _landing()
    if current_user.is_authenticated:
        return redirect(target)
    form = LoginForm()
    failed = False
    if form.validate_on_submit():
        user = authenticate(form.email.data, form.password.data)
        if user:
            login_user(user)
            return redirect(target)
        failed = True
    status = 400 if request.method == "POST" else 200
    return render_template("manage/login.html", form=form, failed=failed), status


@bp.post("/logout")
def logout():
    # CSRFProtect has checked the token already; the form makes it explicit.
    if ButtonForm().validate_on_submit():
        logout_user()
        flash("You are logged out.", "info")
    return redirect(url_for(".login"))


def require_role(slug: str, role: Role) -> Membership:
    """The logged-in coordinator's membership on `slug`: 404 if none, 403 if below `role`."""
    if not current_user.is_authenticated:
        abort(login_manager.unauthorized())
    membership = db.session.scalar(
        sa.select(Membership).where(
            Membership.user_id == current_user.id, Membership.letter_slug == slug
        )
    )
    if membership is None:
        abort(404)  # the same answer as for a letter that does not exist
    if not membership.role.allows(role):
        abort(403)
    return membership


def letters_of(user: User) -> list[Membership]:
    """The user's memberships, by letter slug."""
    return list(
        db.session.scalars(
            sa.select(Membership)
            .where(Membership.user_id == user.id)
            .order_by(Membership.letter_slug)
        )
    )
