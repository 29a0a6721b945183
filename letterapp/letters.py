"""Letter files: `letters/<slug>.md`, YAML front matter then a Markdown body.

A translation is `letters/<slug>.<language>.md` (`civic-space-2026.ko.md`): the same
contract, with its own text, title, addressee, salutation, closing and signatories
heading. What must be the same in every language (SHARED: the date, when sign-on
closes, moderation, how names are printed, the recipients) comes from the original
and may not be written in a translation. Its `language` key must match the file name.
"""

import re
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time
from functools import lru_cache
from pathlib import Path

import babel
import yaml

from .mail import recipient_address

SLUG = r"[a-z0-9][a-z0-9-]{0,99}"
_SLUG_RE = re.compile(SLUG)
# A language as it appears in a translation's file name: `ko`, `pt-BR`.
_LANGUAGE_RE = re.compile(r"[a-z]{2,3}(?:-[A-Za-z0-9]{2,8})?")

MAX_FRONT_MATTER = 20_000
MAX_BODY = 400_000

RECIPIENT_KINDS = ("to", "cc", "bcc")


@dataclass(frozen=True)
class Recipients:
    """Where the letter is emailed: addresses as written, `Name <email>` or plain."""

    to: tuple[str, ...] = ()
    cc: tuple[str, ...] = ()
    bcc: tuple[str, ...] = ()  # never in a header: only the envelope names them


REQUIRED = ("title", "date", "addressee", "re", "salutation")
DEFAULTS = {
    "attn": [],
    "closing": "Sincerely,",
    "signatories_heading": "Signature organizations and individuals",
    "closes": None,
    "language": "en",
    "coalition": "",
    # Coordinator choices; the first of each CHOICES entry is the default.
    "moderation": "manual",
    "signatory_format": "name-acronym",
    "group_signatories": False,
    "noindex": False,
    "recipients": Recipients(),
}
KEYS = REQUIRED + tuple(DEFAULTS)
CHOICES = {
    # manual: confirmed sign-ons wait for a coordinator; auto: confirmed means approved.
    "moderation": ("manual", "auto"),
    # How an organisation appears in the letter.
    "signatory_format": ("name-acronym", "name", "name-acronym-country"),
}
FLAGS = ("group_signatories", "noindex")
# Keys a translation takes from the original: one letter, one sign-on, one list of names.
SHARED = (
    "date", "closes", "moderation", "signatory_format", "group_signatories", "noindex",
    "recipients",
)  # fmt: skip

_DEFINITION = re.compile(r"^ {0,3}\[\^([^\]\s]+)\]:")
_REFERENCE = re.compile(r"\[\^([^\]\s]+)\](?!:)")


@dataclass(frozen=True)
class Problem:
    path: Path
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path.name}:{self.line}: {self.message}"


class LetterError(Exception):
    """A letter file that cannot be used, with every problem found in it."""

    def __init__(self, problems: list[Problem]):
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems


@dataclass(frozen=True)
class Letter:
    slug: str
    path: Path
    title: str
    date: date
    addressee: tuple[str, ...]
    re: str
    salutation: str
    body: str
    attn: tuple[str, ...] = ()
    closing: str = "Sincerely,"
    signatories_heading: str = "Signature organizations and individuals"
    closes: datetime | None = None
    language: str = "en"
    coalition: str = ""
    moderation: str = "manual"
    signatory_format: str = "name-acronym"
    group_signatories: bool = False
    noindex: bool = False
    recipients: Recipients = Recipients()
    # The letter's own language first, then those of its translations that load.
    languages: tuple[str, ...] = ()

    def is_open(self, now: datetime | None = None) -> bool:
        return self.closes is None or (now or datetime.now(UTC)) < self.closes

    @property
    def timezone(self):
        """The letter's own time zone: that of `closes`, else UTC."""
        return self.closes.tzinfo if self.closes else UTC

    def today(self) -> date:
        """Today's date where the letter is run: its "as of" date by default."""
        return datetime.now(self.timezone).date()

    def end_of(self, day: date) -> datetime:
        """The last moment of `day` in the letter's time zone."""
        return datetime.combine(day, time.max, tzinfo=self.timezone)


class _Loader(yaml.SafeLoader):
    """A safe loader that leaves dates as strings, so we can report bad ones by line."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def letter_path(letters_dir: str | Path, slug: str, language: str | None = None) -> Path:
    """The file of a letter, or of its translation into `language`."""
    if not _SLUG_RE.fullmatch(slug) or (language and not _LANGUAGE_RE.fullmatch(language)):
        raise FileNotFoundError(slug)
    return Path(letters_dir) / (f"{slug}.{language}.md" if language else f"{slug}.md")


def translation_files(letters_dir: str | Path, slug: str) -> dict[str, Path]:
    """The translation files of a letter by language, loadable or not."""
    found = {}
    for path in sorted(Path(letters_dir).glob(f"{slug}.*.md")):
        language = path.name.removeprefix(f"{slug}.").removesuffix(".md")
        if _LANGUAGE_RE.fullmatch(language):
            found[language] = path
    return found


def load_letter(letters_dir: str | Path, slug: str, language: str | None = None) -> Letter:
    """Load and check a letter by slug, in its own language or a translation.

    Raise LetterError, or FileNotFoundError if there is no such letter or translation.
    """
    original = _load(letter_path(letters_dir, slug))
    languages = [original.language]
    for code, path in translation_files(letters_dir, slug).items():
        try:
            _load(path, original)
        except (LetterError, OSError):
            continue  # `letter check` reports it; the letter itself is fine
        if code not in languages:
            languages.append(code)
    if language in (None, original.language):
        return replace(original, languages=tuple(languages))
    if language not in languages:
        _load(letter_path(letters_dir, slug, language), original)  # its error, if any
        raise FileNotFoundError(f"{slug}.{language}.md")
    translated = _load(letter_path(letters_dir, slug, language), original)
    return replace(translated, languages=tuple(languages))


def load_translation(letters_dir: str | Path, slug: str, language: str) -> Letter:
    """A translation file checked on its own against its original (`letter check`)."""
    original = _load(letter_path(letters_dir, slug))
    return _load(letter_path(letters_dir, slug, language), original)


def translate(letter: Letter, language: str | None) -> Letter:
    """The same letter in `language` if it has that translation, else as it is."""
    if not language or language == letter.language or language not in letter.languages:
        return letter
    return load_letter(letter.path.parent, letter.slug, language)


def _load(path: Path, original: Letter | None = None) -> Letter:
    stat = path.stat()
    if original is not None:
        original = replace(original, languages=())  # the cache key must not change with it
    return _load_cached(path, stat.st_mtime_ns, stat.st_size, original)


def list_letters(letters_dir: str | Path) -> list[tuple[str, Letter | LetterError]]:
    """Every letter file in the folder, loaded, or the error that stops it."""
    found = []
    for path in sorted(Path(letters_dir).glob("*.md")):
        slug = path.stem
        if not _SLUG_RE.fullmatch(slug):
            continue  # translations (`slug.ko.md`) and stray files
        try:
            found.append((slug, load_letter(letters_dir, slug)))
        except LetterError as error:
            found.append((slug, error))
    return found


@lru_cache(maxsize=64)
def _load_cached(path: Path, mtime_ns: int, size: int, original: Letter | None) -> Letter:
    # The key includes mtime and size, so an edited file is read again.
    return parse_letter(path, path.read_text(encoding="utf-8"), original)


def parse_letter(path: Path, text: str, original: Letter | None = None) -> Letter:
    """Parse the text of a letter file; raise LetterError listing every problem.

    With `original`, the text is a translation of that letter.
    """
    text = text.removeprefix("\ufeff").replace("\r\n", "\n")
    lines = text.split("\n")
    if not lines or lines[0].strip() != "---":
        raise LetterError(
            [Problem(path, 1, "the file must start with '---' and YAML front matter")]
        )
    try:
        end = next(i for i in range(1, len(lines)) if lines[i].strip() == "---")
    except StopIteration:
        raise LetterError(
            [Problem(path, 1, "the front matter has no closing '---' line")]
        ) from None
    front = "\n".join(lines[1:end])
    body = "\n".join(lines[end + 1 :])
    body_start = end + 2  # the file line of the body's first line
    if len(front) > MAX_FRONT_MATTER:
        raise LetterError(
            [Problem(path, 2, f"the front matter is over {MAX_FRONT_MATTER} characters")]
        )
    if len(body) > MAX_BODY:
        raise LetterError([Problem(path, body_start, f"the body is over {MAX_BODY} characters")])

    values, key_lines, problems = _read_front_matter(path, front)
    fields = {}
    if values is not None:
        if original is not None:
            problems += _check_translation(path, values, key_lines, original)
        fields, more = _check_fields(path, values, key_lines)
        problems += more
    problems += _check_footnotes(path, body, body_start)
    if original is not None:
        problems += _check_same_notes(path, body, body_start, original)
    if problems:
        raise LetterError(sorted(problems, key=lambda p: p.line))
    if original is not None:
        fields.update({key: getattr(original, key) for key in SHARED})
        return Letter(slug=original.slug, path=path, body=body, **fields)
    return Letter(slug=path.stem, path=path, body=body, **fields)


def _check_translation(path: Path, values: dict, key_lines: dict, original: Letter):
    """Problems of a translation's front matter; the shared keys are taken out of `values`."""
    problems = []
    for key in SHARED:
        if key in values:
            del values[key]
            problems.append(
                Problem(
                    path,
                    key_lines.get(key, 1),
                    f"{key!r} comes from the original letter {original.path.name}:"
                    " remove it from the translation",
                )
            )
    values["date"] = original.date.isoformat()  # shared, so never missing
    suffix = path.name.removesuffix(".md").rsplit(".", 1)[-1]
    if values.get("language") != suffix:
        problems.append(
            Problem(
                path,
                key_lines.get("language", 1),
                f"a translation in {path.name} must say 'language: {suffix}'",
            )
        )
    elif suffix == original.language:
        problems.append(
            Problem(path, key_lines["language"], f"{suffix!r} is the original letter's language")
        )
    return problems


def _check_same_notes(path: Path, body: str, body_start: int, original: Letter) -> list[Problem]:
    """A translation has the original's notes, no more and no fewer."""
    ours, theirs = _note_labels(body), _note_labels(original.body)
    problems = []
    if missing := [label for label in theirs if label not in ours]:
        listed = ", ".join(f"[^{label}]" for label in missing)
        problems.append(Problem(path, body_start, f"notes of the original missing here: {listed}"))
    if extra := [label for label in ours if label not in theirs]:
        listed = ", ".join(f"[^{label}]" for label in extra)
        problems.append(Problem(path, body_start, f"notes not in the original: {listed}"))
    return problems


def _note_labels(body: str) -> list[str]:
    return [m.group(1) for line in body.split("\n") if (m := _DEFINITION.match(line))]


def _read_front_matter(path: Path, front: str):
    """Return (values, line of each key, problems); values is None if unreadable."""
    try:
        for event in yaml.parse(front, Loader=_Loader):
            # Aliases are never needed in a letter and are how YAML bombs work.
            if isinstance(event, yaml.AliasEvent):
                line = event.start_mark.line + 2
                return None, {}, [Problem(path, line, "YAML aliases (*name) are not allowed")]
        node = yaml.compose(front, Loader=_Loader)
        values = yaml.load(front, Loader=_Loader)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = mark.line + 2 if mark else 2
        return None, {}, [Problem(path, line, f"invalid YAML: {error.problem or error}")]
    except yaml.YAMLError as error:
        return None, {}, [Problem(path, 2, f"invalid YAML: {error}")]
    if not isinstance(values, dict):
        return None, {}, [Problem(path, 2, "the front matter must be a mapping of keys to values")]
    key_lines = {str(k.value): k.start_mark.line + 2 for k, _ in node.value}
    for key, value in node.value:
        if key.value == "recipients":
            key_lines.update(_recipient_lines(value))
    return values, key_lines, []


def _recipient_lines(node) -> dict[str, int]:
    """The file line of each list and address under `recipients`: `recipients.to[0]`."""
    lines = {}
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            where = f"recipients.{key.value}"
            lines[where] = key.start_mark.line + 2
            if isinstance(value, yaml.SequenceNode):
                for index, item in enumerate(value.value):
                    lines[f"{where}[{index}]"] = item.start_mark.line + 2
    return lines


def _check_fields(path: Path, values: dict, key_lines: dict[str, int]):
    problems = []

    def problem(key: str, message: str) -> None:
        problems.append(Problem(path, key_lines.get(key, 1), message))

    for key in values:
        if key not in KEYS:
            problem(str(key), f"unknown key {key!r} (known keys: {', '.join(KEYS)})")
    for key in REQUIRED:
        if values.get(key) in (None, "", []):
            problem(key, f"missing key {key!r}")

    fields = {key: values.get(key, default) for key, default in DEFAULTS.items()}
    for key in ("title", "re", "salutation", "closing", "signatories_heading", "coalition"):
        value = values.get(key, DEFAULTS.get(key))
        if value is not None and not isinstance(value, str):
            problem(key, f"{key!r} must be text")
        elif value and "\n" in value.strip():
            problem(key, f"{key!r} must be a single line")
        fields[key] = (value or "").strip()
    for key in ("addressee", "attn"):
        value = values.get(key, [])
        if (
            value is None
            or not isinstance(value, list)
            or not all(isinstance(v, str) for v in value)
        ):
            problem(key, f"{key!r} must be a list of lines of text")
            value = []
        fields[key] = tuple(v.strip() for v in value)

    for key, allowed in CHOICES.items():
        if fields[key] not in allowed:
            problem(key, f"{key!r} must be one of: {', '.join(allowed)}")
    for key in FLAGS:
        if not isinstance(fields[key], bool):
            problem(key, f"{key!r} must be true or false")
    fields["recipients"] = Recipients()
    if values.get("recipients") is not None:
        fields["recipients"], found = check_recipients(values["recipients"], "recipients")
        for where, message in found:
            line = key_lines.get(where) or key_lines.get("recipients", 1)
            problems.append(Problem(path, line, message))
    try:
        fields["date"] = date.fromisoformat(str(values.get("date", "")))
    except ValueError:
        if "date" in values:
            problem("date", f"bad date {values['date']!r}: write it as YYYY-MM-DD")
    if values.get("closes") is not None:
        fields["closes"] = _parse_closes(str(values["closes"]), lambda m: problem("closes", m))
    try:
        babel.Locale.parse(str(fields["language"]).replace("-", "_"))
    except (ValueError, babel.UnknownLocaleError):
        problem("language", f"unknown language {fields['language']!r}: use a code such as en or ko")
    return fields, problems


def check_recipients(value, prefix: str = "") -> tuple[Recipients, list[tuple[str, str]]]:
    """Check a mapping of `to`, `cc` and `bcc` address lists, from the file or the workspace.

    Return the valid addresses and each problem with where it is (`recipients.cc[1]`).
    A line break in an address is refused: it could start a new email header.
    """
    top = prefix or "recipients"
    if not isinstance(value, dict):
        return Recipients(), [(top, f"{top!r} must have lists of email addresses: to, cc, bcc")]
    problems = []
    for key in value:
        if key not in RECIPIENT_KINDS:
            where = f"{prefix}.{key}" if prefix else top
            problems.append((where, f"unknown key {key!r} in {top!r} (known keys: to, cc, bcc)"))
    lists: dict[str, tuple[str, ...]] = {}
    seen: dict[str, str] = {}
    for kind in RECIPIENT_KINDS:
        where = f"{prefix}.{kind}" if prefix else kind
        items = value.get(kind) or []
        if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
            problems.append((where, f"{where!r} must be a list of email addresses, one per line"))
            items = []
        kept = []
        for index, written in enumerate(items):
            item = written.strip(" \t")
            try:
                address = recipient_address(where, item)
            except ValueError as error:
                problems.append((f"{where}[{index}]", str(error)))
                continue
            key = address.addr_spec.casefold()
            if key in seen:
                problems.append(
                    (f"{where}[{index}]", f"{address.addr_spec} is already in {seen[key]}")
                )
                continue
            seen[key] = where
            kept.append(item)
        lists[kind] = tuple(kept)
    if not lists["to"] and not problems:
        problems.append((f"{prefix}.to" if prefix else "to", "give at least one 'to' address"))
    return Recipients(**lists), problems


def _parse_closes(value: str, report) -> datetime | None:
    try:
        closes = datetime.fromisoformat(value)
    except ValueError:
        report(f"bad date-time {value!r} for 'closes': write it as 2026-12-31T23:59:00+09:00")
        return None
    if closes.tzinfo is None:
        report("'closes' needs a time-zone offset, e.g. 2026-12-31T23:59:00+09:00")
        return None
    return closes


def _check_footnotes(path: Path, body: str, body_start: int) -> list[Problem]:
    """Report notes referenced but not defined, defined but never referenced, or self-referencing."""
    defined: dict[str, int] = {}
    referenced: dict[str, int] = {}
    problems = []
    current = None  # the note whose definition we are in
    for number, line in enumerate(body.split("\n"), start=body_start):
        text = line
        if match := _DEFINITION.match(line):
            current = match.group(1)
            if current in defined:
                problems.append(Problem(path, number, f"footnote [^{current}] is defined twice"))
            defined.setdefault(current, number)
            text = line[match.end() :]
        elif line and not line.startswith((" ", "\t")):
            current = None
        for label in _REFERENCE.findall(text):
            if label == current:
                problems.append(Problem(path, number, f"footnote [^{label}] refers to itself"))
            referenced.setdefault(label, number)
    for label, number in referenced.items():
        if label not in defined:
            problems.append(
                Problem(path, number, f"footnote [^{label}] is referenced but not defined")
            )
    for label, number in defined.items():
        if label not in referenced:
            problems.append(
                Problem(path, number, f"footnote [^{label}] is defined but never referenced")
            )
    return problems


def format_letter(values: dict, body: str) -> str:
    """The text of a letter file: `values` as front matter in KEYS order, then the body.

    The one writer of letter files. Optional keys equal to their default are left
    out, so the file says only what this letter chose.
    """
    front = {}
    for key in KEYS:
        value = values.get(key, DEFAULTS.get(key))
        if key in DEFAULTS and value == DEFAULTS[key]:
            continue
        if isinstance(value, datetime):
            value = value.isoformat()  # with its offset, as the parser requires
        elif isinstance(value, tuple):
            value = list(value)
        elif isinstance(value, Recipients):
            value = {kind: list(getattr(value, kind)) for kind in RECIPIENT_KINDS}
            value = {kind: items for kind, items in value.items() if items}
        front[key] = value
    dumped = yaml.safe_dump(front, allow_unicode=True, sort_keys=False, width=1_000_000)
    body = body.replace("\r\n", "\n").strip("\n")
    return f"---\n{dumped}---\n{body}\n"
