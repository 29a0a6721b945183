"""Sign-ons to and from CSV files, as spreadsheet programs read and write them."""

import csv
import io
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time

from werkzeug.datastructures import MultiDict

from .forms import SignatoryForm
from .letters import Letter
from .models import Signature
from .signatures import signer_keys

REQUIRED_COLUMNS = ("name", "kind", "email")
OPTIONAL_COLUMNS = (
    "acronym", "contact_name", "country", "signed_at", "contact_title", "website", "affiliation",
)  # fmt: skip
COLUMNS = REQUIRED_COLUMNS + OPTIONAL_COLUMNS
EXPORT_ONLY_COLUMNS = ("id", "status")  # read back without complaint, and ignored
MAX_ROWS = 50_000
# A cell starting with one of these is run as a formula by spreadsheet programs.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@dataclass
class ImportPlan:
    """What an import would do: the rows to add, or the errors that stop it."""

    rows: list[dict] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    duplicates: int = 0
    bad_rows: int = 0


def read_signatories(text: str, letter: Letter, existing: set[tuple[str, str]]) -> ImportPlan:
    """Check every row of a CSV file; duplicates of `existing` and of earlier rows are skipped."""
    plan = ImportPlan()
    reader = csv.DictReader(io.StringIO(text.removeprefix("\ufeff"), newline=""))
    header = [(name or "").strip() for name in (reader.fieldnames or [])]
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    unknown = [c for c in header if c not in COLUMNS + EXPORT_ONLY_COLUMNS]
    if missing or unknown:
        problem = f"missing column(s) {', '.join(missing)}" if missing else ""
        if unknown:
            problem += ("; " if problem else "") + f"unknown column(s) {', '.join(unknown)}"
        hint = " Is the file comma-separated?" if any(c in ";\t" for c in ",".join(header)) else ""
        plan.errors.append(
            f"line 1: {problem}. The header must name the columns {','.join(REQUIRED_COLUMNS)} "
            f"(optional: {','.join(OPTIONAL_COLUMNS)}).{hint}"
        )
        plan.bad_rows = 1
        return plan
    reader.fieldnames = header
    # Read first, so an oversized file is refused before any row is checked.
    numbered = [(reader.line_num, row) for row in reader]
    if len(numbered) > MAX_ROWS:
        plan.errors.append(
            f"the file has {len(numbered)} rows, over the limit of {MAX_ROWS}; split it"
        )
        return plan
    seen = set(existing)
    for line, row in numbered:
        if None in row:
            plan.errors.append(f"line {line}: more cells than columns")
            plan.bad_rows += 1
            continue
        signer, problems = _check_row(row, letter)
        if problems:
            plan.errors.extend(f"line {line}: {problem}" for problem in problems)
            plan.bad_rows += 1
            continue
        keys = signer_keys(signer["name"], signer["email"])
        if (keys["name_key"], keys["email_key"]) in seen:
            plan.duplicates += 1
            continue
        seen.add((keys["name_key"], keys["email_key"]))
        plan.rows.append(signer)
    return plan


def _check_row(row: dict, letter: Letter) -> tuple[dict, list[str]]:
    """Validate one row with the sign-on form's own rules."""
    values = {k: _unneutralise(v or "") for k, v in row.items() if k in COLUMNS}
    form = SignatoryForm(formdata=MultiDict(values), meta={"csrf": False})
    form.validate()
    problems = [f"{name}: {error}" for name, errors in form.errors.items() for error in errors]
    signer = form.signer()
    try:
        signer["signed_at"] = _signed_at(values.get("signed_at", ""), letter)
    except (ValueError, OverflowError):
        problems.append(f"signed_at: {values['signed_at']!r} is not an ISO date or date-time")
    return signer, problems


def _signed_at(value: str, letter: Letter) -> datetime | None:
    """An ISO date or date-time; without an offset it is in the letter's time zone."""
    value = value.strip()
    if not value:
        return None
    if len(value) == 10:
        moment = datetime.combine(date.fromisoformat(value), time())
    else:
        moment = datetime.fromisoformat(value)
    moment = moment if moment.tzinfo else moment.replace(tzinfo=letter.timezone)
    moment.astimezone(UTC)  # raises OverflowError for moments that UTC cannot hold
    return moment


def _needs_quote(value: str) -> bool:
    # A value that already starts with the quote is quoted again, so that
    # `_unneutralise` can tell it from one we quoted.
    return value.startswith(_FORMULA_START) or (value.startswith("'") and _needs_quote(value[1:]))


def _neutralise(value: str) -> str:
    return "'" + value if _needs_quote(value) else value


def _unneutralise(value: str) -> str:
    """Undo `_neutralise`, so an exported file imports back unchanged."""
    return value[1:] if value.startswith("'") and _needs_quote(value[1:]) else value


def write_signatories(signatures: list[Signature], out: io.TextIOBase) -> None:
    """Write sign-ons with the import columns plus id and status, formula-safe."""
    writer = csv.writer(out)
    writer.writerow(EXPORT_ONLY_COLUMNS + COLUMNS)
    for s in signatures:
        cells = [
            s.signed_at.isoformat()
            if column == "signed_at"
            else _neutralise(str(getattr(s, column)))
            for column in COLUMNS
        ]
        writer.writerow([s.id, s.status.value, *cells])
