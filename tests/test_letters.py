from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from letterapp.letters import LetterError, list_letters, load_letter

from .conftest import PROJECT


def test_loads_every_key(write_letter):
    letter = load_letter(write_letter().parent, "test-letter")
    assert letter.title == "Open letter on the rights of families of the disappeared"
    assert letter.date == date(2023, 8, 11)
    assert letter.addressee[0] == "High Commissioner Amara Türk-Lindqvist"
    assert len(letter.addressee) == 3 and len(letter.attn) == 3
    assert letter.re == "The rights of families of the disappeared"
    assert letter.closing == "Sincerely,"
    assert letter.signatories_heading == "Signature organizations and individuals"
    assert letter.closes == datetime(2099, 12, 31, 23, 59, tzinfo=timezone(timedelta(hours=9)))
    assert letter.language == "en"
    assert "“right to know”" in letter.body


def test_demo_letter_is_valid_and_complete():
    letter = load_letter(PROJECT / "letters", "civic-space-2026")
    words = letter.body.split("\n[^1]:")[0].split()
    assert len(words) >= 1500
    for n in range(1, 6):
        assert f"\n## {n}. " in letter.body
    assert letter.body.count("\n[^") >= 20
    assert "Id." in letter.body and "https://" in letter.body
    assert letter.attn and len(letter.addressee) == 3


def test_changed_file_is_read_again(write_letter):
    path = write_letter()
    assert load_letter(path.parent, "test-letter").re.startswith("The rights")
    write_letter(replace={"re: The rights": "re: New subject, the rights"})
    assert load_letter(path.parent, "test-letter").re.startswith("New subject")


BAD_LETTERS = [
    ({"title: Open letter": "title: [Open letter"}, 3, "invalid YAML"),
    (
        {"title: Open letter on the rights of families of the disappeared\n": ""},
        1,
        "missing key 'title'",
    ),
    ({"re: The rights": "subject: x\nre: The rights"}, 13, "unknown key 'subject'"),
    ({"date: 2023-08-11": "date: 2023-13-45"}, 3, "bad date '2023-13-45'"),
    ({"date: 2023-08-11": "date: 11 August 2023"}, 3, "bad date"),
    (
        {"closes: 2099-12-31T23:59:00+09:00": "closes: 2099-12-31T23:59:00"},
        15,
        "needs a time-zone offset",
    ),
    ({"closes: 2099-12-31T23:59:00+09:00": "closes: soon"}, 15, "bad date-time 'soon'"),
    (
        {"See also the same report.[^4]": "See also the same report.[^4][^9]"},
        21,
        "[^9] is referenced but not defined",
    ),
    ({"[^4]: Id.": "[^4]: Id.\n[^5]: Unused."}, 33, "[^5] is defined but never referenced"),
    ({"[^4]: Id.": "[^4]: Id., as in [^4]."}, 32, "[^4] refers to itself"),
    ({"addressee:\n": "addressee: one line\nx:\n"}, 5, "'addressee' must be a list"),
    ({"closes:": "language: xx-nowhere\ncloses:"}, 15, "unknown language"),
    ({"---\ntitle": "title"}, 1, "must start with '---'"),
]


@pytest.mark.parametrize(("replace", "line", "message"), BAD_LETTERS)
def test_bad_file_reports_name_line_and_reason(write_letter, replace, line, message):
    path = write_letter(replace=replace)
    with pytest.raises(LetterError) as caught:
        load_letter(path.parent, "test-letter")
    reported = [str(p) for p in caught.value.problems]
    assert any(r.startswith(f"test-letter.md:{line}: ") and message in r for r in reported), (
        reported
    )


def test_yaml_aliases_are_refused(write_letter):
    bomb = 'a: &a ["x","x","x","x","x","x","x","x","x"]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n'
    path = write_letter(replace={"title:": bomb + "title:"})
    with pytest.raises(LetterError, match="aliases"):
        load_letter(path.parent, "test-letter")


def test_list_shows_broken_letters_as_errors(write_letter):
    write_letter("broken", replace={"date: 2023-08-11": "date: tomorrow"})
    listed = dict(list_letters(write_letter().parent))
    assert isinstance(listed["broken"], LetterError)
    assert listed["test-letter"].title.startswith("Open letter")


def test_open_until_closes(write_letter):
    letter = load_letter(write_letter().parent, "test-letter")
    assert letter.is_open(datetime(2099, 12, 31, 14, 58, tzinfo=UTC))
    assert not letter.is_open(datetime(2099, 12, 31, 15, 0, tzinfo=UTC))
