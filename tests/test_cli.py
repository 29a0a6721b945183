"""The coordinator commands, run as a coordinator runs them: `flask --app letterapp ...`."""

import csv
import io
import os
import time
from datetime import UTC, datetime, timedelta, timezone

import pytest
from pypdf import PdfReader

from letterapp import signatures as store
from letterapp.db import db
from letterapp.fonts import missing_glyphs
from letterapp.models import Status

from .conftest import LETTER, undrawable_character

SLUG = "test-letter"
KST = timezone(timedelta(hours=9))  # the test letter's time zone (its `closes` offset)
BOM = "\ufeff"
HEADER = "name,kind,email,acronym,contact_name,country,signed_at"
EXPORT_HEADER = (
    "id,status,name,kind,email,acronym,contact_name,country,signed_at,contact_title,website,"
    "affiliation"
)
UNDRAWABLE = "\U0010fffd"  # private use: no installed font draws it


def invoke(runner, *args):
    return runner.invoke(args=[str(a) for a in args])


def rows(app, slug: str = SLUG, status: Status | None = None) -> list[dict]:
    """What the database holds for a letter, read as a coordinator would check it."""
    with app.app_context():
        return [
            {
                "id": s.id,
                "status": s.status.value,
                "name": s.name,
                "kind": s.kind.value,
                "email": s.email,
                "acronym": s.acronym,
                "contact_name": s.contact_name,
                "country": s.country,
                "signed_at": s.signed_at,
            }
            for s in store.signatures(slug, status)
        ]


def write_csv(path, text: str, encoding: str = "utf-8"):
    path.write_bytes(text.encode(encoding))
    return path


def csv_text(*records: tuple, header: str = HEADER) -> str:
    """A CSV file as spreadsheet programs write it (quoted where needed, CRLF)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header.split(","))
    writer.writerows(records)
    return out.getvalue()


def sign_as(sign, name: str, email: str, **fields):
    """Sign on through the public form as an individual (unless told otherwise)."""
    fields = {"kind": "individual", "acronym": "", "contact_name": "", **fields}
    response = sign(name=name, email=email, **fields)
    assert response.status_code == 302, response.text
    return response


def pdf_pages(path) -> list:
    return PdfReader(path).pages


def pdf_text(path) -> str:
    return "\n".join(page.extract_text() for page in pdf_pages(path))


# ---------------------------------------------------------------- letter list


def test_letter_list_shows_open_closed_and_broken_letters(runner, sign, write_letter):
    write_letter("closed-letter", replace={"closes: 2099": "closes: 2001"})
    write_letter(
        "broken-letter",
        replace={"date: 2023-08-11": "date: tomorrow", "[^4]: Id.": "[^4]: Id.\n[^5]: Unused."},
    )
    sign_as(sign, "Kim Min-ji", "minji@example.org")
    sign_as(sign, "Pending Person", "pending@example.org")
    assert invoke(runner, "signatures", "approve", SLUG, "1").exit_code == 0

    result = invoke(runner, "letter", "list")

    assert result.exit_code == 0, result.output
    title = "Open letter on the rights of families of the disappeared"
    assert result.stdout.splitlines() == [
        "broken-letter\tERROR (2 problem(s): run 'letter check broken-letter')",
        f"closed-letter\tclosed\t0 approved\t{title}",
        f"test-letter\topen\t1 approved\t{title}",
    ]


# ---------------------------------------------------------------- letter check


def test_letter_check_ok_prints_word_count_and_signatories(runner, sign):
    sign_as(sign, "김민지", "minji@example.org")
    sign_as(sign, "Pending Person", "pending@example.org")
    assert invoke(runner, "signatures", "approve", SLUG, "1").exit_code == 0
    body_words = len(LETTER.split("---\n", 2)[2].split())

    result = invoke(runner, "letter", "check", SLUG)

    assert result.exit_code == 0, result.output
    assert result.stdout == f"test-letter: ok ({body_words} words, 1 approved signatories)\n"
    assert result.stderr == ""


BROKEN_LETTERS = [
    pytest.param(
        {"date: 2023-08-11": "date: 2023-13-45"},
        ["test-letter.md:3: bad date '2023-13-45': write it as YYYY-MM-DD"],
        id="bad-date",
    ),
    pytest.param(
        {"re: The rights": "subject: x\nre: The rights"},
        ["test-letter.md:13: unknown key 'subject'"],
        id="unknown-key",
    ),
    pytest.param(
        {
            "closes: 2099-12-31T23:59:00+09:00": "closes: 2099-12-31T23:59:00",
            "See also the same report.[^4]": "See also the same report.[^4][^9]",
        },
        [
            "test-letter.md:15: 'closes' needs a time-zone offset",
            "test-letter.md:21: footnote [^9] is referenced but not defined",
        ],
        id="two-problems-in-line-order",
    ),
    pytest.param(
        {"title: Open letter": "title: [Open letter"},
        ["test-letter.md:3: invalid YAML"],
        id="invalid-yaml",
    ),
]


@pytest.mark.parametrize(("replace", "expected"), BROKEN_LETTERS)
def test_letter_check_reports_each_problem_with_file_and_line(
    runner, write_letter, replace, expected
):
    write_letter(replace=replace)

    result = invoke(runner, "letter", "check", SLUG)

    assert result.exit_code == 1
    assert result.stdout == ""
    problems = result.stderr.splitlines()[:-1]
    assert len(problems) == len(expected), result.stderr
    for problem, start in zip(problems, expected, strict=True):
        assert problem.startswith(start), problem
    assert result.stderr.splitlines()[-1] == (
        f"Error: test-letter: {len(expected)} problem(s) in the letter file"
    )


def add_approved(app, name: str, email: str = "direct@example.org"):
    """Store an approved sign-on directly: the form refuses a name the fonts cannot draw, but
    one recorded before a font was removed from the server is still in the database."""
    signer = {
        "kind": "individual",
        "name": name,
        "acronym": "",
        "contact_name": "",
        "email": email,
        "country": "",
    }
    with app.app_context():
        db.session.add(
            store.new_signature(
                SLUG, signer, status=Status.APPROVED, signed_at=datetime(2023, 8, 1, tzinfo=UTC)
            )
        )
        db.session.commit()


def test_letter_check_and_render_refuse_a_name_no_font_can_draw(app, runner, tmp_path):
    assert missing_glyphs(UNDRAWABLE)
    name = f"Group {UNDRAWABLE}"
    add_approved(app, name)
    output = tmp_path / "letter.pdf"

    check = invoke(runner, "letter", "check", SLUG)
    render = invoke(runner, "letter", "render", SLUG, "-o", output)

    assert check.exit_code == 1
    assert check.stderr.splitlines() == [
        f"test-letter.md: {name!r}: no installed font can draw {UNDRAWABLE} (U+10FFFD)",
        "Error: test-letter: 1 problem(s)",
    ]
    assert render.exit_code == 1
    assert "no installed font can draw" in render.stderr and "U+10FFFD" in render.stderr
    assert not output.exists()


def test_letter_check_works_for_a_letter_west_of_utc(runner, write_letter):
    write_letter(replace={"closes: 2099-12-31T23:59:00+09:00": "closes: 2099-12-31T23:59:00-05:00"})

    result = invoke(runner, "letter", "check", SLUG)

    assert result.exit_code == 0, repr(result.exception)
    assert result.stdout.startswith("test-letter: ok (")


def test_letter_check_reports_undrawable_text_in_the_subject_line(runner, write_letter):
    char = undrawable_character()  # an emoji or a rare script's letter
    write_letter(replace={"re: The rights": f"re: The {char} rights"})

    result = invoke(runner, "letter", "check", SLUG)

    assert result.exit_code == 1
    assert f"U+{ord(char):04X}" in result.stderr


# ---------------------------------------------------------------- letter render


def import_rows(runner, tmp_path, *records):
    path = write_csv(tmp_path / "signers.csv", csv_text(*records))
    result = invoke(runner, "signatures", "import", SLUG, path)
    assert result.exit_code == 0, result.output
    return result


@pytest.mark.parametrize(
    ("options", "size"),
    [
        pytest.param([], (595, 842), id="default-a4"),
        pytest.param(["--paper", "a4"], (595, 842), id="a4"),
        pytest.param(["--paper", "letter"], (612, 792), id="us-letter"),
    ],
)
def test_letter_render_writes_a_pdf_on_the_chosen_paper(runner, tmp_path, options, size):
    output = tmp_path / "letter.pdf"

    result = invoke(runner, "letter", "render", SLUG, "-o", output, *options)

    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"wrote {output} (0 signatories as of ")
    assert output.read_bytes().startswith(b"%PDF")
    for page in pdf_pages(output):
        box = page.mediabox
        assert (round(float(box.width)), round(float(box.height))) == size


def test_letter_render_as_of_lists_who_signed_by_that_day_in_letter_time(runner, tmp_path):
    import_rows(
        runner,
        tmp_path,
        # Before the end of 10 August 2023 in the letter's time zone (+09:00):
        ("김민지", "individual", "minji@example.org", "", "", "", "2023-08-10"),
        ("Asociación Pro Derechos Humanos", "organization", "info@aprodeh.example.org",
         "APRODEH", "José Núñez", "Peru", "2023-08-10T23:30:00+09:00"),
        # 11 August 08:30 in Seoul, though still 10 August in UTC:
        ("Late Group", "organization", "late@example.org", "", "Ana Late", "", "2023-08-10T23:30:00+00:00"),
    )  # fmt: skip
    output = tmp_path / "as-of.pdf"

    result = invoke(runner, "letter", "render", SLUG, "-o", output, "--as-of", "2023-08-10")

    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"wrote {output} (2 signatories as of 2023-08-10, ")
    text = pdf_text(output)
    assert "Signature organizations and individuals (as of August 10, 2023)" in text
    assert "Asociación Pro Derechos Humanos (APRODEH)" in text
    assert "김민지" in text
    assert "Late Group" not in text


# Pages of text after the notes' calls, so that the letter runs over several pages.
FILLER = "\n\n".join(
    f"Paragraph {n}: the families have waited for an answer for many years, and they"
    " ask again, in writing, for the information that the authorities hold."
    for n in range(80)
)


@pytest.mark.parametrize("notes", ["endnotes", "footnotes"])
def test_letter_render_notes_style(runner, write_letter, tmp_path, notes):
    write_letter(replace={"## 2. Way forward": f"{FILLER}\n\n## 2. Way forward"})
    output = tmp_path / f"{notes}.pdf"

    result = invoke(runner, "letter", "render", SLUG, "-o", output, "--notes", notes)

    assert result.exit_code == 0, result.output
    pages = [page.extract_text() for page in pdf_pages(output)]
    heading = "Signature organizations and individuals (as of"
    first_note = "Report of the commission of inquiry, A/HRC/25/CRP.1"
    [signatories_page] = [n for n, text in enumerate(pages) if heading in text]
    assert signatories_page >= 2
    [note_page] = [n for n, text in enumerate(pages) if first_note in text]
    if notes == "footnotes":  # at the foot of the page that calls it
        assert note_page == 0
    else:  # after the signatories
        assert note_page == signatories_page
        assert pages[note_page].index(first_note) > pages[note_page].index(heading)


AS_OF_HINT = "Invalid value for '--as-of': write it as YYYY-MM-DD"


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        pytest.param("--as-of", "2023-13-01", AS_OF_HINT, id="as-of-month-13"),
        pytest.param("--as-of", "10 August 2023", AS_OF_HINT, id="as-of-in-words"),
        pytest.param("--as-of", "2023/08/10", AS_OF_HINT, id="as-of-slashes"),
        pytest.param("--paper", "legal", "Invalid value for '--paper'", id="paper-legal"),
        pytest.param("--notes", "sidenotes", "Invalid value for '--notes'", id="notes-sidenotes"),
    ],
)
def test_letter_render_bad_option_is_a_usage_error(runner, tmp_path, option, value, message):
    output = tmp_path / "letter.pdf"

    result = invoke(runner, "letter", "render", SLUG, "-o", output, option, value)

    assert result.exit_code == 2
    assert message in result.stderr
    assert not output.exists()


def test_letter_render_of_a_broken_letter_lists_its_problems(runner, write_letter, tmp_path):
    write_letter(replace={"date: 2023-08-11": "date: 2023-13-45"})
    output = tmp_path / "letter.pdf"

    result = invoke(runner, "letter", "render", SLUG, "-o", output)

    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "test-letter.md:3: bad date '2023-13-45': write it as YYYY-MM-DD",
        "Error: test-letter: 1 problem(s) in the letter file",
    ]
    assert not output.exists()


@pytest.fixture
def server_time_zone():
    """Run the app as on a server whose clock is set to another time zone."""
    before = os.environ.get("TZ")

    def set_zone(posix_tz: str) -> None:
        os.environ["TZ"] = posix_tz
        time.tzset()

    yield set_zone
    if before is None:
        os.environ.pop("TZ", None)
    else:
        os.environ["TZ"] = before
    time.tzset()


def test_letter_render_default_as_of_is_today_in_the_letters_time_zone(
    runner, client, sign, write_letter, tmp_path, server_time_zone
):
    # Kiribati (+14:00) letter, server clock at UTC-12: the dates always differ.
    write_letter(replace={"closes: 2099-12-31T23:59:00+09:00": "closes: 2099-12-31T23:59:00+14:00"})
    server_time_zone("AOE+12")
    sign_as(sign, "Kim Min-ji", "minji@example.org")
    invoke(runner, "signatures", "approve", SLUG, "--all-pending")
    web = client.get(f"/letters/{SLUG}.pdf").headers["Content-Disposition"]
    today_in_letter = datetime.now(timezone(timedelta(hours=14))).date().isoformat()
    assert f"{SLUG}-{today_in_letter}.pdf" in web
    output = tmp_path / "letter.pdf"

    result = invoke(runner, "letter", "render", SLUG, "-o", output)

    assert result.exit_code == 0, result.output
    assert f"(1 signatories as of {today_in_letter}, " in result.stdout


@pytest.mark.parametrize(
    "command",
    [("letter", "render", SLUG), ("signatures", "export", SLUG)],
    ids=["render", "export"],
)
def test_output_into_a_missing_folder_is_a_clear_error(runner, tmp_path, command):
    output = tmp_path / "no-such-folder" / "out.file"

    result = invoke(runner, *command, "-o", output)

    assert result.exit_code in (1, 2)
    assert "Error" in result.stderr


# ---------------------------------------------------------------- signatures list


@pytest.fixture
def three_sign_ons(runner, sign):
    """1 stays pending, 2 is approved, 3 is rejected."""
    sign()  # Transitional Justice Working Group (TJWG), organisation
    sign_as(sign, "김민지", "minji@example.org")
    sign_as(sign, "Ørsted Fondet", "kontakt@orsted.example.dk", kind="organization",
            contact_name="Jens Ørsted")  # fmt: skip
    assert invoke(runner, "signatures", "approve", SLUG, "2").exit_code == 0
    assert invoke(runner, "signatures", "reject", SLUG, "3").exit_code == 0


@pytest.mark.parametrize(
    ("options", "ids"),
    [
        pytest.param([], [1, 2, 3], id="all"),
        pytest.param(["--status", "pending"], [1], id="pending"),
        pytest.param(["--status", "approved"], [2], id="approved"),
        pytest.param(["--status", "rejected"], [3], id="rejected"),
    ],
)
def test_signatures_list_columns(app, runner, three_sign_ons, options, ids):
    signed_at = {r["id"]: r["signed_at"].isoformat() for r in rows(app)}
    lines = {
        1: f"1\tpending\tTransitional Justice Working Group (TJWG)\torganization"
        f"\toffice@tjwg.example.org\t{signed_at[1]}",
        2: f"2\tapproved\t김민지\tindividual\tminji@example.org\t{signed_at[2]}",
        3: f"3\trejected\tØrsted Fondet\torganization\tkontakt@orsted.example.dk\t{signed_at[3]}",
    }

    result = invoke(runner, "signatures", "list", SLUG, *options)

    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [lines[i] for i in ids]
    assert all(s.endswith("+00:00") for s in signed_at.values())


def test_signatures_list_refuses_an_unknown_status(runner):
    result = invoke(runner, "signatures", "list", SLUG, "--status", "deleted")

    assert result.exit_code == 2
    assert "Invalid value for '--status'" in result.stderr


def test_signatures_list_works_on_a_broken_letter(runner, sign, write_letter):
    sign()
    write_letter(replace={"date: 2023-08-11": "date: 2023-13-45"})

    result = invoke(runner, "signatures", "list", SLUG)

    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("1\tpending\tTransitional Justice Working Group (TJWG)\t")


# ---------------------------------------------------------------- approve and reject


def statuses(app) -> dict[int, str]:
    return {r["id"]: r["status"] for r in rows(app)}


def test_approve_by_id(app, runner, sign):
    for n in range(3):
        sign_as(sign, f"Person {n}", f"p{n}@example.org")

    result = invoke(runner, "signatures", "approve", SLUG, "1", "3")

    assert result.exit_code == 0, result.output
    assert result.stdout == "approved 2 sign-on(s)\n"
    assert statuses(app) == {1: "approved", 2: "pending", 3: "approved"}


def test_approve_all_pending_leaves_rejected_ones(app, runner, sign):
    for n in range(3):
        sign_as(sign, f"Person {n}", f"p{n}@example.org")
    invoke(runner, "signatures", "reject", SLUG, "2")

    result = invoke(runner, "signatures", "approve", SLUG, "--all-pending")

    assert result.exit_code == 0, result.output
    assert result.stdout == "approved 2 sign-on(s)\n"
    assert statuses(app) == {1: "approved", 2: "rejected", 3: "approved"}


def test_approve_all_pending_with_none_pending(app, runner):
    result = invoke(runner, "signatures", "approve", SLUG, "--all-pending")

    assert result.exit_code == 0, result.output
    assert result.stdout == "approved 0 sign-on(s)\n"


def test_reject_by_id(app, runner, sign):
    sign_as(sign, "Person A", "a@example.org")
    sign_as(sign, "Person B", "b@example.org")
    invoke(runner, "signatures", "approve", SLUG, "--all-pending")

    result = invoke(runner, "signatures", "reject", SLUG, "2")

    assert result.exit_code == 0, result.output
    assert result.stdout == "rejected 1 sign-on(s)\n"
    assert statuses(app) == {1: "approved", 2: "rejected"}
    assert "\t1 approved\t" in invoke(runner, "letter", "list").stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(
            ["approve", SLUG], "give sign-on ids, --all-pending or --all-confirmed", id="neither"
        ),
        pytest.param(
            ["approve", SLUG, "1", "--all-pending"],
            "give sign-on ids, --all-pending or --all-confirmed",
            id="both",
        ),
        pytest.param(["approve", SLUG, "one"], "'one' is not a valid integer", id="not-a-number"),
        pytest.param(["reject", SLUG], "Missing argument 'IDS...'", id="reject-without-ids"),
    ],
)
def test_moderation_usage_errors_change_nothing(app, runner, sign, args, message):
    sign_as(sign, "Person A", "a@example.org")

    result = invoke(runner, "signatures", *args)

    assert result.exit_code == 2
    assert message in result.stderr
    assert statuses(app) == {1: "pending"}


@pytest.mark.parametrize("command", ["approve", "reject"])
@pytest.mark.parametrize(
    ("ids", "unknown"),
    [(["1", "99"], "99"), (["98", "1", "99"], "98, 99"), (["3"], "3")],
    ids=["one-unknown", "two-unknown", "id-of-another-letter"],
)
def test_moderating_an_unknown_id_changes_nothing(
    app, runner, sign, write_letter, command, ids, unknown
):
    write_letter("other-letter")
    sign_as(sign, "Person A", "a@example.org")
    sign_as(sign, "Person B", "b@example.org")
    sign_as(sign, "Person C", "c@example.org", slug="other-letter")

    result = invoke(runner, "signatures", command, SLUG, *ids)

    assert result.exit_code == 1
    assert result.stderr == f"Error: no sign-on with id {unknown} on {SLUG}; nothing changed\n"
    assert statuses(app) == {1: "pending", 2: "pending"}
    assert [r["status"] for r in rows(app, "other-letter")] == ["pending"]


# ---------------------------------------------------------------- import

GOOD_ROWS = [
    ("북한인권시민연합", "organization", "nkhr@example.or.kr", "NKHR", "이영희", "South Korea",
     "2023-08-01"),
    ("Asociación Pro Derechos Humanos", "organization", "info@aprodeh.example.org", "APRODEH",
     "José Núñez", "Perú", "2023-08-02T10:30:00+02:00"),
    ("김민지", "individual", "minji@example.org", "", "", "", "2023-08-03T09:00:00"),
    ("Zoë Ørsted-Ågren", "individual", "zoe@example.dk", "", "", "Danmark", ""),
]  # fmt: skip


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig"], ids=["plain", "with-bom"])
def test_import_adds_approved_sign_ons_with_their_dates(app, runner, tmp_path, encoding):
    path = write_csv(tmp_path / "signers.csv", csv_text(*GOOD_ROWS), encoding)
    before = datetime.now(UTC)

    result = invoke(runner, "signatures", "import", SLUG, path)

    assert result.exit_code == 0, result.output
    assert result.stdout == "imported 4 sign-on(s); skipped 0 duplicate(s)\n"
    stored = rows(app)
    assert [(r["status"], r["name"], r["kind"], r["acronym"], r["contact_name"]) for r in stored] == [
        ("approved", "북한인권시민연합", "organization", "NKHR", "이영희"),
        ("approved", "Asociación Pro Derechos Humanos", "organization", "APRODEH", "José Núñez"),
        ("approved", "김민지", "individual", "", ""),
        ("approved", "Zoë Ørsted-Ågren", "individual", "", ""),
    ]  # fmt: skip
    assert [r["email"] for r in stored] == [g[2] for g in GOOD_ROWS]
    assert [r["country"] for r in stored] == ["South Korea", "Perú", "", "Danmark"]
    # A date is midnight, and a date-time without offset is, in the letter's time zone.
    assert stored[0]["signed_at"] == datetime(2023, 8, 1, tzinfo=KST)
    assert stored[1]["signed_at"] == datetime(2023, 8, 2, 8, 30, tzinfo=UTC)
    assert stored[2]["signed_at"] == datetime(2023, 8, 3, tzinfo=UTC)
    assert before <= stored[3]["signed_at"] <= datetime.now(UTC)  # no date: now
    listed = invoke(runner, "signatures", "list", SLUG, "--status", "approved").stdout
    assert (
        "\t북한인권시민연합 (NKHR)\torganization\tnkhr@example.or.kr\t2023-07-31T15:00:00+00:00"
        in listed
    )
    assert "test-letter\topen\t4 approved\t" in invoke(runner, "letter", "list").stdout


def test_import_normalises_names_like_the_sign_on_form(app, runner, tmp_path):
    decomposed = "Jose\u0301  Nu\u0301n\u0303ez "  # NFD accents, doubled and trailing spaces
    import_rows(runner, tmp_path, (decomposed, "individual", "JOSE@Example.ORG", "", "", "", ""))

    [row] = rows(app)
    assert row["name"] == "José Núñez"
    assert row["email"] == "JOSE@example.org"


def test_import_of_a_bad_file_reports_every_bad_row_and_imports_nothing(app, runner, tmp_path):
    path = write_csv(
        tmp_path / "signers.csv",
        csv_text(
            ("Good Group", "organization", "good@example.org", "", "Ana Good", "", ""),  # line 2
            ("Bad Email", "individual", "not-an-address", "", "", "", ""),  # line 3
            ("R2-D2", "robot", "r2@example.org", "", "", "", ""),  # line 4
            ("Late Person", "individual", "late@example.org", "", "", "", "next week"),  # 5
            ("Another Good", "individual", "another@example.org", "", "", "", ""),  # line 6
            ("Solo Person", "individual", "solo@example.org", "SP", "", "", "2023-02-30"),  # 7
        ),
    )

    result = invoke(runner, "signatures", "import", SLUG, path)

    assert result.exit_code == 1
    assert result.stdout == ""
    errors = result.stderr.splitlines()
    assert [e.split(": ", 3)[:3] for e in errors[:-1]] == [
        [str(path), "line 3", "email"],
        [str(path), "line 4", "kind"],
        [str(path), "line 5", "signed_at"],
        [str(path), "line 7", "acronym"],
        [str(path), "line 7", "signed_at"],
    ]
    assert "This email address is not valid" in errors[0]
    assert "Not a valid choice" in errors[1]
    assert "'next week' is not an ISO date or date-time" in errors[2]
    assert "Only organisations have an acronym" in errors[3]
    assert "'2023-02-30' is not an ISO date or date-time" in errors[4]
    assert errors[-1].startswith("Error: ") and errors[-1].endswith("; nothing was imported")
    assert rows(app) == []


def test_import_counts_bad_rows_not_problems(app, runner, tmp_path):
    path = write_csv(
        tmp_path / "signers.csv",
        csv_text(("R2-D2", "robot", "not-an-address", "", "", "", "")),
    )

    result = invoke(runner, "signatures", "import", SLUG, path)

    assert result.exit_code == 1
    assert len(result.stderr.splitlines()) == 3  # two problems on line 2, and the summary
    assert result.stderr.splitlines()[-1] == "Error: 1 bad row(s); nothing was imported"


def test_import_reports_a_signed_at_out_of_range(app, runner, tmp_path):
    path = write_csv(
        tmp_path / "signers.csv",
        csv_text(("Kim Min-ji", "individual", "minji@example.org", "", "", "", "9999-12-31T23:00:00-05:00")),
    )  # fmt: skip

    result = invoke(runner, "signatures", "import", SLUG, path)

    assert result.exit_code == 1
    assert f"{path}: line 2: signed_at" in result.stderr
    assert rows(app) == []


def test_import_reports_a_row_with_more_cells_than_columns(app, runner, tmp_path):
    path = write_csv(
        tmp_path / "signers.csv",
        "name,kind,email\r\nGood Person,individual,good@example.org\r\n"
        "Extra Person,individual,extra@example.org,surplus\r\n",
    )

    result = invoke(runner, "signatures", "import", SLUG, path)

    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"{path}: line 3: more cells than columns",
        "Error: 1 bad row(s); nothing was imported",
    ]
    assert rows(app) == []


OPTIONAL = "acronym,contact_name,country,signed_at,contact_title,website,affiliation"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        pytest.param(
            "name;kind;email\r\nKim Min-ji;individual;minji@example.org\r\n",
            "missing column(s) name, kind, email; unknown column(s) name;kind;email. The header must"
            f" name the columns name,kind,email (optional: {OPTIONAL}). Is the file"
            " comma-separated?",
            id="semicolons",
        ),
        pytest.param(
            "name,kind,email,phone\r\nKim Min-ji,individual,minji@example.org,+82 10\r\n",
            "unknown column(s) phone. The header must name the columns name,kind,email"
            f" (optional: {OPTIONAL}).",
            id="unknown-column",
        ),
        pytest.param(
            "name,kind\r\nKim Min-ji,individual\r\n",
            "missing column(s) email. The header must name the columns name,kind,email"
            f" (optional: {OPTIONAL}).",
            id="missing-required-column",
        ),
        pytest.param(
            "",
            "missing column(s) name, kind, email. The header must name the columns"
            f" name,kind,email (optional: {OPTIONAL}).",
            id="empty-file",
        ),
    ],
)
def test_import_refuses_a_bad_header(app, runner, tmp_path, text, problem):
    path = write_csv(tmp_path / "signers.csv", text)

    result = invoke(runner, "signatures", "import", SLUG, path)

    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"{path}: line 1: {problem}",
        "Error: 1 bad row(s); nothing was imported",
    ]
    assert rows(app) == []


def test_import_refuses_a_file_that_is_not_utf8(app, runner, tmp_path):
    path = write_csv(
        tmp_path / "signers.csv", "name,kind,email\r\nJosé Núñez,individual,jose@example.org\r\n",
        encoding="cp1252",
    )  # fmt: skip

    result = invoke(runner, "signatures", "import", SLUG, path)

    assert result.exit_code == 1
    assert result.stderr == f"Error: {path} is not UTF-8 text; save it as CSV UTF-8\n"
    assert rows(app) == []


def test_import_of_a_missing_file_is_a_usage_error(runner, tmp_path):
    result = invoke(runner, "signatures", "import", SLUG, tmp_path / "nope.csv")

    assert result.exit_code == 2
    assert "does not exist" in result.stderr


def test_import_skips_and_counts_duplicates(app, runner, sign, tmp_path):
    sign()  # Transitional Justice Working Group, office@tjwg.example.org: pending
    sign_as(sign, "Rejected Person", "rejected@example.org")
    invoke(runner, "signatures", "reject", SLUG, "2")
    path = write_csv(
        tmp_path / "signers.csv",
        csv_text(
            # the same signer as the form's, written differently
            ("transitional  justice WORKING group", "organization", "OFFICE@TJWG.EXAMPLE.ORG",
             "TJWG", "Lee Young-hee", "", ""),
            ("Rejected Person", "individual", "rejected@example.org", "", "", "", ""),
            ("김민지", "individual", "minji@example.org", "", "", "", ""),
            ("김민지", "individual", "Minji@Example.org", "", "", "", ""),  # twice in the file
            ("김민지", "individual", "other@example.org", "", "", "", ""),  # another email: new
        ),
    )  # fmt: skip

    result = invoke(runner, "signatures", "import", SLUG, path)

    assert result.exit_code == 0, result.output
    assert result.stdout == "imported 2 sign-on(s); skipped 3 duplicate(s)\n"
    assert [(r["name"], r["email"], r["status"]) for r in rows(app)] == [
        ("Transitional Justice Working Group", "office@tjwg.example.org", "pending"),
        ("Rejected Person", "rejected@example.org", "rejected"),
        ("김민지", "minji@example.org", "approved"),
        ("김민지", "other@example.org", "approved"),
    ]

    again = invoke(runner, "signatures", "import", SLUG, path)

    assert again.stdout == "imported 0 sign-on(s); skipped 5 duplicate(s)\n"
    assert len(rows(app)) == 4


def test_import_into_a_broken_letter_is_refused(app, runner, write_letter, tmp_path):
    write_letter(replace={"date: 2023-08-11": "date: 2023-13-45"})
    path = write_csv(tmp_path / "signers.csv", csv_text(GOOD_ROWS[0]))

    result = invoke(runner, "signatures", "import", SLUG, path)

    assert result.exit_code == 1
    assert result.stderr.splitlines()[0].startswith("test-letter.md:3: bad date")
    assert rows(app) == []


# ---------------------------------------------------------------- export

FORMULA_NAMES = ['=HYPERLINK("http://x","y")', "+1 Group", "@SUM(1)", "-2 Group"]


def read_export(path) -> list[dict]:
    text = path.read_bytes().decode("utf-8")
    assert text.startswith(BOM)
    return list(csv.DictReader(io.StringIO(text.removeprefix(BOM), newline="")))


def test_export_writes_approved_sign_ons_as_utf8_with_bom(app, runner, sign, tmp_path):
    sign_as(sign, "Pending Person", "pending@example.org")
    import_rows(runner, tmp_path, *GOOD_ROWS[:3])
    sign_as(sign, "Rejected Person", "rejected@example.org")
    invoke(runner, "signatures", "reject", SLUG, "5")
    output = tmp_path / "export.csv"

    result = invoke(runner, "signatures", "export", SLUG, "-o", output)

    assert result.exit_code == 0, result.output
    assert result.stdout == f"wrote {output} (3 approved sign-ons)\n"
    data = output.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf" + EXPORT_HEADER.encode() + b"\r\n")
    exported = read_export(output)
    assert [(r["id"], r["status"], r["name"], r["acronym"]) for r in exported] == [
        ("2", "approved", "북한인권시민연합", "NKHR"),
        ("3", "approved", "Asociación Pro Derechos Humanos", "APRODEH"),
        ("4", "approved", "김민지", ""),
    ]
    assert exported[0] == {
        "id": "2",
        "status": "approved",
        "name": "북한인권시민연합",
        "kind": "organization",
        "email": "nkhr@example.or.kr",
        "acronym": "NKHR",
        "contact_name": "이영희",
        "country": "South Korea",
        "signed_at": "2023-07-31T15:00:00+00:00",
        "contact_title": "",
        "website": "",
        "affiliation": "",
    }
    assert "북한인권시민연합" in data.decode("utf-8")


def test_export_with_no_approved_sign_ons_writes_the_header(runner, sign, tmp_path):
    sign()
    output = tmp_path / "export.csv"

    result = invoke(runner, "signatures", "export", SLUG, "-o", output)

    assert result.exit_code == 0, result.output
    assert result.stdout == f"wrote {output} (0 approved sign-ons)\n"
    assert output.read_bytes() == (BOM + EXPORT_HEADER + "\r\n").encode("utf-8")


@pytest.mark.parametrize("name", FORMULA_NAMES)
def test_export_neutralises_cells_a_spreadsheet_would_run(runner, sign, tmp_path, name):
    sign(name=name, acronym="", contact_name="+82 10 1234 5678")
    invoke(runner, "signatures", "approve", SLUG, "--all-pending")
    output = tmp_path / "export.csv"

    assert invoke(runner, "signatures", "export", SLUG, "-o", output).exit_code == 0

    [row] = read_export(output)
    assert row["name"] == "'" + name
    assert row["contact_name"] == "'+82 10 1234 5678"
    assert row["email"] == "office@tjwg.example.org"
    assert row["signed_at"][0].isdigit()


def test_exported_file_imports_into_another_letter_unchanged(
    app, runner, sign, write_letter, tmp_path
):
    write_letter("other-letter")
    import_rows(runner, tmp_path, *GOOD_ROWS)
    for n, name in enumerate([*FORMULA_NAMES, "'t Hooft Foundation"]):
        sign_as(sign, name, f"formula{n}@example.org", kind="organization",
                contact_name="-Ana-", country="=Nowhere")  # fmt: skip
    sign_as(sign, "Pending Person", "pending@example.org")
    invoke(runner, "signatures", "approve", SLUG, *range(5, 10))
    output = tmp_path / "export.csv"
    assert invoke(runner, "signatures", "export", SLUG, "-o", output).exit_code == 0

    result = invoke(runner, "signatures", "import", "other-letter", output)

    assert result.exit_code == 0, result.output
    assert result.stdout == "imported 9 sign-on(s); skipped 0 duplicate(s)\n"

    def fields(r):
        return {k: v for k, v in r.items() if k not in ("id",)}

    original = [fields(r) for r in rows(app, SLUG, Status.APPROVED)]
    copied = [fields(r) for r in rows(app, "other-letter")]
    assert copied == original
    assert {r["name"] for r in copied} >= {*FORMULA_NAMES, "'t Hooft Foundation", "김민지"}
    assert {r["contact_name"] for r in copied[4:]} == {"-Ana-"}
    assert {r["country"] for r in copied[4:]} == {"=Nowhere"}

    again = invoke(runner, "signatures", "import", "other-letter", output)

    assert again.stdout == "imported 0 sign-on(s); skipped 9 duplicate(s)\n"


def test_a_name_starting_with_an_apostrophe_survives_export_and_import(
    app, runner, sign, write_letter, tmp_path
):
    write_letter("other-letter")
    sign_as(sign, "'@risk' Network", "risk@example.org")
    invoke(runner, "signatures", "approve", SLUG, "1")
    output = tmp_path / "export.csv"
    invoke(runner, "signatures", "export", SLUG, "-o", output)

    result = invoke(runner, "signatures", "import", "other-letter", output)

    assert result.exit_code == 0, result.output
    assert [r["name"] for r in rows(app, "other-letter")] == ["'@risk' Network"]


# ---------------------------------------------------------------- a letter that does not exist


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["letter", "check", "{slug}"], id="check"),
        pytest.param(["letter", "render", "{slug}", "-o", "{out}"], id="render"),
        pytest.param(["signatures", "list", "{slug}"], id="list"),
        pytest.param(["signatures", "approve", "{slug}", "1"], id="approve"),
        pytest.param(["signatures", "approve", "{slug}", "--all-pending"], id="approve-all"),
        pytest.param(["signatures", "reject", "{slug}", "1"], id="reject"),
        pytest.param(["signatures", "import", "{slug}", "{csv}"], id="import"),
        pytest.param(["signatures", "export", "{slug}", "-o", "{out}"], id="export"),
    ],
)
@pytest.mark.parametrize("slug", ["no-such-letter", "Test-Letter", "../letters/test-letter"])
def test_a_missing_letter_is_a_clear_error(app, runner, sign, tmp_path, args, slug):
    sign()
    good_csv = write_csv(tmp_path / "signers.csv", csv_text(GOOD_ROWS[0]))
    output = tmp_path / "out.file"
    filled = [a.format(slug=slug, out=output, csv=good_csv) for a in args]

    result = invoke(runner, *filled)

    assert result.exit_code == 1
    assert result.stderr == f"Error: no letter {slug!r} in {app.config['LETTERS_DIR']}\n"
    assert not output.exists()
    assert statuses(app) == {1: "pending"}
