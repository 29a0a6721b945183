"""Coordinator accounts, login and roles, through the real CLI and login form."""

import re

import pytest
import sqlalchemy as sa
from flask import Blueprint
from flask_login import current_user, login_required, login_user
from werkzeug.exceptions import Forbidden

from letterapp import auth, create_app
from letterapp.auth import letters_of, require_role
from letterapp.db import db
from letterapp.models import Membership, Role, User

from .conftest import PASSWORD, csrf_token

EMAIL = "coord@example.org"
WRONG = "Email or password is wrong."

# A tiny workspace stand-in, so these tests need no other blueprint.
probe = Blueprint("probe", __name__, url_prefix="/manage/probe")


@probe.get("/whoami")
@login_required
def whoami() -> str:
    return current_user.email


@probe.get("/<slug>/<role>")
@login_required
def needs_role(slug: str, role: str) -> str:
    return require_role(slug, Role(role)).role.value


@pytest.fixture(autouse=True)
def _probe(app):
    # Blueprints can only be added before the app's first request.
    app.register_blueprint(probe)


def users(app) -> list[User]:
    with app.app_context():
        return list(db.session.scalars(sa.select(User).order_by(User.id)))


def create(runner, email: str = EMAIL, password: str = PASSWORD, again: str | None = None):
    again = password if again is None else again
    return runner.invoke(args=["user", "create", email], input=f"{password}\n{again}\n")


def post_login(client, email: str = EMAIL, password: str = PASSWORD, url="/manage/login", **kw):
    token = csrf_token(client.get("/manage/login").text)
    data = {"email": email, "password": password, "csrf_token": token}
    return client.post(url, data=data, **kw)


def without_tokens(text: str) -> str:
    return re.sub(r'value="[^"]*"', "", text)


# ---- the `user` commands ----


def test_user_create_stores_a_folded_email_and_a_scrypt_hash(app, runner):
    result = create(runner, "  Coord@EXAMPLE.org ")
    assert result.exit_code == 0, result.output
    assert "created coord@example.org" in result.output
    assert PASSWORD not in result.output  # the prompt hides what is typed
    [user] = users(app)
    assert user.email == EMAIL
    assert user.password_hash != PASSWORD and PASSWORD not in user.password_hash
    assert user.password_hash.startswith("scrypt:")


def test_user_create_refuses_duplicates_however_written(app, runner):
    assert create(runner).exit_code == 0
    for email in (EMAIL, "COORD@example.org", "ｃｏｏｒｄ@example.org"):
        result = create(runner, email)
        assert result.exit_code == 1
        assert "there is already a user 'coord@example.org'" in result.output
    assert len(users(app)) == 1


@pytest.mark.parametrize(
    ("email", "password", "again", "message"),
    [
        (EMAIL, "short pw 11", None, "at least 12 characters"),
        ("not-an-address", PASSWORD, None, "is not a valid email address"),
        (EMAIL, PASSWORD, "something else entirely", "do not match"),
    ],
)
def test_user_create_refuses_bad_input(app, runner, email, password, again, message):
    result = create(runner, email, password, again)
    assert result.exit_code != 0
    assert message in result.output
    assert users(app) == []


def test_user_list_shows_letters_and_roles(runner, make_coordinator, write_letter):
    write_letter("other-letter")
    make_coordinator()
    make_coordinator("viewer@example.org", role="")
    assert runner.invoke(args=["user", "grant", EMAIL, "other-letter", "viewer"]).exit_code == 0
    lines = runner.invoke(args=["user", "list"]).output.splitlines()
    assert len(lines) == 2
    email, created, roles = lines[0].split("\t")
    assert email == EMAIL and re.fullmatch(r"\d{4}-\d\d-\d\d", created)
    assert roles == "other-letter (viewer), test-letter (owner)"
    assert lines[1].startswith("viewer@example.org\t") and lines[1].endswith("\tno letters")


def test_grant_updates_an_existing_role(app, runner, make_coordinator):
    make_coordinator(role="viewer")
    result = runner.invoke(args=["user", "grant", "COORD@example.org", "test-letter", "editor"])
    assert result.exit_code == 0, result.output
    assert "coord@example.org is now editor of test-letter" in result.output
    with app.app_context():
        [membership] = db.session.scalars(sa.select(Membership))
        assert membership.role == Role.EDITOR


@pytest.mark.parametrize(
    ("args", "msg"),
    [
        (["nobody@example.org", "test-letter", "owner"], "no user 'nobody@example.org'"),
        ([EMAIL, "no-such-letter", "owner"], "no letter 'no-such-letter'"),
        ([EMAIL, "../etc/passwd", "owner"], "no letter '../etc/passwd'"),
        ([EMAIL, "test-letter", "admin"], "'admin' is not one of"),
    ],
)
def test_grant_refuses_unknown_users_letters_and_roles(app, runner, make_coordinator, args, msg):
    make_coordinator(role="")
    result = runner.invoke(args=["user", "grant", *args])
    assert result.exit_code != 0
    assert msg in result.output
    with app.app_context():
        assert db.session.scalars(sa.select(Membership)).all() == []


def test_revoke(app, runner, make_coordinator):
    make_coordinator()
    result = runner.invoke(args=["user", "revoke", EMAIL, "test-letter"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        assert db.session.scalars(sa.select(Membership)).all() == []
    again = runner.invoke(args=["user", "revoke", EMAIL, "test-letter"])
    assert again.exit_code == 1
    assert "has no role on 'test-letter'; nothing changed" in again.output


def test_set_password_replaces_the_old_one(client, runner, make_coordinator):
    make_coordinator()
    new = "a brand new passphrase"
    result = runner.invoke(args=["user", "set-password", EMAIL], input=f"{new}\n{new}\n")
    assert result.exit_code == 0, result.output
    assert post_login(client).status_code == 400
    assert post_login(client, password=new).status_code == 302


def test_set_password_refuses_short_ones_and_unknown_users(app, runner, make_coordinator):
    make_coordinator()
    [before] = users(app)
    short = runner.invoke(args=["user", "set-password", EMAIL], input="tooshort\ntooshort\n")
    assert short.exit_code == 1 and "at least 12 characters" in short.output
    assert users(app)[0].password_hash == before.password_hash
    unknown = runner.invoke(args=["user", "set-password", "x@example.org"], input="")
    assert unknown.exit_code == 1 and "no user 'x@example.org'" in unknown.output


# ---- logging in and out ----


def test_login_page_is_an_accessible_form(client):
    page = client.get("/manage/login")
    assert page.status_code == 200
    text = page.text
    assert '<label for="email">Email address</label>' in text
    assert '<label for="password">Password</label>' in text
    assert 'type="email"' in text and 'autocomplete="username"' in text
    assert 'type="password"' in text and 'autocomplete="current-password"' in text
    assert 'name="csrf_token"' in text
    assert '<meta name="robots" content="noindex">' in text


def test_login_logs_in_and_goes_to_the_workspace(client, make_coordinator):
    make_coordinator()
    response = post_login(client, email="  COORD@example.org")
    assert response.status_code == 302
    assert response.headers["Location"] == "/manage/"
    assert client.get("/manage/probe/whoami").text == EMAIL
    # Already logged in: the login page sends the coordinator on.
    assert client.get("/manage/login").status_code == 302


@pytest.mark.parametrize(
    ("email", "password"),
    [(EMAIL, "wrong password, long enough"), ("nobody@example.org", PASSWORD)],
)
def test_failed_login_says_the_same_thing_either_way(client, make_coordinator, email, password):
    make_coordinator()
    response = post_login(client, email, password)
    assert response.status_code == 400
    assert WRONG in response.text
    assert "Error: Log in" in response.text  # the title tells screen-reader users first
    assert 'value="' + PASSWORD not in response.text  # the password is not sent back
    assert client.get("/manage/probe/whoami").status_code == 302
    reference = post_login(client, EMAIL, "another wrong password")
    assert without_tokens(response.text) == without_tokens(reference.text)


def test_unknown_emails_cost_a_password_check_too(client, make_coordinator, monkeypatch):
    make_coordinator()
    checked = []
    real = auth.check_password_hash
    monkeypatch.setattr(auth, "check_password_hash", lambda h, p: checked.append(h) or real(h, p))
    post_login(client, "nobody@example.org")
    post_login(client, EMAIL, "wrong password, long enough")
    assert len(checked) == 2 and all(h.startswith("scrypt:") for h in checked)


def test_empty_fields_are_explained(client):
    response = post_login(client, email="", password="")
    assert response.status_code == 400
    assert "Enter your email address." in response.text
    assert "Enter your password." in response.text


def test_login_needs_a_csrf_token(client, make_coordinator):
    make_coordinator()
    response = client.post("/manage/login", data={"email": EMAIL, "password": PASSWORD})
    assert response.status_code == 400
    assert client.get("/manage/probe/whoami").status_code == 302


def test_protected_page_sends_to_login_and_back(client, make_coordinator):
    make_coordinator()
    response = client.get("/manage/probe/whoami")
    assert response.status_code == 302
    login_url = response.headers["Location"]
    assert login_url.startswith("/manage/login?next=")
    response = post_login(client, url=login_url)
    assert response.headers["Location"] == "/manage/probe/whoami"


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example/manage/",
        "//evil.example/manage/",
        "/\\evil.example/manage/",
        "/manage\\..\\..\\evil",
        "/manage/\\\\evil.example",
        "/manage/\r\nSet-Cookie: x=1",
        "/manage/\t/evil.example",
        "/letters/test-letter",
        "javascript:alert(1)//manage/",
        "manage/",
    ],
)
def test_next_never_leaves_the_workspace(client, make_coordinator, target):
    make_coordinator()
    response = post_login(client, query_string={"next": target})
    assert response.status_code == 302
    assert response.headers["Location"] == "/manage/"


def test_logout_needs_a_post_with_csrf(client, make_coordinator):
    make_coordinator()
    token = csrf_token(client.get("/manage/login").text)
    client.post("/manage/login", data={"email": EMAIL, "password": PASSWORD, "csrf_token": token})
    assert client.get("/manage/logout").status_code == 405
    assert client.post("/manage/logout").status_code == 400
    assert client.get("/manage/probe/whoami").status_code == 200
    response = client.post("/manage/logout", data={"csrf_token": token})
    assert response.status_code == 302
    assert response.headers["Location"] == "/manage/login"
    assert client.get("/manage/probe/whoami").status_code == 302
    assert "You are logged out." in client.get("/manage/login").text


# ---- rate limits ----


def test_too_many_failed_logins_from_one_address_get_a_friendly_429(client, make_coordinator):
    make_coordinator()
    for _ in range(10):
        assert post_login(client, password="wrong password, long enough").status_code == 400
    response = post_login(client)  # even the right password now waits
    assert response.status_code == 429
    assert "Too many attempts" in response.text
    assert "Please wait a minute and try again." in response.text
    assert 0 < int(response.headers["Retry-After"]) <= 60
    assert client.get("/manage/probe/whoami").status_code == 302
    assert client.get("/manage/login").status_code == 200  # the page itself still shows


def test_too_many_attempts_on_one_email_are_limited_from_any_address(client, make_coordinator):
    make_coordinator()
    for i in range(20):
        address = {"REMOTE_ADDR": f"192.0.2.{i}"}
        response = post_login(client, "Coord@Example.org", "wrong pw 123456", environ_base=address)
        assert response.status_code == 400
    last = {"REMOTE_ADDR": "198.51.100.1"}
    response = post_login(client, environ_base=last)
    assert response.status_code == 429
    assert "Please wait an hour and try again." in response.text
    other = post_login(client, "nobody@example.org", environ_base=last)
    assert other.status_code == 400  # other accounts are not locked out


def test_rate_limits_can_be_switched_off(app, tmp_path, monkeypatch, make_coordinator):
    make_coordinator()
    monkeypatch.setenv("RATELIMIT_ENABLED", "false")
    app = create_app(
        {
            "TESTING": True,
            "SECRET_KEY": "test",
            "SQLALCHEMY_DATABASE_URI": app.config["SQLALCHEMY_DATABASE_URI"],
            "LETTERS_DIR": str(tmp_path / "letters"),
        }
    )
    assert app.config["RATELIMIT_ENABLED"] is False
    client = app.test_client()
    for _ in range(12):
        assert post_login(client, password="wrong password, long enough").status_code == 400


# ---- cookies ----


def test_session_cookie_is_httponly_and_lax(client, make_coordinator):
    make_coordinator()
    cookies = post_login(client).headers.getlist("Set-Cookie")
    [cookie] = [c for c in cookies if c.startswith("session=")]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # tests run over plain HTTP


@pytest.mark.parametrize(
    ("env", "testing", "secure"),
    [(None, False, True), (None, True, False), ("false", False, False), ("true", True, True)],
)
def test_cookies_are_secure_outside_development(tmp_path, monkeypatch, env, testing, secure):
    if env is None:
        monkeypatch.delenv("SESSION_COOKIE_SECURE", raising=False)
    else:
        monkeypatch.setenv("SESSION_COOKIE_SECURE", env)
    app = create_app(
        {
            "TESTING": testing,
            "SECRET_KEY": "test",
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'test.sqlite3'}",
        }
    )
    assert app.config["SESSION_COOKIE_SECURE"] is secure
    assert app.config["REMEMBER_COOKIE_SECURE"] is secure
    assert app.config["REMEMBER_COOKIE_HTTPONLY"] is True
    assert app.config["REMEMBER_COOKIE_SAMESITE"] == "Lax"


# ---- roles ----


@pytest.mark.parametrize(
    ("have", "need", "status"),
    [
        ("owner", "owner", 200),
        ("owner", "viewer", 200),
        ("editor", "editor", 200),
        ("editor", "owner", 403),
        ("viewer", "viewer", 200),
        ("viewer", "editor", 403),
    ],
)
def test_require_role(client, make_coordinator, login, have, need, status):
    make_coordinator(role=have)
    login()
    response = client.get(f"/manage/probe/test-letter/{need}")
    assert response.status_code == status
    if status == 200:
        assert response.text == have


def test_require_role_hides_letters_without_a_membership(client, make_coordinator, write_letter):
    write_letter("other-letter")
    make_coordinator("other@example.org", slug="other-letter")
    make_coordinator()
    post_login(client)
    assert client.get("/manage/probe/other-letter/viewer").status_code == 404
    assert client.get("/manage/probe/no-such-letter/viewer").status_code == 404


def test_require_role_and_letters_of_in_a_request(app, make_coordinator, write_letter):
    write_letter("a-letter")
    make_coordinator()
    runner = app.test_cli_runner()
    assert runner.invoke(args=["user", "grant", EMAIL, "a-letter", "viewer"]).exit_code == 0
    with app.test_request_context("/manage/"):
        user = db.session.scalar(sa.select(User))
        assert [(m.letter_slug, m.role) for m in letters_of(user)] == [
            ("a-letter", Role.VIEWER),
            ("test-letter", Role.OWNER),
        ]
        login_user(user)
        assert require_role("a-letter", Role.VIEWER).role == Role.VIEWER
        with pytest.raises(Forbidden):
            require_role("a-letter", Role.EDITOR)
