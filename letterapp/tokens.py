"""Signed links for signers: confirm a sign-on, or correct and withdraw it."""

from flask import current_app
from flask_babel import lazy_gettext as _l
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

CONFIRM = "confirm"
MANAGE = "manage"


class TokenError(Exception):
    """A link that is expired or was not made by us; the message is for the signer."""


def _serializer(purpose: str) -> URLSafeTimedSerializer:
    # One salt per purpose, so a confirmation link cannot be used to withdraw.
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=f"signature-{purpose}")


def make_token(purpose: str, signature_id: int) -> str:
    return _serializer(purpose).dumps(signature_id)


def read_token(purpose: str, token: str, max_age: int | None = None) -> int:
    """The sign-on id in a token; raise TokenError if it is expired or tampered with."""
    try:
        return int(_serializer(purpose).loads(token, max_age=max_age))
    except SignatureExpired:
        raise TokenError(_l("This link has expired.")) from None
    except (BadSignature, ValueError, TypeError):
        raise TokenError(_l("This link is not valid: it may be incomplete or changed.")) from None
