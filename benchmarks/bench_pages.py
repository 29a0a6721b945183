"""The public pages with 5,000 approved signatories: the letter and the signatory list.

    .venv/bin/python benchmarks/bench_pages.py [--signatories 5000] [--requests 2000] [--seconds 20]

gunicorn with 2 and 4 sync workers on SQLite, then on PostgreSQL (started for the run
like `make test-pg`, or skipped with a message); client processes on this machine fetch
each page; printed: requests per second, p50/p99 latency, errors and the page size.
Target: p99 under 100 ms. Traffic goes to 127.0.0.1 only, bounded in requests and time.
"""

import argparse
import shutil
import subprocess
import tempfile
from functools import partial
from pathlib import Path

from bench_signon import (
    DEMO,
    LETTERAPP,
    PROJECT,
    PYTHON,
    fresh_database,
    gunicorn,
    load,
    machine,
    postgres,
    prepare,
    request,
)

PAGES = {"letter": f"/letters/{DEMO}", "signatories": f"/letters/{DEMO}/signatories"}

# Approved sign-ons through the app's own import, in one transaction.
POPULATE = """
import sys
from letterapp import create_app, signatures
from letterapp.models import Kind

count = int(sys.argv[1])
words = ["Human Rights", "Civic Space", "Legal Aid", "Press Freedom", "Women's Rights",
         "Justice", "Democracy", "Peace", "Environmental Defenders", "Minority Rights"]
people = ["María José Quiroga", "Kofi Asante-Boateng", "김민지", "Zeynep Türkmen",
          "Aoife Ní Bhriain", "Tomás Álvarez Ríos", "Nguyễn Thị Lan", "Ola Nordmann"]
rows = []
for n in range(count):
    if n % 3:
        name = f"{words[n % len(words)]} Network {n}"
        rows.append({"name": name, "kind": Kind.ORGANIZATION, "acronym": f"N{n}",
                     "contact_name": "Contact", "email": f"org{n}@example.org",
                     "country": "Valdoria"})
    else:
        rows.append({"name": f"{people[n % len(people)]} {n}", "kind": Kind.INDIVIDUAL,
                     "acronym": "", "contact_name": "", "email": f"person{n}@example.org",
                     "country": ""})
app = create_app()
with app.app_context():
    print(signatures.import_rows(sys.argv[2], rows, "benchmark"), "approved sign-ons")
"""


# For comparison (--uncached): the list rendered on every request, as before the cache.
UNCACHED_APP = """
import letterapp
import letterapp.public


def create_app():
    letterapp.public.NAME_LIST_MAX_AGE = -1
    return letterapp.create_app()
"""


def get_page(path: str, host: str, n: int) -> int:
    """One request for a page; its size in bytes."""
    status, body, _ = request(host, "GET", path)
    if status != 200:
        raise RuntimeError(f"GET {path}: {status}")
    return len(body.encode())


def measure(name: str, path: str, host: str, workers: int, args) -> None:
    load(partial(get_page, path), host, 0, 10 * workers, workers, 60)  # warm-up
    clients = args.clients or 2 * workers
    result = load(partial(get_page, path), host, 0, args.requests, clients, args.seconds)
    size = result.done[0] / 1024 if result.done else 0
    print(
        f"  {name:11} {workers} workers, {clients} clients: "
        f"{result.rate:6.1f} requests/s, p50 {result.percentile(50):4.0f} ms, "
        f"p99 {result.percentile(99):4.0f} ms (target < 100), "
        f"{len(result.errors)} errors, {size:.0f} KiB"
    )


def run_database(label: str, url: str | None, args) -> None:
    print(f"{label}:")
    folder = Path(tempfile.mkdtemp(prefix="bench-pages-"))
    env = fresh_database(LETTERAPP, prepare(folder), url, folder)
    populate = [PYTHON, "-c", POPULATE, str(args.signatories), DEMO]
    subprocess.run(populate, env=env, cwd=PROJECT, check=True, capture_output=True)
    (folder / "uncached_app.py").write_text(UNCACHED_APP)
    runs = [("letterapp:create_app()", PAGES)]
    if args.uncached:
        runs.append(("uncached_app:create_app()", {"uncached": PAGES["signatories"]}))
    for workers in args.workers:
        for wsgi, pages in runs:
            logs = folder / f"{wsgi.split(':')[0]}-{workers}w"
            logs.mkdir()
            with gunicorn(wsgi, env, workers, folder, logs) as (host, _pid):
                for name, path in pages.items():
                    measure(name, path, host, workers, args)
    shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--signatories", type=int, default=5000)
    parser.add_argument("--requests", type=int, default=2000, help="per page and run, at most")
    parser.add_argument("--seconds", type=float, default=20, help="per page and run, at most")
    parser.add_argument("--clients", type=int, help="client processes (default 2 per worker)")
    parser.add_argument("--workers", type=int, nargs="+", default=[2, 4])
    parser.add_argument("--no-pg", action="store_true", help="SQLite only")
    parser.add_argument(
        "--uncached", action="store_true", help="also the list rendered on every request"
    )
    args = parser.parse_args()
    print(f"Machine: {machine()}")
    print(
        f"{args.signatories} approved signatories; at most {args.requests} requests or "
        f"{args.seconds:.0f} s per page and run, after a warm-up."
    )
    run_database("SQLite", None, args)
    if not args.no_pg:
        with postgres() as url:
            if url:
                run_database("PostgreSQL", url, args)


if __name__ == "__main__":
    main()
