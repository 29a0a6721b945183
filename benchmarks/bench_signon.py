"""Sign-ons per second: letterapp under gunicorn, beside a minimal Flask app as the ceiling.

    .venv/bin/python benchmarks/bench_signon.py [--signons 2000] [--seconds 30] [--clients N]

For 2 and 4 sync workers, on SQLite and then on PostgreSQL (started for the run the way
`make test-pg` starts it, or skipped with a message), client processes on this machine
fetch the sign-on form, take its CSRF token and post it, each signer distinct. Printed:
sign-ons per second, p50/p99 latency of a sign-on (GET + POST), errors, a count of
the rows (every accepted sign-on must be in the database exactly once) and of the
confirmations: each must be sent (an .eml file, SMTP_URL unset), during the load or
in the seconds after it, which are timed.

Traffic goes to 127.0.0.1 only; each run stops after --signons sign-ons or --seconds.
Run on demand, not in CI. Rate limits are off (RATELIMIT_ENABLED=false) for the run.
"""

import argparse
import http.client
import multiprocessing
import os
import platform
import re
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa

PROJECT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
DEMO = "civic-space-2026"
TOKEN = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')
WARM_UP = 10  # sign-ons per worker before measuring: imports, fonts, caches

# The ceiling: one WTForms form, one insert, the same gunicorn settings and database.
MINIMAL_APP = '''
import os

import sqlalchemy as sa
from flask import Flask, redirect, render_template_string
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import FlaskForm
from wtforms import EmailField, StringField
from wtforms.validators import DataRequired, Email, Length

db = SQLAlchemy()


class Signer(db.Model):
    id = sa.Column(sa.Integer, primary_key=True)
    name = sa.Column(sa.String(200), nullable=False)
    email = sa.Column(sa.String(254), nullable=False, unique=True)


class SignOnForm(FlaskForm):
    name = StringField(validators=[DataRequired(), Length(max=200)])
    email = EmailField(validators=[DataRequired(), Email(), Length(max=254)])


PAGE = """<!doctype html><title>Sign</title><form method="post">{{ form.csrf_token }}
{{ form.name }} {{ form.email }} <button>Sign</button></form>"""


def _tune_sqlite(connection, record):
    for pragma in ("journal_mode=WAL", "busy_timeout=5000", "synchronous=NORMAL"):
        connection.execute("PRAGMA " + pragma)


def create_app():
    app = Flask(__name__)
    app.config["SECRET_KEY"] = os.environ["SECRET_KEY"]
    app.config["SQLALCHEMY_DATABASE_URI"] = os.environ["DATABASE_URL"]
    db.init_app(app)
    with app.app_context():
        if db.engine.dialect.name == "sqlite":
            sa.event.listen(db.engine, "connect", _tune_sqlite)

    @app.route("/sign", methods=["GET", "POST"])
    def sign():
        form = SignOnForm()
        if form.validate_on_submit():
            db.session.add(Signer(name=form.name.data, email=form.email.data))
            db.session.commit()
            return redirect("/sign")
        return render_template_string(PAGE, form=form)

    return app
'''


def machine() -> str:
    """What the figures were measured on."""
    cpu = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    return (
        f"{cpu}, {len(os.sched_getaffinity(0))} cores, {pages / 2**30:.0f} GiB; "
        f"{platform.system()} {platform.release()}; Python {platform.python_version()}, "
        f"SQLite {sqlite3.sqlite_version}; {time.strftime('%Y-%m-%d %H:%M %Z')}; "
        f"load average at start {os.getloadavg()[0]:.2f}"
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def postgres() -> Iterator[str | None]:
    """A PostgreSQL server for the run, started like `make test-pg` does; None if it cannot."""
    folder = tempfile.mkdtemp(prefix="bench-pg-")
    make = ["make", "-s", "--no-print-directory", "-C", str(PROJECT)]
    started = subprocess.run(
        [*make, "pg-start", f"PG_DIR={folder}"], capture_output=True, text=True, check=False
    )
    if started.returncode != 0:
        print(f"PostgreSQL skipped: it did not start ({started.stderr.strip()[-300:]})")
        shutil.rmtree(folder, ignore_errors=True)
        yield None
        return
    try:
        yield started.stdout.strip()
    finally:
        subprocess.run([*make, "pg-stop", f"PG_DIR={folder}"], check=False)
        shutil.rmtree(folder, ignore_errors=True)


def empty_database(url: str) -> None:
    """Drop everything in a PostgreSQL database (each run starts empty)."""
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        connection.execute(sa.text("DROP SCHEMA public CASCADE"))
        connection.execute(sa.text("CREATE SCHEMA public"))
    engine.dispose()


@contextmanager
def gunicorn(app: str, env: dict, workers: int, cwd: Path, logs: Path) -> Iterator[tuple[str, int]]:
    """gunicorn with letterapp's settings file, on a free port of 127.0.0.1: (host, its pid)."""
    port = free_port()
    command = [PYTHON, "-m", "gunicorn", "-c", str(PROJECT / "letterapp" / "gunicorn_conf.py")]
    command += ["--workers", str(workers), "--bind", f"127.0.0.1:{port}", app]
    with (logs / "access.log").open("ab") as out, (logs / "error.log").open("ab") as err:
        server = subprocess.Popen(command, env=env, cwd=cwd, stdout=out, stderr=err)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"gunicorn did not start: see {logs}/error.log") from None
                time.sleep(0.1)
        yield f"127.0.0.1:{port}", server.pid
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=40)
        except subprocess.TimeoutExpired:
            server.kill()


def request(
    host: str, method: str, path: str, body: str | None = None, cookie: str = ""
) -> tuple[int, str, str]:
    """One request on a new connection (sync workers close it): status, body, session cookie."""
    connection = http.client.HTTPConnection(host, timeout=30)
    headers = {"Cookie": cookie} if cookie else {}
    if body is not None:
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    connection.request(method, path, body=body, headers=headers)
    response = connection.getresponse()
    text = response.read().decode("utf-8", "replace")
    connection.close()
    for set_cookie in response.msg.get_all("Set-Cookie") or ():
        if set_cookie.startswith("session="):
            cookie = set_cookie.split(";", 1)[0]
    return response.status, text, cookie


def sign_letterapp(host: str, n: int) -> str:
    """One signer of the demo letter, through the real form; their email."""
    email = f"signer{n}@bench.example.org"
    status, page, cookie = request(host, "GET", f"/letters/{DEMO}")
    if status != 200:
        raise RuntimeError(f"GET {status}")
    form = {
        "csrf_token": TOKEN.search(page).group(1),
        "kind": "organization",
        "name": f"Bench Coalition {n}",
        "acronym": f"BC{n}",
        "contact_name": "Alex Example",
        "email": email,
        "country": "Valdoria",
        "authorised": "y",
        "consent": "y",
    }
    status, _, _ = request(host, "POST", f"/letters/{DEMO}", urllib.parse.urlencode(form), cookie)
    if status != 302:
        raise RuntimeError(f"POST {status}")
    return email


def sign_minimal(host: str, n: int) -> str:
    email = f"signer{n}@bench.example.org"
    status, page, cookie = request(host, "GET", "/sign")
    if status != 200:
        raise RuntimeError(f"GET {status}")
    form = {"csrf_token": TOKEN.search(page).group(1), "name": f"Bench {n}", "email": email}
    status, _, _ = request(host, "POST", "/sign", urllib.parse.urlencode(form), cookie)
    if status != 302:
        raise RuntimeError(f"POST {status}")
    return email


@dataclass
class Results:
    latencies: list[float] = field(default_factory=list)  # seconds, successful tasks
    done: list[str] = field(default_factory=list)  # what each successful task returned
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0
    cpu_ms: float = float("nan")  # server CPU per sign-on (run_one)

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0

    def percentile(self, p: float) -> float:
        if len(self.latencies) < 2:
            return float("nan")
        return statistics.quantiles(self.latencies, n=100, method="inclusive")[p - 1] * 1000


def _client(args) -> Results:
    task, host, numbers, deadline = args
    results = Results()
    for n in numbers:
        if time.monotonic() > deadline:
            break
        started = time.monotonic()
        try:
            results.done.append(task(host, n))
        except Exception as error:  # noqa: BLE001 - counted and reported as an error
            results.errors.append(f"{type(error).__name__}: {error}")
            continue
        results.latencies.append(time.monotonic() - started)
    return results


def load(task: Callable, host: str, first: int, count: int, clients: int, seconds: float):
    """Run `task(host, n)` for n in first..first+count over `clients` processes, or until time is up."""
    numbers = range(first, first + count)
    deadline = time.monotonic() + seconds
    jobs = [(task, host, numbers[i::clients], deadline) for i in range(clients)]
    started = time.monotonic()
    with multiprocessing.get_context("fork").Pool(clients) as pool:
        parts = pool.map(_client, jobs)
    total = Results(seconds=time.monotonic() - started)
    for part in parts:
        total.latencies += part.latencies
        total.done += part.done
        total.errors += part.errors
    return total


def count_rows(url: str, table: str, column: str) -> dict[str, int]:
    engine = sa.create_engine(url)
    with engine.connect() as connection:
        rows = connection.execute(
            sa.text(f"SELECT {column}, count(*) FROM {table} GROUP BY {column}")
        ).all()
    engine.dispose()
    return dict(rows)


def check_rows(accepted: list[str], stored: dict[str, int]) -> str:
    """Every accepted sign-on stored exactly once?"""
    missing = [email for email in accepted if email not in stored]
    doubled = [email for email, times in stored.items() if times > 1]
    unacknowledged = len(set(stored) - set(accepted))
    verdict = "ok" if not missing and not doubled else "FAILED"
    return (
        f"rows {verdict}: {len(accepted)} accepted, {len(stored)} stored, "
        f"{len(missing)} missing, {len(doubled)} duplicated, "
        f"{unacknowledged} stored without an answer"
    )


# letterapp with SQLite's busy handler alone, without the writers' lock file
# (--compare-locking): what the lock file is for.
BUSY_HANDLER_APP = """
import letterapp
import letterapp.db


def create_app():
    letterapp.db._take_write_lock = lambda connection: None
    return letterapp.create_app()
"""


# letterapp that neither queues nor sends the confirmations (--compare-mail): what
# the double opt-in costs. Not a way to run letterapp: its signers could not confirm.
NO_MAIL_APP = """
import letterapp
import letterapp.public


def create_app():
    letterapp.public.queue_confirmation = lambda signature, letter: None
    letterapp.public.start_sending = lambda: None
    return letterapp.create_app()
"""


@dataclass(frozen=True)
class App:
    name: str
    wsgi: str
    task: Callable
    table: str  # where its sign-ons are stored, by email
    mail: bool = False  # sends a confirmation for each sign-on


MINIMAL = App("minimal", "minimal_app:create_app()", sign_minimal, "signer")
LETTERAPP = App("letterapp", "letterapp:create_app()", sign_letterapp, "signature", mail=True)
BUSY_HANDLER = App(
    "no-lockfile", "busy_handler_app:create_app()", sign_letterapp, "signature", mail=True
)
NO_MAIL = App("no-mail", "no_mail_app:create_app()", sign_letterapp, "signature")


def server_cpu(pid: int) -> float:
    """CPU seconds (user + system) used so far by gunicorn's master and its workers."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # a process that has just ended
        if stat.parent.name == str(pid) or fields[1] == str(pid):
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def run_one(app: App, env: dict, workers: int, args, folder: Path) -> Results:
    logs = folder / f"{app.name}-{workers}w"
    logs.mkdir()
    with gunicorn(app.wsgi, env, workers, folder, logs) as (host, pid):
        warm = load(app.task, host, 0, WARM_UP * workers, workers, 60)
        cpu = server_cpu(pid)
        result = load(
            app.task, host, 10_000, args.signons, args.clients or 2 * workers, args.seconds
        )
        accepted = warm.done + result.done
        mail = mail_drained(env, len(accepted)) if app.mail else ""
        # The server's CPU for the load, its confirmations included (sent during the
        # load or drained after it): steadier than rates on a shared machine.
        result.cpu_ms = (server_cpu(pid) - cpu) * 1000 / max(1, len(result.done))
    stored = count_rows(env["DATABASE_URL"], app.table, "email")
    errors = sorted(set(result.errors + warm.errors))
    print(
        f"  {app.name:11} {workers} workers: {result.rate:6.1f} sign-ons/s, "
        f"p50 {result.percentile(50):5.0f} ms, p99 {result.percentile(99):5.0f} ms, "
        f"server CPU {result.cpu_ms:4.1f} ms per sign-on, "
        f"{len(result.errors)} errors{' ' + '; '.join(errors[:3]) if errors else ''}"
    )
    print(f"            {check_rows(accepted, stored)}")
    if mail:
        print(f"            {mail}")
    return result


def mail_drained(env: dict, accepted: int, seconds: float = 120) -> str:
    """Wait for the confirmations still queued when the load stopped; what was sent, how fast.

    letterapp sends each confirmation from a job after the sign-on's response
    (in the worker, without Redis), so the load already paid for most of them.
    """
    engine = sa.create_engine(env["DATABASE_URL"])
    started = time.monotonic()
    query = sa.text("SELECT status, count(*) FROM outgoing_mail GROUP BY status")
    while True:
        with engine.connect() as connection:
            statuses = dict(connection.execute(query).all())
        if not statuses.get("queued") or time.monotonic() - started > seconds:
            break
        time.sleep(0.05)
    waited = time.monotonic() - started
    engine.dispose()
    files = len(list(Path(env["OUTBOX_DIR"]).glob("*.eml")))
    verdict = "ok" if statuses.get("sent", 0) == files == accepted else "FAILED"
    return (
        f"mail {verdict}: {statuses.get('sent', 0)} confirmations sent ({files} .eml files) "
        f"for {accepted} sign-ons, {statuses.get('queued', 0)} still queued, "
        f"{statuses.get('failed', 0)} failed; {waited:.1f} s to drain after the load"
    )


def prepare(folder: Path) -> dict:
    """The environment of every app in the run (each gets its DATABASE_URL later)."""
    letters = folder / "letters"
    letters.mkdir(exist_ok=True)
    shutil.copy(PROJECT / "letters" / f"{DEMO}.md", letters)
    (folder / "minimal_app.py").write_text(textwrap.dedent(MINIMAL_APP))
    (folder / "busy_handler_app.py").write_text(textwrap.dedent(BUSY_HANDLER_APP))
    (folder / "no_mail_app.py").write_text(textwrap.dedent(NO_MAIL_APP))
    env = {
        **os.environ,
        "SECRET_KEY": "benchmark",
        "LETTERS_DIR": str(letters),
        "RATELIMIT_ENABLED": "false",
        "SESSION_COOKIE_SECURE": "false",
        "PYTHONPATH": f"{PROJECT}:{folder}",
    }
    for unset in ("SMTP_URL", "REDIS_URL", "WEB_CONCURRENCY", "GUNICORN_CMD_ARGS", "DATABASE_URL"):
        env.pop(unset, None)
    return env


def fresh_database(app: App, env: dict, url: str | None, folder: Path) -> dict:
    """An empty database with the app's schema; the app's environment pointing to it."""
    env = {
        **env,
        "DATABASE_URL": url or f"sqlite:///{folder}/{app.name}.sqlite3",
        "OUTBOX_DIR": str(folder / f"outbox-{app.name}"),
    }
    if url:
        empty_database(url)
    if app is MINIMAL:
        create = (
            "import minimal_app as m; a = m.create_app(); a.app_context().push(); m.db.create_all()"
        )
        subprocess.run([PYTHON, "-c", create], env=env, cwd=folder, check=True)
    else:
        flask = [PYTHON, "-m", "flask", "--app", "letterapp", "db", "upgrade"]
        subprocess.run(flask, env=env, cwd=PROJECT, check=True, capture_output=True)
    return env


def run_database(label: str, url: str | None, args) -> None:
    print(f"{label}:")
    for workers in args.workers:
        ratios = []
        # Rounds alternate the two apps, so a change in the machine's speed (a shared
        # VM) falls on both; the median of the rounds' ratios is the figure.
        for _ in range(args.rounds):
            ratios.append(run_round(url, workers, args))
        if args.rounds > 1:
            rates, tails, cpus = (statistics.median(r[i] for r in ratios) for i in range(3))
            print(
                f"  median of {args.rounds} rounds, {workers} workers: {rates:.0%} of the rate, "
                f"p99 x{tails:.2f}, server CPU x{cpus:.2f}"
            )


def run_round(url: str | None, workers: int, args) -> tuple[float, float, float]:
    """One run of each app; letterapp against the minimal app: rate, p99 and CPU ratios."""
    folder = Path(tempfile.mkdtemp(prefix="bench-signon-"))
    env = prepare(folder)
    results = {}
    apps = [MINIMAL, LETTERAPP]
    if args.compare_locking and not url:
        apps.append(BUSY_HANDLER)
    if args.compare_mail:
        apps.append(NO_MAIL)
    for app in apps:
        app_env = fresh_database(app, env, url, folder)
        results[app] = run_one(app, app_env, workers, args, folder)
    ceiling = results.pop(MINIMAL)
    ratios = {}
    for app, ours in results.items():
        rate = ours.rate / ceiling.rate if ceiling.rate else float("nan")
        ratios[app] = (
            rate,
            ours.percentile(99) / ceiling.percentile(99),
            ours.cpu_ms / ceiling.cpu_ms,
        )
        print(
            f"            {app.name}/minimal: {rate:.0%} of the rate (target >= 80%), "
            f"p99 x{ratios[app][1]:.2f} (target <= 1.5), server CPU x{ratios[app][2]:.2f}"
        )
    if not args.keep:
        shutil.rmtree(folder, ignore_errors=True)
    return ratios[LETTERAPP]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--signons", type=int, default=2000, help="per run, at most")
    parser.add_argument("--seconds", type=float, default=30, help="per run, at most")
    parser.add_argument("--clients", type=int, help="client processes (default 2 per worker)")
    parser.add_argument("--workers", type=int, nargs="+", default=[2, 4])
    parser.add_argument("--no-pg", action="store_true", help="SQLite only")
    parser.add_argument(
        "--compare-locking", action="store_true", help="also SQLite without the lock file"
    )
    parser.add_argument(
        "--compare-mail", action="store_true", help="also letterapp without its confirmations"
    )
    parser.add_argument("--rounds", type=int, default=1, help="runs of each app, alternating")
    parser.add_argument("--keep", action="store_true", help="keep the databases and logs")
    args = parser.parse_args()
    print(f"Machine: {machine()}")
    print(f"At most {args.signons} sign-ons or {args.seconds:.0f} s per run, after a warm-up.")
    run_database("SQLite", None, args)
    if args.no_pg:
        return
    with postgres() as url:
        if url:
            run_database("PostgreSQL", url, args)


if __name__ == "__main__":
    main()
