"""PDF benchmark: the demo letter with 12, 500 and 5,000 signatories.

Run on demand, not in CI:

    .venv/bin/python benchmarks/bench_pdf.py [--runs 3] [--sizes 12,500,5000]

For each size it measures letterapp's render (cache empty, warm worker
processes; from 200 names in parts, see letterapp/pdfparts.py), the render
after one more sign-on (the parts of the first render still cached), and a
cached repeat download; and, on the single HTML of the one-piece render, plain
WeasyPrint in a fresh process and `chromium --headless --print-to-pdf` (when
/usr/bin/chromium exists) as anchors. Times are medians of the runs; memory is
the peak resident size of the largest process (for letterapp: its worker
processes). `cpu` is the CPU time the two worker processes spent on the cold
render (the busier one, and both together): on a shared machine it tells
what the wall-clock figure would be without the other load.
"""

import argparse
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SLUG = "civic-space-2026"
AS_OF = date(2026, 11, 20)
CHROMIUM = "/usr/bin/chromium"
TARGETS = {
    "5000 signatories": "< 3.6 s",
    "after one more sign-on (5000)": "< 2 s",
    "cached repeat download": "< 50 ms",
    "12 signatories": "<= plain WeasyPrint x 1.15",
}

# ---------------------------------------------------------------- data

FIRST = ["Amara", "Tomás", "Zeynep", "Aoife", "Kofi", "Petra", "María José", "Jean-Luc",
         "Nadia", "Đặng Thu", "Zoë", "Radovan", "Hélène", "Björn", "Oluwaseun", "Priya",
         "Mehmet", "Ana", "Sipho", "Farida"]  # fmt: skip
LAST = ["Duvalier-Nkosi", "Álvarez Ríos", "Türkmen", "Ní Bhriain", "Asante-Boateng", "Novák",
        "Quiroga", "Ørsted", "Benali", "Hà", "Lefèvre", "Castellanos", "O’Brien",
        "Nakamura–Smith", "Okafor", "Haddad", "Kowalska", "Mensah"]  # fmt: skip
ORGS = ["Human Rights Centre", "Legal Aid Network", "Association of Families of the Disappeared",
        "Women’s Shelter Alliance", "Institute for Democracy and the Rule of Law",
        "Press Freedom Collective", "Transitional Justice Working Group", "Civic Space Watch",
        "Lawyers for Human Rights", "Youth Forum"]  # fmt: skip
PLACES = ["Valdoria", "Geneva", "Seoul", "Madrid", "Accra", "Prague", "Lagos", "Dublin",
          "the Northern Provinces", "Busan"]  # fmt: skip
HANGUL = ["김민지", "사단법인 평화와 인권", "박서연", "이준호", "최지우", "한국인권재단",
          "정의기억연대", "북한인권시민연합", "강하늘", "윤서진"]  # fmt: skip


def make_names(count: int, seed: int = 2026) -> list[str]:
    """Signatory names as a campaign gets them: people, organisations with acronyms, Hangul."""
    from letterapp.names import sort_key

    rnd = random.Random(seed)
    names: set[str] = set()
    serial = 0
    while len(names) < count:
        serial += 1
        roll = rnd.random()
        if roll < 0.50:
            name = f"{rnd.choice(FIRST)} {rnd.choice(LAST)}"
            if name in names:
                name = f"{name} ({rnd.choice(PLACES)} {serial})"
        elif roll < 0.88:
            org, place = rnd.choice(ORGS), rnd.choice(PLACES)
            acronym = "".join(w[0] for w in org.split() if w[0].isupper()) + str(serial)
            name = f"{org} {place} ({acronym})"
        elif roll < 0.97:
            name = f"{rnd.choice(HANGUL)} {serial}"
        else:
            name = (
                f"International Federation for the Protection of Human Rights Defenders "
                f"and Civic Space in {rnd.choice(PLACES)} ({serial})"
            )
        names.add(name)
    return sorted(names, key=sort_key)


# ---------------------------------------------------------------- measuring


def median(values: list[float]) -> float:
    return statistics.median(values)


def peak_rss_of(pids) -> int:
    """Largest VmHWM (peak resident set, KiB) among live processes."""
    peak = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak = max(peak, int(line.split()[1]))
        except OSError:
            pass
    return peak


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, from /proc (NaN once it has gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_process(argv: list[str], timeout: float = 600) -> tuple[float, int]:
    """Wall time and peak RSS (KiB, largest process) of a command, measured by a wrapper."""
    wrapper = (
        "import resource, subprocess, sys, time\n"
        "start = time.perf_counter()\n"
        "subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL,"
        " stderr=subprocess.DEVNULL)\n"
        "elapsed = time.perf_counter() - start\n"
        "print(elapsed, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", wrapper, *argv],
        check=True,
        capture_output=True,
        text=True,
        timeout=timeout,
    ).stdout.split()
    return float(out[0]), int(out[1])


def machine() -> str:
    import weasyprint

    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    lines = [
        f"cpus: {os.cpu_count()} ({model}), memory {memory:.0f} GiB",
        (
            f"python {platform.python_version()}, WeasyPrint {weasyprint.__version__}, "
            f"{platform.system()} {platform.release()}"
        ),
        f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}",
    ]
    if Path(CHROMIUM).exists():
        version = subprocess.run(
            [CHROMIUM, "--version"], check=False, capture_output=True, text=True
        )
        lines.append(version.stdout.strip())
    return "\n".join(lines)


# ---------------------------------------------------------------- the benchmark


def bench(sizes: list[int], runs: int) -> None:
    from letterapp import create_app, pdf, pdfcache
    from letterapp.letters import load_letter

    work = Path(tempfile.mkdtemp(prefix="bench-pdf-"))
    app = create_app(
        {
            "TESTING": True,
            "SECRET_KEY": "bench",
            "LETTERS_DIR": str(ROOT / "letters"),
            "PDF_CACHE_DIR": str(work / "pdf-cache"),
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{work / 'bench.sqlite3'}",
        }
    )
    # The HTML as a file, beside a copy of the stylesheet it links, for the anchors.
    (work / "static").mkdir()
    shutil.copy(ROOT / "letterapp" / "static" / "pdf.css", work / "static" / "pdf.css")
    print(machine())
    print(f"letter: letters/{SLUG}.md, as of {AS_OF}; {runs} runs per figure, medians\n")
    header = (
        f"{'signatories':>11} | {'letterapp':>9} | {'+1 sign-on':>10} | {'cached':>8} | "
        f"{'plain WP':>8} | {'ratio':>5} | {'chromium':>8} | {'pages':>5} | "
        f"{'peak MiB app/WP/chr':>19} | {'cpu max/sum':>11} | {'load':>9}"
    )
    print(header)
    print("-" * len(header))
    with app.app_context():
        letter = load_letter(app.config["LETTERS_DIR"], SLUG)
        for size in sizes:
            names = make_names(size + 1)
            extra = names.pop(len(names) // 2)  # the next sign-on lands mid-list
            html = pdf.letter_html(letter, names, as_of=AS_OF)
            page = work / f"letter-{size}.html"
            page.write_text(html, encoding="utf-8")

            # letterapp: fresh workers per size, so their peak memory is this size's.
            pdf.shutdown_workers()
            pdfcache.get_pdf(letter, names[:12], as_of=AS_OF)  # start and warm the workers
            workers = [p.pid for p in (pdf._workers.pool._processes or {}).values()]
            load_before = os.getloadavg()[0]
            cold, more, cached, cpu = [], [], [], []
            for _ in range(runs):
                pdfcache.clear()
                workers = [p.pid for p in (pdf._workers.pool._processes or {}).values()]
                before = [cpu_seconds(pid) for pid in workers]
                start = time.perf_counter()
                data = pdfcache.get_pdf(letter, names, as_of=AS_OF)
                cold.append(time.perf_counter() - start)
                cpu.append([cpu_seconds(pid) - b for pid, b in zip(workers, before, strict=True)])
                start = time.perf_counter()
                pdfcache.get_pdf(letter, sorted([*names, extra], key=_sort_key()), as_of=AS_OF)
                more.append(time.perf_counter() - start)
                start = time.perf_counter()
                again = pdfcache.get_pdf(letter, names, as_of=AS_OF)
                cached.append(time.perf_counter() - start)
                assert again == data
            app_peak = peak_rss_of(workers) / 1024
            cpu_max = median([max(c) for c in cpu])
            cpu_sum = median([sum(c) for c in cpu])
            pages = _page_count(data)
            (work / f"letterapp-{size}.pdf").write_bytes(data)

            # Plain WeasyPrint, whole process (import included), on the same HTML.
            plain_runs = [
                run_process(
                    [
                        sys.executable,
                        "-c",
                        (
                            "import sys; from weasyprint import HTML; "
                            "HTML(sys.argv[1]).write_pdf(sys.argv[2])"
                        ),
                        str(page),
                        str(work / f"plain-{size}.pdf"),
                    ]
                )
                for _ in range(runs)
            ]
            plain = median([t for t, _ in plain_runs])
            plain_peak = max(m for _, m in plain_runs) / 1024

            chromium, chromium_peak = float("nan"), float("nan")
            if Path(CHROMIUM).exists():
                chromium_runs = [
                    run_process(
                        [
                            CHROMIUM,
                            "--headless",
                            "--no-sandbox",
                            "--disable-gpu",
                            "--no-pdf-header-footer",
                            f"--user-data-dir={work / 'chromium'}",
                            f"--print-to-pdf={work / f'chromium-{size}.pdf'}",
                            page.as_uri(),
                        ]
                    )
                    for _ in range(runs)
                ]
                chromium = median([t for t, _ in chromium_runs])
                chromium_peak = max(m for _, m in chromium_runs) / 1024
            print(
                f"{size:>11} | {median(cold):>8.2f}s | {median(more):>9.2f}s | "
                f"{median(cached) * 1000:>6.1f}ms | {plain:>7.2f}s | "
                f"{median(cold) / plain:>5.2f} | {chromium:>7.2f}s | {pages:>5} | "
                f"{app_peak:>5.0f} / {plain_peak:>4.0f} / {chromium_peak:>4.0f} | "
                f"{cpu_max:>4.2f}/{cpu_sum:>5.2f}s | {load_before:>3.1f}-{os.getloadavg()[0]:<3.1f}",
                flush=True,
            )
    pdf.shutdown_workers()

    # A first render in a process whose workers have not started yet (e.g. after a deploy).
    with app.app_context():
        pdfcache.clear()
        start = time.perf_counter()
        pdfcache.get_pdf(letter, make_names(12), as_of=AS_OF)
        print(f"\n12 signatories with workers not yet started: {time.perf_counter() - start:.2f}s")
    pdf.shutdown_workers()
    print(f"files kept in {work}")


def _page_count(data: bytes) -> int:
    import io

    from pypdf import PdfReader

    return len(PdfReader(io.BytesIO(data)).pages)


def _sort_key():
    from letterapp.names import sort_key

    return sort_key


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--sizes", default="12,500,5000")
    args = parser.parse_args()
    bench([int(s) for s in args.sizes.split(",")], args.runs)


if __name__ == "__main__":
    main()
