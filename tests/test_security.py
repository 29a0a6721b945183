"""Headers, rate limits, the honeypot and request size limits."""

import re

import pytest
import sqlalchemy as sa

from letterapp import create_app
from letterapp.db import db
from letterapp.models import Signature

from .conftest import PROJECT, SIGNER, csrf_token


def count(app) -> int:
    with app.app_context():
        return db.session.scalar(sa.select(sa.func.count()).select_from(Signature))


@pytest.mark.parametrize("url", ["/", "/letters/test-letter", "/manage/login", "/nope"])
def test_security_headers_on_every_response(client, url):
    headers = client.get(url).headers
    csp = headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "no-referrer"
    assert headers["X-Frame-Options"] == "DENY"


def test_templates_have_no_inline_script_or_style():
    # The CSP forbids them; a page that relied on one would silently break.
    for path in (PROJECT / "templates").rglob("*.html"):
        if path.parent.name == "pdf":
            continue  # print templates go to WeasyPrint, not to browsers
        text = path.read_text()
        assert not re.search(r"<script(?![^>]*\bsrc=)", text), path
        assert "style=" not in text and "<style" not in text, path
        assert not re.search(r"\son[a-z]+=", text), path


def test_https_and_hsts_when_configured(app):
    secure = create_app({**app.config, "FORCE_HTTPS": True, "TESTING": False})
    response = secure.test_client().get("/letters/test-letter")
    assert response.status_code in (301, 302)
    assert response.headers["Location"].startswith("https://")
    over_https = secure.test_client().get("/", base_url="https://localhost")
    assert "max-age=" in over_https.headers["Strict-Transport-Security"]


def test_honeypot_drops_the_sign_on_but_looks_the_same(client, sign, app):
    response = sign(homepage="http://spam.example")
    assert response.status_code == 302
    assert "Check your inbox" in client.get(response.headers["Location"]).text
    assert count(app) == 0


def test_sign_on_is_rate_limited_per_email_with_a_friendly_page(client, sign, app):
    for n in range(10):
        assert sign(name=f"Group {n}", acronym="").status_code == 302
    response = sign(name="Group 11", acronym="")
    assert response.status_code == 429
    assert "Too many attempts" in response.text and "try again" in response.text
    assert int(response.headers["Retry-After"]) > 0
    assert count(app) == 10


def test_sign_on_is_rate_limited_per_address(client, app):
    token = csrf_token(client.get("/letters/test-letter").text)
    statuses = [
        client.post(
            "/letters/test-letter",
            data={**SIGNER, "csrf_token": token, "email": f"s{n}@example.org"},
        ).status_code
        for n in range(21)
    ]
    assert statuses[:20] == [302] * 20 and statuses[20] == 429


def test_request_body_over_the_limit_gets_413(client, app):
    token = csrf_token(client.get("/letters/test-letter").text)
    big = "x" * (app.config["MAX_CONTENT_LENGTH"] + 1)
    response = client.post(
        "/letters/test-letter",
        data=f"csrf_token={token}&name={big}",
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 413
    assert count(app) == 0
