"""Hostile input, table by table: each has the behaviour a user of the app expects."""

import csv
import email
import email.policy
import io
import time
from datetime import UTC, date, datetime

import pytest
import sqlalchemy as sa

from letterapp.csvfiles import MAX_ROWS, read_signatories, write_signatories
from letterapp.db import db
from letterapp.letters import LetterError, load_letter
from letterapp.markup import render_body
from letterapp.models import OutgoingMail, Signature, Status
from letterapp.pdf import render_pdf


def rows(app) -> list[Signature]:
    with app.app_context():
        return list(db.session.scalars(sa.select(Signature).order_by(Signature.id)))


# Sign-on form: refused with a message next to the field, and nothing stored.
REFUSED = [
    ("a 10 KB name", {"name": "N" * 10_000}, "name", "at most 200 characters"),
    ("a null byte", {"name": "Bad\x00Group"}, "name", "Null characters are not allowed."),
    ("RTL override", {"name": "Group\u202egnp.exe"}, "name", "Text-direction control"),
    ("RTL isolate in acronym", {"acronym": "AB\u2067C"}, "acronym", "Text-direction control"),
    ("CRLF in name", {"name": "Group\r\nBcc: x@example.org"}, "name", "U+000D is not allowed"),
    ("CRLF in email", {"email": "a@example.org\r\nBcc: b@example.org"}, "email", "not valid"),
    ("a javascript: website", {"website": "javascript:alert(1)"}, "website", "full address"),
]


@pytest.mark.parametrize(
    ("case", "change", "field", "message"), REFUSED, ids=[r[0] for r in REFUSED]
)
def test_hostile_sign_on_is_refused_clearly(app, sign, case, change, field, message):
    response = sign(**change)
    assert response.status_code == 400
    text = response.text
    error_at = text.find(f'id="{field}-error"')
    assert error_at != -1, case
    assert message in text[error_at : error_at + 300].replace("&#39;", "'")
    assert rows(app) == []


# Stored as typed, but always escaped: pages, PDF, CSV and email show the text, never run it.
SCRIPT = "<script>alert(1)</script> Watch"
JS_ACRONYM = "javascript:x"
FORMULA = '=HYPERLINK("http://evil.example","click")'


@pytest.mark.parametrize(
    ("name", "acronym"),
    [(SCRIPT, ""), ("Watch Group", JS_ACRONYM[:30]), (FORMULA, ""), ("+1 Group", "@SUM")],
)
def test_markup_and_formulas_in_names_are_inert_everywhere(
    app, client, sign, runner, tmp_path, name, acronym
):
    sign(name=name, acronym=acronym, email="w@example.org")
    runner.invoke(args=["signatures", "approve", "test-letter", "--all-pending"])
    [signature] = rows(app)
    assert signature.name == name  # accepted as typed, never silently altered
    page = client.get("/letters/test-letter/signatories").text
    assert "<script>alert" not in page
    if "<script>" in name:
        assert "&lt;script&gt;alert(1)&lt;/script&gt; Watch" in page
    out = tmp_path / "out.csv"
    runner.invoke(args=["signatures", "export", "test-letter", "-o", str(out)])
    cells = next(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8-sig"))))
    for cell in (cells["name"], cells["acronym"]):
        assert not cell.startswith(("=", "+", "-", "@"))
    with app.app_context():
        raw = db.session.scalars(sa.select(OutgoingMail)).first().raw
        letter = load_letter(app.config["LETTERS_DIR"], "test-letter")
        pdf = render_pdf(letter, [signature.display_name], as_of=date(2099, 1, 1))
    message = email.message_from_string(raw, policy=email.policy.default)
    assert message.get_content_type() == "text/plain"  # no HTML part for markup to live in
    assert name in message.get_body(("plain",)).get_content()
    assert pdf.startswith(b"%PDF")


def test_same_signer_in_other_case_space_and_unicode_forms_is_one(app, sign):
    for variant in [
        {},
        {"email": "Office@TJWG.example.org"},
        {"email": "ｏｆｆｉｃｅ@ｔｊｗｇ.example.org"},
        {"name": "transitional  justice working group"},
        {"name": "Transitional Justice Working Group\u00a0"},
    ]:
        assert sign(**variant).status_code == 302
    assert len(rows(app)) == 1


# Letters: sanitised after conversion; the PDF fetches nothing it was not allowed.
@pytest.mark.parametrize(
    "snippet",
    [
        "![secret](file:///etc/passwd)",
        '<img src="file:///etc/passwd">',
        '<link rel="attachment" href="file:///etc/passwd">',
        '<link rel="stylesheet" href="http://127.0.0.1:1/">',
        '<iframe src="http://127.0.0.1:1/"></iframe>',
        "<script>alert(1)</script>",
        '<a href="javascript:alert(1)">click</a>',
        '<p style="background: url(http://127.0.0.1:1/)">styled</p>',
    ],
)
def test_letter_markup_cannot_reach_files_or_the_network(app, write_letter, snippet):
    write_letter(replace={"We ask for an update.": f"We ask for an update. {snippet}"})
    letter = load_letter(app.config["LETTERS_DIR"], "test-letter")
    html = render_body(letter.body).html
    for bad in ("file:", "127.0.0.1", "<script", "javascript:", "<link", "<iframe", "style="):
        assert bad not in html
    with app.app_context():
        pdf = render_pdf(letter, ["A Group"], as_of=date(2099, 1, 1))
    assert b"root:" not in pdf and pdf.startswith(b"%PDF")


def test_yaml_bomb_in_front_matter_is_refused(write_letter):
    bomb = "a: &a [x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: [*b,*b,*b,*b,*b,*b]\n"
    path = write_letter(replace={"title:": bomb + "title:"})
    started = time.monotonic()
    with pytest.raises(LetterError, match="aliases"):
        load_letter(path.parent, "test-letter")
    assert time.monotonic() - started < 1


def test_footnote_referencing_itself_is_refused(write_letter):
    path = write_letter(replace={"[^4]: Id.": "[^4]: Id., see [^4]."})
    with pytest.raises(LetterError, match=r"\[\^4\] refers to itself"):
        load_letter(path.parent, "test-letter")


# CSV files: checked whole, with a clear reason.
def plan(app, text: str):
    with app.app_context():
        letter = load_letter(app.config["LETTERS_DIR"], "test-letter")
        return read_signatories(text, letter, set())


def test_csv_with_a_bom_reads_normally(app):
    result = plan(app, "\ufeffname,kind,email\nKim,individual,kim@example.org\n")
    assert result.errors == [] and [r["name"] for r in result.rows] == ["Kim"]


def test_csv_with_the_wrong_delimiter_says_so(app):
    result = plan(app, "name;kind;email\nKim;individual;kim@example.org\n")
    assert result.rows == [] and "Is the file comma-separated?" in result.errors[0]


def test_csv_with_too_many_rows_is_refused_with_a_reason(app):
    lines = ["name,kind,email"] + [
        f"Person {n},individual,p{n}@example.org" for n in range(100_000)
    ]
    started = time.monotonic()
    result = plan(app, "\n".join(lines))
    assert result.rows == []
    assert result.errors == [f"the file has 100000 rows, over the limit of {MAX_ROWS}; split it"]
    assert time.monotonic() - started < 10  # refused before checking each row


def test_csv_export_neutralises_formulas_for_every_text_cell(app):
    signature = Signature(
        id=1, letter_slug="x", kind="organization", name=FORMULA, acronym="-2", contact_name="@me",
        email="a@example.org", country="+44", website="", contact_title="=1+1", affiliation="",
        status=Status.APPROVED, signed_at=datetime(2024, 1, 1, tzinfo=UTC),
    )  # fmt: skip
    out = io.StringIO()
    write_signatories([signature], out)
    cells = next(csv.DictReader(io.StringIO(out.getvalue())))
    for column in ("name", "acronym", "contact_name", "country", "contact_title"):
        assert cells[column].startswith("'"), column


# Faults: a full disk gets a clear message, and nothing half-written is left behind.
@pytest.mark.parametrize(
    "args",
    [
        ["letter", "render", "test-letter", "-o", "/dev/full"],
        ["signatures", "export", "test-letter", "-o", "/dev/full"],
    ],
)
def test_disk_full_gives_a_clear_error(runner, args):
    result = runner.invoke(args=args)
    assert result.exit_code == 1
    assert "cannot write /dev/full: No space left on device" in result.output
