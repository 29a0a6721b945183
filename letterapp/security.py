"""Security headers on every response (Flask-Talisman), and HTTPS when configured."""

from flask import Flask
from flask_talisman import Talisman

# No inline scripts or styles anywhere; nothing may frame our pages.
CSP = {
    "default-src": "'self'",
    "img-src": "'self' data:",
    "object-src": "'none'",
    "base-uri": "'none'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
}

talisman = Talisman()


def init_app(app: Flask) -> None:
    https = app.config["FORCE_HTTPS"]
    talisman.init_app(
        app,
        content_security_policy=CSP,
        frame_options="DENY",
        # Signers' private links carry a token in the URL: never leak it to other sites.
        referrer_policy="no-referrer",
        force_https=https,
        strict_transport_security=https,
        session_cookie_secure=app.config["SESSION_COOKIE_SECURE"],
        session_cookie_http_only=True,
        session_cookie_samesite="Lax",
    )
