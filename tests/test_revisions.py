"""Drafting: atomic saves, revisions from the browser and from disk, and re-confirmation."""

import email
import email.policy
import re
import subprocess
import sys
import textwrap

import sqlalchemy as sa

from letterapp import revisions
from letterapp.db import db
from letterapp.letters import load_letter
from letterapp.models import OutgoingMail, Signature

from .conftest import LETTER, PROJECT, csrf_token

EDIT = "/manage/letters/test-letter/edit/file"
HISTORY = "/manage/letters/test-letter/revisions"


def test_word_diff_marks_removed_and_added_words():
    html = str(revisions.word_diff("The quick brown fox.", "The slow brown fox <b>."))
    assert (
        html == "The <del>quick</del><ins>slow</ins> brown <del>fox.</del><ins>fox &lt;b&gt;.</ins>"
    )


def test_a_failing_write_leaves_the_old_file_whole(app, tmp_path):
    path = tmp_path / "letters" / "test-letter.md"
    before = path.read_bytes()
    # A real failing write: a child process whose file size limit is 200 bytes.
    script = textwrap.dedent(f"""
        import resource, signal
        from letterapp import create_app, revisions
        from letterapp.letters import load_letter
        app = create_app({{"SECRET_KEY": "x", "SQLALCHEMY_DATABASE_URI": {app.config["SQLALCHEMY_DATABASE_URI"]!r}}})
        with app.app_context():
            revisions.current(load_letter({str(path.parent)!r}, "test-letter"))
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (200, 200))
            try:
                revisions.save({str(path.parent)!r}, "test-letter", {LETTER + "More. " * 100!r}, "t")
            except revisions.SaveError as error:
                print("refused:", error)
    """)  # fmt: skip
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert "refused: could not save test-letter.md" in result.stdout, result.stderr
    assert path.read_bytes() == before
    assert [p.name for p in path.parent.iterdir()] == ["test-letter.md"]  # no temporary left


def test_disk_edits_become_a_new_revision(app, write_letter):
    with app.app_context():
        letter = load_letter(app.config["LETTERS_DIR"], "test-letter")
        assert revisions.current(letter).number == 1
        assert revisions.current(letter).number == 1  # unchanged text, same revision
        write_letter(replace={"We ask for an update.": "We ask for an urgent update."})
        letter = load_letter(app.config["LETTERS_DIR"], "test-letter")
        second = revisions.current(letter)
        assert (second.number, second.author) == (2, revisions.DISK)
        assert "urgent" in second.text


def test_history_from_the_command_line(app, runner, write_letter):
    runner.invoke(args=["letter", "history", "test-letter"])
    write_letter(replace={"We ask for an update.": "We ask again."})
    result = runner.invoke(args=["letter", "history", "test-letter"])
    lines = result.output.splitlines()
    assert [line.split("\t")[0] for line in lines] == ["1", "2"]
    assert lines[1].split("\t")[2] == "edited on disk"


def save_in_browser(client, text: str, note: str = "", minor: bool = False):
    token = csrf_token(client.get(EDIT).text)
    data = {"csrf_token": token, "text": text, "note": note, "save": "1"}
    if minor:
        data["minor"] = "y"
    return client.post(EDIT, data=data)


def test_edit_preview_and_save_in_the_browser(app, client, coordinator):
    page = client.get(EDIT).text
    assert "title: Open letter on the rights" in page
    preview = client.post(
        EDIT,
        data={"csrf_token": csrf_token(page), "text": LETTER.replace("update.", "answer."),
              "preview": "1"},
    )  # fmt: skip
    assert "We ask for an answer." in preview.text and "Preview" in preview.text
    bad = save_in_browser(client, LETTER.replace("date: 2023-08-11", "date: someday"))
    assert "Not saved" in bad.text and "test-letter.md:3: bad date" in bad.text
    assert save_in_browser(client, LETTER.replace("update.", "answer."), "ask for an answer")
    history = client.get(HISTORY).text
    assert "Revision 2" in history and "ask for an answer" in history
    assert "<del>update.</del><ins>answer.</ins>" in history


def test_create_a_letter_from_nothing(app, client, coordinator):
    page = client.get("/manage/new").text
    response = client.post(
        "/manage/new",
        data={"csrf_token": csrf_token(page), "slug": "new-letter",
              "title": "Open letter: on “quotes” and colons", "date": "2026-12-01"},
    )  # fmt: skip
    assert response.status_code == 302
    letter = load_letter(app.config["LETTERS_DIR"], "new-letter")
    assert letter.title == "Open letter: on “quotes” and colons"
    assert client.get("/manage/letters/new-letter/edit").status_code == 200


def last_mail(app) -> email.message.EmailMessage:
    with app.app_context():
        raw = (
            db.session.scalars(sa.select(OutgoingMail).order_by(OutgoingMail.id.desc())).first().raw
        )
    return email.message_from_string(raw, policy=email.policy.default)


def signature(app) -> Signature:
    with app.app_context():
        return db.session.scalars(sa.select(Signature)).one()


def test_signers_of_earlier_text_are_asked_to_reconfirm(app, client, sign, coordinator):
    sign()
    assert signature(app).revision_number == 1
    save_in_browser(client, LETTER.replace("We ask for an update.", "We demand an answer."))
    history = client.get(HISTORY).text
    assert "1 signer(s) signed an earlier text" in history
    client.post(HISTORY + "/notify", data={"csrf_token": csrf_token(history)})
    message = last_mail(app)
    assert message["Subject"].startswith("The letter you signed has changed")
    text = message.get_body(("plain",)).get_content()
    assert "Before: We ask for an update." in text and "Now:    We demand an answer." in text
    manage = re.search(r"http://localhost(/letters/test-letter/signon/\S+)", text).group(1)
    page = client.get(manage).text
    assert "The letter has changed since you signed" in page
    client.post(manage + "/reconfirm", data={"reconfirm-csrf_token": csrf_token(page)})
    assert signature(app).revision_number == 2
    assert "signed an earlier text" not in client.get(HISTORY).text


def test_a_minor_change_needs_no_reconfirmation(app, client, sign, coordinator):
    sign()
    save_in_browser(client, LETTER.replace("update.", "update!"), "typo", minor=True)
    assert "signed an earlier text" not in client.get(HISTORY).text
    with app.app_context():
        assert revisions.needs_reconfirmation("test-letter") == []


def test_restore_an_earlier_revision(app, client, coordinator):
    save_in_browser(client, LETTER.replace("update.", "answer."))
    page = client.get(HISTORY).text
    client.post(HISTORY + "/1/restore", data={"csrf_token": csrf_token(page)})
    with app.app_context():
        letter = load_letter(app.config["LETTERS_DIR"], "test-letter")
        assert "We ask for an update." in letter.body
        assert revisions.latest("test-letter").number == 3


def test_export_warns_while_signers_of_old_text_have_not_reconfirmed(
    app, client, sign, coordinator
):
    sign()
    assert "signed an earlier text" not in client.get("/manage/letters/test-letter/pdf").text
    save_in_browser(client, LETTER.replace("We ask for an update.", "We demand an answer."))
    page = client.get("/manage/letters/test-letter/pdf").text
    assert "1 signer(s) signed an earlier text of the letter" in page
