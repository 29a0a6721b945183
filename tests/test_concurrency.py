"""Sign-ons under concurrency and a killed worker, against real gunicorn on 127.0.0.1.

Bounded: a few hundred requests, each with a timeout; the server is stopped at the end.
"""

import http.client
import http.cookiejar
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from .conftest import LETTER, PROJECT

TOKEN = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def server(tmp_path):
    """gunicorn with 4 sync workers on a fresh SQLite database."""
    if os.environ.get("TEST_DATABASE_URL"):
        pytest.skip("the SQLite concurrency test; PostgreSQL has its own server")
    letters = tmp_path / "letters"
    letters.mkdir()
    (letters / "test-letter.md").write_text(LETTER, encoding="utf-8")
    database = tmp_path / "load.sqlite3"
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{database}",
        "LETTERS_DIR": str(letters),
        "SECRET_KEY": "concurrency-test",
        "RATELIMIT_ENABLED": "false",
        "OUTBOX_DIR": str(tmp_path / "outbox"),
        "SESSION_COOKIE_SECURE": "false",
        "LOG_LEVEL": "WARNING",
    }
    env.pop("SMTP_URL", None)
    flask = [sys.executable, "-m", "flask", "--app", "letterapp"]
    subprocess.run([*flask, "db", "upgrade"], env=env, cwd=PROJECT, check=True, capture_output=True)
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--workers", "4", "--bind", f"127.0.0.1:{port}",
         "--timeout", "60", "letterapp:create_app()"],
        env=env, cwd=PROJECT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(base + "/", timeout=2)
            break
        except OSError:
            time.sleep(0.2)
    else:
        process.kill()
        pytest.fail("gunicorn did not start")
    yield base, database, process
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()


def sign_on(base: str, email: str, name: str) -> int:
    """One signer: fetch the form for its CSRF token, post it; the final status code."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar), NoRedirect())
    page = opener.open(f"{base}/letters/test-letter", timeout=30).read().decode()
    data = {
        "csrf_token": TOKEN.search(page).group(1), "kind": "organization", "name": name,
        "acronym": "", "contact_name": "Contact", "email": email, "authorised": "y",
        "consent": "y",
    }  # fmt: skip
    try:
        response = opener.open(
            f"{base}/letters/test-letter", urllib.parse.urlencode(data).encode(), timeout=30
        )
        return response.status
    except urllib.error.HTTPError as error:
        return error.code


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def children(pid: int) -> list[int]:
    """The processes whose parent is `pid` (gunicorn's workers), read from /proc."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def emails(database) -> list[str]:
    with sqlite3.connect(database) as connection:
        return [row[0] for row in connection.execute("SELECT email FROM signature")]


def test_200_concurrent_sign_ons_are_all_kept_once(server):
    base, database, _ = server
    with ThreadPoolExecutor(max_workers=50) as pool:
        statuses = list(
            pool.map(lambda n: sign_on(base, f"s{n}@example.org", f"Group {n}"), range(200))
        )
    assert statuses == [302] * 200
    stored = emails(database)
    assert len(stored) == 200 and len(set(stored)) == 200


def test_50_identical_sign_ons_make_one_row(server):
    base, database, _ = server
    with ThreadPoolExecutor(max_workers=50) as pool:
        statuses = list(
            pool.map(lambda _: sign_on(base, "same@example.org", "Same Group"), range(50))
        )
    assert statuses == [302] * 50  # every signer sees the same "check your inbox" page
    assert emails(database) == ["same@example.org"]


def test_a_killed_worker_loses_and_duplicates_nothing(server):
    base, database, process = server
    workers = children(process.pid)
    assert len(workers) == 4

    def attempt(n: int) -> tuple[int, int | None]:
        if n == 40:
            os.kill(workers[0], signal.SIGKILL)
        try:
            return n, sign_on(base, f"k{n}@example.org", f"Kill Group {n}")
        except (OSError, http.client.HTTPException):
            return n, None  # the connection died with the worker, perhaps mid-answer

    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(attempt, range(120)))
    accepted = {f"k{n}@example.org" for n, status in results if status == 302}
    stored = emails(database)
    assert len(stored) == len(set(stored))  # nothing duplicated
    assert accepted <= set(stored)  # nothing accepted is lost
    assert len(accepted) >= 100
    with sqlite3.connect(database) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    # gunicorn replaced the worker and the server keeps serving.
    assert sign_on(base, "after@example.org", "After Group") == 302
