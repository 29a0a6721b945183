"""Property-based tests: the parser, the sort, name folding and the form, on arbitrary input."""

import random
import string
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from letterapp.letters import Letter, LetterError, parse_letter
from letterapp.limits import limiter
from letterapp.names import fold, fold_email, likely_same_keys, sort_key

from .conftest import LETTER, csrf_token

FRONT, BODY = LETTER.split("\n---\n", 1)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=400), st.text(max_size=400))
def test_parser_returns_a_letter_or_a_letter_error(front, body):
    try:
        result = parse_letter(Path("x.md"), f"---\n{front}\n---\n{body}")
    except LetterError as error:
        assert error.problems and all(p.line >= 1 for p in error.problems)
    else:
        assert isinstance(result, Letter)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_any_body_under_valid_front_matter_parses_or_names_its_problem(body):
    try:
        letter = parse_letter(Path("x.md"), FRONT + "\n---\n" + body)
    except LetterError as error:
        assert all("footnote" in p.message or "body" in p.message for p in error.problems)
    else:
        assert letter.body == body.replace("\r\n", "\n")


names = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=40)


@given(st.lists(names, max_size=30), st.randoms())
def test_sort_does_not_depend_on_input_order(items, rnd):
    shuffled = list(items)
    rnd.shuffle(shuffled)
    assert sorted(items, key=sort_key) == sorted(shuffled, key=sort_key)


@given(
    st.text(alphabet=string.digits, min_size=1, max_size=4),
    st.text(alphabet=string.ascii_letters, min_size=1, max_size=10),
    st.text(alphabet=string.ascii_letters, min_size=1, max_size=10),
)
def test_digits_come_before_letters_whatever_the_case(number, word, other):
    digit_name, letter_name = f"{number} {word}", other
    assert sort_key(digit_name) < sort_key(letter_name)
    assert sort_key(other.upper())[0] == sort_key(other.lower())[0]


@given(names)
def test_folding_is_idempotent_and_ignores_case_and_width(name):
    assert fold(fold(name)) == fold(name)
    assert fold(name.upper()) == fold(name.lower()) or not name.isascii()
    assert fold_email(fold_email(name)) == fold_email(name)
    assert likely_same_keys(name) == likely_same_keys(name)


@given(st.text(alphabet=string.ascii_letters + " ", min_size=1, max_size=30))
def test_spacing_and_case_never_make_a_new_signer(name):
    spaced = "  " + "  ".join(name.upper().split()) + " "
    assert fold(spaced) == fold(name)


@pytest.fixture
def no_rate_limits():
    limiter.enabled = False
    yield
    limiter.enabled = True


field_text = st.text(max_size=250)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(name=field_text, acronym=field_text, contact=field_text, mail=field_text, country=field_text)
def test_sign_on_form_answers_any_unicode_sensibly(
    client, no_rate_limits, name, acronym, contact, mail, country
):
    page = client.get("/letters/test-letter")
    kind = random.choice(["organization", "individual"])
    data = {
        "csrf_token": csrf_token(page.text), "kind": kind, "name": name, "acronym": acronym,
        "contact_name": contact, "email": mail, "country": country,
        "authorised": "y", "consent": "y",
    }  # fmt: skip
    response = client.post("/letters/test-letter", data=data)
    assert response.status_code in (302, 400)
    if response.status_code == 400:
        assert 'class="error"' in response.text
