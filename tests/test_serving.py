"""Serving: /healthz, a busy database, ProxyFix, jobs, the signatory list cache, gunicorn."""

import email
import email.policy
import fcntl
import http.cookiejar
import os
import re
import shlex
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from contextlib import contextmanager

import pytest
import sqlalchemy as sa
from flask import current_app, request
from flask_migrate import downgrade

import letterapp.db
from letterapp import config, create_app, jobs, mail, manage, public, signatures
from letterapp.db import db
from letterapp.gunicorn_conf import redact
from letterapp.models import Signature

from .conftest import PROJECT, SIGNER, csrf_token

sqlite_only = pytest.mark.skipif(
    bool(os.environ.get("TEST_DATABASE_URL")), reason="SQLite's own locking"
)


@pytest.fixture
def another_app(app):
    """Another app on the test database, with some settings changed."""
    made = []

    def make(**settings):
        made.append(
            create_app(
                {
                    "SQLALCHEMY_DATABASE_URI": app.config["SQLALCHEMY_DATABASE_URI"],
                    "LETTERS_DIR": app.config["LETTERS_DIR"],
                    "SECRET_KEY": "x",
                    **settings,
                }
            )
        )
        return made[-1]

    yield make
    for each in made:
        with each.app_context():
            db.engine.dispose()


def test_healthz_says_ok_when_the_database_answers(client):
    response = client.get("/healthz")
    assert (response.status_code, response.text) == (200, "ok\n")
    assert response.headers["Cache-Control"] == "no-store"


def test_healthz_is_503_before_migrations(app, client):
    with app.app_context():
        downgrade(revision="base")
    response = client.get("/healthz")
    assert response.status_code == 503 and "not migrated" in response.text


def test_healthz_is_503_when_the_database_cannot_be_opened(tmp_path):
    app = create_app(
        {"TESTING": True, "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/missing/x.sqlite3"}
    )
    response = app.test_client().get("/healthz")
    assert (response.status_code, response.text) == (503, "database unavailable\n")


def test_healthz_answers_plain_http_when_https_is_forced(another_app):
    client = another_app(FORCE_HTTPS=True).test_client()
    assert client.get("/").status_code == 302  # everything else goes to HTTPS
    assert client.get("/healthz").status_code == 200


def test_a_database_that_cannot_be_opened_answers_503_not_a_traceback(tmp_path, write_letter):
    write_letter()
    app = create_app(
        {
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/missing/x.sqlite3",
            "LETTERS_DIR": str(tmp_path / "letters"),
        }
    )
    response = app.test_client().get("/letters/test-letter")
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert "try again in a few seconds" in response.text


def hold_write_lock(app, seconds: float) -> threading.Thread:
    """Another process's long write: the SQLite write lock held for `seconds`."""
    path = app.config["SQLALCHEMY_DATABASE_URI"].removeprefix("sqlite:///")
    connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    connection.execute("BEGIN IMMEDIATE")

    def release():
        time.sleep(seconds)
        connection.execute("ROLLBACK")
        connection.close()

    thread = threading.Thread(target=release)
    thread.start()
    return thread


@pytest.fixture
def short_busy_timeout(app, monkeypatch):
    monkeypatch.setattr(letterapp.db, "BUSY_TIMEOUT_MS", 200)
    monkeypatch.setattr(letterapp.db.random, "uniform", lambda low, high: 0.15)
    with app.app_context():
        db.engine.dispose()  # new connections get the short timeout


def sign_on_count(app) -> int:
    with app.app_context():
        return db.session.scalar(sa.select(sa.func.count()).select_from(Signature))


@sqlite_only
def test_a_sign_on_waits_for_a_locked_database_and_retries_once(
    app, client, sign, short_busy_timeout
):
    client.get("/letters/test-letter")  # opens the pooled connection with the short timeout
    released = hold_write_lock(app, 0.3)  # longer than the busy timeout, shorter than the retry
    response = sign()
    released.join()
    assert response.status_code == 302
    assert sign_on_count(app) == 1


@sqlite_only
def test_a_database_locked_for_long_answers_503_with_retry_after(
    app, client, sign, short_busy_timeout, caplog
):
    client.get("/letters/test-letter")
    released = hold_write_lock(app, 1.5)
    response = sign()
    released.join()
    assert response.status_code == 503 and response.headers["Retry-After"] == "5"
    assert "database unavailable: database is locked" in caplog.text
    assert SIGNER["email"] not in caplog.text
    assert sign(email="later@example.org").status_code == 302  # and it recovers


@sqlite_only
def test_reads_take_no_lock_while_another_worker_writes(app, client):
    client.get("/letters/test-letter")
    released = hold_write_lock(app, 0.5)
    with writers_lock(app) as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        started = time.monotonic()
        assert client.get("/letters/test-letter/signatories").status_code == 200
        assert time.monotonic() - started < 0.4
    released.join()


@contextmanager
def writers_lock(app):
    """The lock file the app's writers queue on, opened as another worker would."""
    path = app.config["SQLALCHEMY_DATABASE_URI"].removeprefix("sqlite:///") + "-writers"
    with open(path, "ab") as lock:
        yield lock


@sqlite_only
def test_writers_queue_on_the_lock_file_and_always_release_it(
    app, client, sign, short_busy_timeout
):
    with writers_lock(app) as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another worker writing for 0.1 s
        threading.Timer(0.1, fcntl.flock, (lock, fcntl.LOCK_UN)).start()
        started = time.monotonic()
        assert sign().status_code == 302
        assert 0.1 <= time.monotonic() - started
        assert sign().status_code == 302  # the same signer: an insert refused, rolled back
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # free again after both
    assert sign_on_count(app) == 1


@sqlite_only
def test_a_writer_that_never_gets_the_lock_file_answers_503(app, client, sign, short_busy_timeout):
    with writers_lock(app) as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        response = sign()
    assert response.status_code == 503
    assert sign_on_count(app) == 0


@pytest.mark.parametrize(
    ("environment", "expected"), [({}, "127.0.0.1"), ({"PROXY_FIX_X_FOR": "1"}, "203.0.113.7")]
)
def test_proxy_fix_gives_the_client_address_when_switched_on(
    monkeypatch, app, another_app, environment, expected
):
    for key, value in environment.items():
        monkeypatch.setenv(key, value)
    settings = config.from_environment(app.instance_path)
    proxied = another_app(PROXY_FIX_X_FOR=settings["PROXY_FIX_X_FOR"])
    proxied.add_url_rule("/address", "address", lambda: request.remote_addr)
    response = proxied.test_client().get("/address", headers={"X-Forwarded-For": "203.0.113.7"})
    assert response.text == expected


# Jobs, in threads (no REDIS_URL in tests).


def needs_the_app(suffix: str) -> str:
    return current_app.config["SECRET_KEY"] + suffix


def explode() -> None:
    raise RuntimeError("boom")


def test_a_job_runs_in_the_background_inside_the_app(app):
    with app.app_context():
        job_id = jobs.enqueue("tests.test_serving.needs_the_app", "-ok")
        assert jobs.wait(job_id, timeout=10) == ("finished", "test-ok")
        assert jobs.status(job_id).state == "finished"


def test_a_failing_job_is_reported_failed_and_logged(app, caplog):
    with app.app_context():
        job_id = jobs.enqueue("tests.test_serving.explode")
        assert jobs.wait(job_id, timeout=10).state == "failed"
    assert "RuntimeError: boom" in caplog.text


def test_job_status_of_an_unknown_id_and_a_typo_in_a_path(app):
    with app.app_context():
        assert jobs.status("no-such-job").state == "unknown"
        with pytest.raises(AttributeError):
            jobs.enqueue("letterapp.mail.no_such_function")


def test_outbox_retry_that_outlasts_the_wait_says_it_goes_on(
    app, client, coordinator, sign, smtp_server, monkeypatch
):
    app.config["SMTP_URL"] = "smtp://127.0.0.1:9"
    sign()
    app.config["SMTP_URL"] = smtp_server.url
    release = threading.Event()
    retry_failed = mail.retry_failed

    def slow_retry():
        release.wait(10)
        return retry_failed()

    monkeypatch.setattr(mail, "retry_failed", slow_retry)
    monkeypatch.setattr(manage, "OUTBOX_WAIT", 0.2)
    outbox = "/manage/letters/test-letter/outbox"
    token = csrf_token(client.get(outbox).text)
    page = client.post(outbox, data={"csrf_token": token}, follow_redirects=True).text
    assert "Retrying 1 message(s): reload this page to follow." in page
    release.set()
    deadline = time.monotonic() + 10
    while not smtp_server.messages and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(smtp_server.messages) == 1


# The access log.


@pytest.mark.parametrize(
    ("path", "logged"),
    [
        ("/letters/civic-space-2026", "/letters/civic-space-2026"),
        ("/letters/civic-space-2026.pdf", "/letters/civic-space-2026.pdf"),
        ("/letters/a/confirm/MQ.aSM1bA.AbCdEfGhIjKlMnOpQrStUvWxYz0", "/letters/a/confirm/[hidden]"),
        ("/letters/a/signon/short/withdraw", "/letters/a/signon/[hidden]/withdraw"),
        ("/letters/someone@example.org", "/letters/[hidden]"),
        ("/static/x/MQ.aSM1bA.AbCdEfGhIjKlMnOpQrStUvWxYz0", "/static/x/[hidden]"),
        (
            "/letters/the-longest-letter-slug-anyone-wrote",
            "/letters/the-longest-letter-slug-anyone-wrote",
        ),
    ],
)
def test_the_access_log_hides_private_tokens_and_emails(path, logged):
    assert redact(path) == logged


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def procfile() -> dict[str, str]:
    lines = (PROJECT / "Procfile").read_text().splitlines()
    return dict(line.split(": ", 1) for line in lines if line.strip())


def command(line: str) -> list[str]:
    """A Procfile command, run with this Python's gunicorn and flask."""
    words = shlex.split(line)
    return [sys.executable, "-m", words[0], *words[1:]]


@pytest.fixture
def gunicorn(app, tmp_path):
    """The Procfile's release, then its web process with 2 workers, on an empty database."""
    with app.app_context():
        downgrade(revision="base")  # the release command migrates from empty to head
        db.engine.dispose()
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
        "LETTERS_DIR": app.config["LETTERS_DIR"],
        "OUTBOX_DIR": app.config["OUTBOX_DIR"],
        "SECRET_KEY": "serving-test",
        "SESSION_COOKIE_SECURE": "false",
        "RATELIMIT_ENABLED": "false",
        "GUNICORN_CMD_ARGS": f"--bind 127.0.0.1:{port} --workers 2",
    }
    env.pop("SMTP_URL", None)
    env.pop("REDIS_URL", None)
    processes = procfile()
    release = subprocess.run(
        command(processes["release"]),
        env=env,
        cwd=PROJECT,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert release.returncode == 0, release.stderr
    log = tmp_path / "access.log"
    with log.open("wb") as stdout, (tmp_path / "error.log").open("wb") as stderr:
        server = subprocess.Popen(
            command(processes["web"]), env=env, cwd=PROJECT, stdout=stdout, stderr=stderr
        )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(base + "/healthz", timeout=2)
            break
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                pytest.fail((tmp_path / "error.log").read_text())
            time.sleep(0.2)
    yield base, log, server
    if server.poll() is None:
        server.kill()
        server.wait(10)


def test_gunicorn_serves_the_procfile_and_logs_one_line_per_request_without_personal_data(
    gunicorn, tmp_path
):
    base, log, server = gunicorn
    opener = urllib.request.build_opener(
        urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()), NoRedirect()
    )
    with opener.open(f"{base}/healthz", timeout=10) as response:
        assert (response.status, response.read()) == (200, b"ok\n")
    page = opener.open(f"{base}/letters/test-letter?email=someone%40example.org", timeout=30)
    data = {**SIGNER, "csrf_token": csrf_token(page.read().decode())}
    try:
        opener.open(
            f"{base}/letters/test-letter", urllib.parse.urlencode(data).encode(), timeout=30
        )
    except urllib.error.HTTPError as error:
        assert error.code == 302
    # The confirmation is sent once the response is: wait for it.
    deadline = time.monotonic() + 10
    while not list((tmp_path / "outbox").glob("*.eml")) and time.monotonic() < deadline:
        time.sleep(0.05)
    [message] = (tmp_path / "outbox").glob("*.eml")
    text = email.message_from_bytes(message.read_bytes(), policy=email.policy.default)
    manage_link = re.search(r"http://\S+/signon/\S+", text.get_body().get_content()).group()
    assert opener.open(manage_link, timeout=30).status == 200

    server.send_signal(signal.SIGTERM)  # a graceful stop, as a deploy does
    assert server.wait(timeout=40) == 0
    text = log.read_text()
    lines = text.splitlines()
    line_format = re.compile(r'\[[^]]+\] "(GET|POST) /\S*" \d{3} (\d+|-) \d+ms')
    assert all(line_format.fullmatch(line) for line in lines), lines
    assert len([line for line in lines if "/healthz" not in line]) == 3
    assert "/letters/test-letter/signon/[hidden]" in text
    for private in (SIGNER["email"], "someone", "example.org", "127.0.0.1", "Working Group"):
        assert private not in text


# The signatory list, cached per worker.


def signatory_page(client) -> str:
    return client.get("/letters/test-letter/signatories").text


def test_the_cached_signatory_list_follows_every_audited_change(app, client, sign, runner):
    sign()
    sign(name="Second Group", acronym="", email="second@example.org")
    runner.invoke(args=["signatures", "approve", "test-letter", "1"])
    assert "Transitional Justice Working Group" in signatory_page(client)
    assert "Second Group" not in signatory_page(client)
    runner.invoke(args=["signatures", "approve", "test-letter", "2"])
    assert "Second Group" in signatory_page(client)
    with app.app_context():
        first = db.session.get(Signature, 1)
        signatures.set_letter_name(first, "TJWG, as the letter prints it", "coord@example.org")
    page = signatory_page(client)
    assert "TJWG, as the letter prints it" in page and "2 signatories" in page


def test_an_unaudited_change_shows_within_the_maximum_age(app, client, sign, runner, monkeypatch):
    sign()
    runner.invoke(args=["signatures", "approve", "test-letter", "1"])
    assert "Transitional Justice Working Group" in signatory_page(client)
    with app.app_context():
        db.session.execute(sa.update(Signature).values(letter_name="Renamed Quietly"))
        db.session.commit()
    assert "Renamed Quietly" not in signatory_page(client)
    monkeypatch.setattr(public, "NAME_LIST_MAX_AGE", 0)
    assert "Renamed Quietly" in signatory_page(client)
