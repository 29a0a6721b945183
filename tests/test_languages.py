"""Letters in several languages: translations, the page's language, Korean mail, dates and PDFs."""

import re
import subprocess
from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

from letterapp import letter_date, pdf
from letterapp.db import db
from letterapp.letters import LetterError, list_letters, load_letter
from letterapp.models import Signature, Status

from .conftest import PROJECT, csrf_token

# The Korean translation of conftest's LETTER: the same notes, no shared keys.
KO_LETTER = """\
---
title: 실종자 가족의 권리에 관한 공개서한
coalition: 진실을 위한 시험 연대
language: ko
addressee:
  - 아마라 튀르크-린드크비스트 최고대표
  - 유엔 인권최고대표사무소
  - Palais des Nations, CH-1211 Geneva 10, Switzerland
attn:
  - "장뤼크 외르스테드, 담당 과장"
re: 실종자 가족의 권리
salutation: 튀르크-린드크비스트 최고대표님께,
closing: 삼가 드림.
signatories_heading: 서명 단체 및 개인
---
우리는 그 나라 실종자 가족들에 관해 이 서한을 드립니다.[^1] 그들의 “알 권리”는 오래전에 확립되었습니다.[^2]

## 1. 배경

그 관행은 상세히 기록되어 있습니다.[^3] 같은 보고서도 참고하십시오.[^4]

## 2. 앞으로의 길

우리는 최신 정보를 요청합니다.

감사합니다.

[^1]: 조사위원회 보고서, A/HRC/25/CRP.1, 2014년 2월 7일, para. 12.
[^2]: 같은 문서, para. 1197.
[^3]: <https://documents.example.org/ko/report.pdf> 참조.
[^4]: 같은 문서.
"""

KO_TITLE = "실종자 가족의 권리에 관한 공개서한"
EN_TITLE = "Open letter on the rights of families of the disappeared"


@pytest.fixture
def korean(write_letter):
    """The test letter's Korean translation, `test-letter.ko.md`."""

    def write(text: str = KO_LETTER, replace: dict | None = None) -> Path:
        return write_letter("test-letter.ko", text, replace)

    write()
    return write


def letters_dir(app) -> str:
    return app.config["LETTERS_DIR"]


def problems(app, language: str = "ko") -> list[str]:
    with pytest.raises(LetterError) as caught:
        load_letter(letters_dir(app), "test-letter", language)
    return [str(problem) for problem in caught.value.problems]


# ---------------------------------------------------------------- translation files


def test_a_translation_is_the_same_letter_in_another_language(app, korean):
    [(slug, letter)] = list_letters(letters_dir(app))
    assert slug == "test-letter" and letter.languages == ("en", "ko")
    translated = load_letter(letters_dir(app), "test-letter", "ko")
    assert (translated.slug, translated.language, translated.title) == (
        "test-letter",
        "ko",
        KO_TITLE,
    )
    assert translated.signatories_heading == "서명 단체 및 개인"
    assert translated.closing == "삼가 드림."
    # What must agree comes from the original.
    for key in ("date", "closes", "moderation", "signatory_format", "recipients"):
        assert getattr(translated, key) == getattr(letter, key)
    assert load_letter(letters_dir(app), "test-letter", "en").title == EN_TITLE


@pytest.mark.parametrize(
    ("replace", "message"),
    [
        ({"language: ko": "language: ja"},
         "test-letter.ko.md:4: a translation in test-letter.ko.md must say 'language: ko'"),
        ({"language: ko\n": ""}, "must say 'language: ko'"),
        ({"language: ko": "language: ko\ncloses: 2000-01-01T00:00:00+09:00"},
         "test-letter.ko.md:5: 'closes' comes from the original letter test-letter.md"),
        ({"language: ko": "language: ko\nmoderation: auto"}, "'moderation' comes from the original"),
        ({"[^4]: 같은 문서.": "[^5]: 같은 문서.", "보고서도 참고하십시오.[^4]": "보고서도.[^5]"},
         "notes of the original missing here: [^4]"),
        ({"title: 실종자": "titel: 실종자"}, "unknown key 'titel'"),
    ],
)  # fmt: skip
def test_translation_problems_are_reported_by_file_and_line(app, korean, replace, message):
    korean(replace=replace)
    assert any(message in problem for problem in problems(app)), problems(app)
    # A broken translation is not offered; the letter itself is unharmed.
    assert load_letter(letters_dir(app), "test-letter").languages == ("en",)


def test_letter_check_checks_the_translations(app, runner, korean):
    result = runner.invoke(args=["letter", "check", "test-letter"])
    assert result.exit_code == 0, result.output
    assert "approved signatories, translations: ko)" in result.output
    korean(replace={"language: ko": "language: ko\nnoindex: true"})
    result = runner.invoke(args=["letter", "check", "test-letter"])
    assert result.exit_code == 1
    assert "test-letter.ko.md:5: 'noindex' comes from the original letter" in result.output


def test_a_translation_into_the_letters_own_language_is_refused(runner, write_letter):
    write_letter("test-letter.en", KO_LETTER.replace("language: ko", "language: en"))
    result = runner.invoke(args=["letter", "check", "test-letter"])
    assert result.exit_code == 1
    assert "test-letter.en.md:4: 'en' is the original letter's language" in result.output


# ---------------------------------------------------------------- the page's language


def html_lang(page) -> str:
    return re.search(r'<html lang="([^"]+)"', page.text).group(1)


def test_accept_language_chooses_among_the_letters_languages(client, korean):
    page = client.get(
        "/letters/test-letter", headers={"Accept-Language": "ko-KR,ko;q=0.9,en;q=0.5"}
    )
    assert html_lang(page) == "ko"
    assert KO_TITLE in page.text and EN_TITLE not in page.text
    assert "이 서한에 서명하기" in page.text and "2023년 8월 11일" in page.text
    assert "제목: 실종자 가족의 권리" in page.text
    assert 'href="/letters/test-letter.pdf?lang=ko"' in page.text
    assert page.headers["Vary"].count("Accept-Language") == 1
    page = client.get("/letters/test-letter", headers={"Accept-Language": "fr-FR, en;q=0.8"})
    assert html_lang(page) == "en" and EN_TITLE in page.text and "August 11, 2023" in page.text


def test_without_a_preference_the_letter_speaks_its_own_language(client, korean, write_letter):
    assert html_lang(client.get("/letters/test-letter")) == "en"
    # A letter with no Korean text stays in its language, whatever the browser prefers.
    write_letter("other-letter")
    page = client.get("/letters/other-letter", headers={"Accept-Language": "ko"})
    assert html_lang(page) == "en" and "Sign this letter" in page.text


def test_an_explicit_choice_wins_and_is_remembered(client, korean):
    english_browser = {"Accept-Language": "en-GB,en;q=0.9"}
    page = client.get("/letters/test-letter?lang=ko", headers=english_browser)
    assert html_lang(page) == "ko"
    # The language links: the current one marked, the other a link.
    assert '<strong lang="ko" aria-current="page">한국어</strong>' in page.text
    assert 'href="/letters/test-letter?lang=en" lang="en" hreflang="en">English</a>' in page.text
    for path in ("/letters/test-letter", "/letters/test-letter/signatories", "/"):
        assert html_lang(client.get(path, headers=english_browser)) == "ko", path
    assert "서명 단체 및 개인 (" in client.get("/letters/test-letter/signatories").text
    assert "공개서한" in client.get("/").text
    assert html_lang(client.get("/letters/test-letter?lang=en")) == "en"
    assert html_lang(client.get("/letters/test-letter", headers={"Accept-Language": "ko"})) == "en"
    # An unknown choice is ignored.
    assert html_lang(client.get("/letters/test-letter?lang=xx")) == "en"


def test_coordinators_pages_stay_in_english(client, korean, coordinator):
    client.get("/letters/test-letter?lang=ko")
    page = client.get("/manage/letters/test-letter", headers={"Accept-Language": "ko"})
    assert page.status_code == 200 and html_lang(page) == "en"


def test_the_index_lists_each_letter_once_in_the_chosen_language(client, korean):
    page = client.get("/", headers={"Accept-Language": "ko"})
    assert page.text.count('href="/letters/test-letter"') == 1
    assert KO_TITLE in page.text and "공개서한" in page.text


# ---------------------------------------------------------------- signing in Korean


def korean_page(client) -> str:
    return client.get("/letters/test-letter?lang=ko").text


def test_the_form_and_its_errors_speak_korean(client, korean):
    page = korean_page(client)
    for label in ("서명 주체", "단체", "개인", "서한에 표시될 이름", "이메일 (공개되지 않음)"):
        assert label in page
    response = client.post(
        "/letters/test-letter",
        data={"csrf_token": csrf_token(page), "kind": "organization", "email": "not an address"},
    )
    assert response.status_code == 400
    for message in (
        "아래 표시된 항목을 고쳐 주세요.",
        "서한에 표시될 이름을 입력해 주세요.",
        "단체를 대표해 서명하는 사람의 이름을 입력해 주세요.",
        "올바른 이메일 주소가 아닙니다:",
        "서명하려면 이름 공개에 동의해야 합니다.",
        "단체를 대표해 서명할 권한이 있음을 확인해 주세요.",
    ):
        assert message in response.text, message
    response = client.post(
        "/letters/test-letter", data={"csrf_token": csrf_token(page), "name": "가" * 201}
    )
    assert "이름은 200자까지 쓸 수 있습니다." in response.text


def signer(**fields) -> dict:
    return {
        "kind": "organization",
        "name": "한국인권연대",
        "acronym": "KHRS",
        "contact_name": "김민지",
        "email": "minji@khrs.example.kr",
        "authorised": "y",
        "consent": "y",
        **fields,
    }


def test_a_korean_signer_gets_korean_mail_and_joins_the_one_list(app, client, korean, smtp_server):
    app.config["SMTP_URL"] = smtp_server.url
    page = korean_page(client)
    response = client.post(
        "/letters/test-letter", data={**signer(), "csrf_token": csrf_token(page)}, buffered=True
    )
    assert response.status_code == 302
    signed = client.get(response.headers["Location"]).text
    assert "받은편지함을 확인해 주세요" in signed and "minji@khrs.example.kr" in signed

    [received] = smtp_server.messages
    assert received["Subject"] == f"서명을 확인해 주세요: {KO_TITLE}"
    text = received.get_body(("plain",)).get_content()
    assert "김민지 님, 안녕하세요." in text and KO_TITLE in text
    assert '아래 링크를 열고 "확인" 버튼을 눌러 서명을 확인해 주세요:' in text
    confirm = re.search(r"https?://\S+/confirm/\S+", text).group(0)
    assert confirm.endswith("?lang=ko")

    # The link opens the page in Korean, even in a fresh browser that prefers English.
    fresh = app.test_client()
    page = fresh.get(confirm, headers={"Accept-Language": "en"})
    assert html_lang(page) == "ko" and "서명 확인" in page.text
    response = fresh.post(confirm, data={"csrf_token": csrf_token(page.text)})
    assert "감사합니다. 서명이 확인되었습니다." in fresh.get(response.headers["Location"]).text

    # An English signer of the same letter; both go into one signatory list.
    english = app.test_client()
    page = english.get("/letters/test-letter").text
    english.post(
        "/letters/test-letter",
        data={**signer(name="Asia Justice Network", acronym="AJN", email="a@ajn.example.org"),
              "csrf_token": csrf_token(page)},
        buffered=True,  # the confirmation is sent once the response is closed
    )  # fmt: skip
    assert smtp_server.messages[1]["Subject"] == f"Confirm your sign-on: {EN_TITLE}"
    with app.app_context():
        rows = db.session.scalars(sa.select(Signature).order_by(Signature.id)).all()
        assert [(s.letter_slug, s.language) for s in rows] == [
            ("test-letter", "ko"),
            ("test-letter", "en"),
        ]
        for row in rows:
            row.status = Status.APPROVED
        db.session.commit()
    for language in ("ko", "en"):
        names = client.get(f"/letters/test-letter/signatories?lang={language}").text
        assert "한국인권연대 (KHRS)" in names and "Asia Justice Network (AJN)" in names
    assert "서명자 2명" in client.get("/letters/test-letter?lang=ko").text


# ---------------------------------------------------------------- dates and PDFs


@pytest.mark.parametrize(
    ("language", "written"),
    [("ko", "2023년 8월 11일"), ("en", "August 11, 2023")],
)
def test_dates_are_written_in_the_letters_language(app, korean, language, written):
    letter = load_letter(letters_dir(app), "test-letter", language)
    assert letter_date(date(2023, 8, 11), letter) == written


def test_the_messages_catalogue_is_compiled_from_the_po_file():
    po_path = PROJECT / "translations/ko/LC_MESSAGES/messages.po"
    with open(po_path, "rb") as po, open(po_path.with_suffix(".mo"), "rb") as mo:
        source, compiled = read_po(po), read_mo(mo)

    def messages(catalog) -> dict:
        flat = lambda v: tuple(v) if isinstance(v, list | tuple) else v  # plural forms
        return {flat(m.id): flat(m.string) for m in catalog if m.id and m.string}

    assert len(messages(source)) > 100
    assert messages(compiled) == messages(source), "run `make translations` after editing the .po"
    assert all(m.string for m in source if m.id), "every message has a Korean translation"


def pdf_text(path: Path) -> str:
    return subprocess.run(
        ["pdftotext", str(path), "-"], capture_output=True, text=True, check=True
    ).stdout


def test_korean_pdf_from_the_command_line(app, runner, korean, tmp_path):
    output = tmp_path / "ko.pdf"
    result = runner.invoke(
        args=["letter", "render", "test-letter", "--lang", "ko", "-o", str(output),
              "--as-of", "2023-08-11"]
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    # Hangul lines may break between any two syllables: compare without white space.
    text = re.sub(r"\s+", "", pdf_text(output))
    in_order = [
        KO_TITLE,
        "2023년 8월 11일",
        "참조:",
        "제목: 실종자 가족의 권리",
        "튀르크-린드크비스트 최고대표님께,",
        "우리는 그 나라 실종자 가족들에 관해 이 서한을 드립니다.",
        "그들의 “알 권리”는 오래전에 확립되었습니다.",
        "1. 배경",
        "그 관행은 상세히 기록되어 있습니다.",
        "우리는 최신 정보를 요청합니다.",
        "감사합니다.",
        "삼가 드림.",
        "서명 단체 및 개인 (2023년 8월 11일 기준)",
        "조사위원회 보고서",
    ]
    positions = [text.find(re.sub(r"\s+", "", sentence)) for sentence in in_order]
    assert -1 not in positions, [s for s, p in zip(in_order, positions, strict=True) if p < 0]
    assert positions == sorted(positions)
    assert EN_TITLE not in text
    fonts = subprocess.run(
        ["pdffonts", str(output)], capture_output=True, text=True, check=True
    ).stdout
    cjk = [line for line in fonts.splitlines() if "CJK-KR" in line]
    assert cjk and all(line.split()[-5] == "yes" for line in cjk), fonts  # embedded


def test_the_public_pdf_per_language(client, korean, tmp_path):
    korean_pdf = client.get("/letters/test-letter.pdf?lang=ko")
    assert korean_pdf.status_code == 200
    assert "test-letter-ko-" in korean_pdf.headers["Content-Disposition"]
    (tmp_path / "ko.pdf").write_bytes(korean_pdf.data)
    assert KO_TITLE in pdf_text(tmp_path / "ko.pdf")
    (tmp_path / "en.pdf").write_bytes(client.get("/letters/test-letter.pdf").data)
    assert EN_TITLE in pdf_text(tmp_path / "en.pdf")


def test_render_refuses_a_language_the_letter_does_not_have(runner, korean, tmp_path):
    result = runner.invoke(
        args=["letter", "render", "test-letter", "--lang", "fr", "-o", str(tmp_path / "x.pdf")]
    )
    assert result.exit_code == 1
    assert "no 'fr' translation of 'test-letter'" in result.output


def test_coordinators_export_the_pdf_in_a_translations_language(client, korean, coordinator):
    page = client.get("/manage/letters/test-letter/pdf")
    assert '<option value="ko">ko</option>' in page.text
    response = client.get(
        "/manage/letters/test-letter/pdf",
        query_string={"as_of": "2023-08-11", "notes": "endnotes", "paper": "a4",
                      "language": "ko", "download": "1"},
    )  # fmt: skip
    assert response.status_code == 200
    assert "test-letter-ko-2023-08-11.pdf" in response.headers["Content-Disposition"]
    assert response.data.startswith(b"%PDF")


def test_a_long_korean_list_rendered_in_parts_keeps_korean_headings(app, korean, tmp_path):
    names = [f"서명자 {i:04d}" for i in range(pdf.PARTS_FROM)]
    with app.test_request_context():
        letter = load_letter(letters_dir(app), "test-letter", "ko")
        (tmp_path / "ko.pdf").write_bytes(pdf.render_pdf(letter, names, as_of=date(2023, 8, 11)))
    text = re.sub(r"\s+", "", pdf_text(tmp_path / "ko.pdf"))
    assert "서명단체및개인(2023년8월11일기준)" in text
    assert "참조:" in text and "asof" not in text
    assert text.index("서명자0000") < text.index(f"서명자{pdf.PARTS_FROM - 1:04d}")
