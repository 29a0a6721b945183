"""Coordinator accounts: `flask --app letterapp user ...`."""

import click
import sqlalchemy as sa
from email_validator import EmailNotValidError, validate_email
from flask.cli import AppGroup
from sqlalchemy.exc import IntegrityError

from .auth import MIN_PASSWORD, email_key, hash_password
from .cli import existing_slug
from .db import db
from .models import Membership, Role, User

user_cli = AppGroup("user", help="Create coordinators and give them roles on letters.")


def _user(email: str) -> User:
    """The user with this email, or stop with a clear message."""
    user = db.session.scalar(sa.select(User).where(User.email == email_key(email)))
    if user is None:
        raise click.ClickException(f"no user {email!r}; create one with 'user create'")
    return user


def _new_password() -> str:
    """Prompt twice for a password, hidden, and check its length."""
    password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    if len(password) < MIN_PASSWORD:
        raise click.ClickException(
            f"the password needs at least {MIN_PASSWORD} characters; nothing was changed"
        )
    return password


@user_cli.command("create")
@click.argument("email")
def user_create(email: str) -> None:
    """Create a coordinator account; prompts for the password."""
    email = email.strip()
    try:
        validate_email(email, check_deliverability=False)
    except EmailNotValidError as error:
        raise click.ClickException(f"{email!r} is not a valid email address: {error}") from None
    key = email_key(email)
    if db.session.scalar(sa.select(User).where(User.email == key)):
        raise click.ClickException(f"there is already a user {key!r}")
    user = User(email=key, password_hash=hash_password(_new_password()))
    db.session.add(user)
    try:
        db.session.commit()
    except IntegrityError:
        raise click.ClickException(f"there is already a user {key!r}") from None
    click.echo(f"created {key}; give a role with 'user grant {key} SLUG ROLE'")


@user_cli.command("list")
def user_list() -> None:
    """One line per user: email, created, letters with roles."""
    users = db.session.scalars(sa.select(User).order_by(User.email))
    for user in users:
        memberships = db.session.scalars(
            sa.select(Membership)
            .where(Membership.user_id == user.id)
            .order_by(Membership.letter_slug)
        )
        roles = ", ".join(f"{m.letter_slug} ({m.role.value})" for m in memberships)
        click.echo(f"{user.email}\t{user.created_at:%Y-%m-%d}\t{roles or 'no letters'}")


@user_cli.command("set-password")
@click.argument("email")
def user_set_password(email: str) -> None:
    """Set a new password for a user; prompts for it."""
    user = _user(email)
    user.password_hash = hash_password(_new_password())
    db.session.commit()
    click.echo(f"password changed for {user.email}")


@user_cli.command("grant")
@click.argument("email")
@click.argument("slug")
@click.argument("role", type=click.Choice([r.value for r in Role]))
def user_grant(email: str, slug: str, role: str) -> None:
    """Give a user ROLE on a letter (owner, editor or viewer), or change their role."""
    user = _user(email)
    slug = existing_slug(slug)
    membership = db.session.scalar(
        sa.select(Membership).where(Membership.user_id == user.id, Membership.letter_slug == slug)
    )
    if membership is None:
        membership = Membership(user_id=user.id, letter_slug=slug)
        db.session.add(membership)
    membership.role = Role(role)
    db.session.commit()
    click.echo(f"{user.email} is now {role} of {slug}")


@user_cli.command("revoke")
@click.argument("email")
@click.argument("slug")
def user_revoke(email: str, slug: str) -> None:
    """Take away a user's role on a letter."""
    user = _user(email)
    membership = db.session.scalar(
        sa.select(Membership).where(Membership.user_id == user.id, Membership.letter_slug == slug)
    )
    if membership is None:
        raise click.ClickException(f"{user.email} has no role on {slug!r}; nothing changed")
    db.session.delete(membership)
    db.session.commit()
    click.echo(f"{user.email} no longer has a role on {slug}")
