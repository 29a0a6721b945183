"""Forms: the public sign-on form and the same fields for imported rows."""

import re
import unicodedata
from datetime import timedelta, timezone
from types import SimpleNamespace

from email_validator import EmailNotValidError, validate_email
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import (
    BooleanField,
    DateField,
    DateTimeLocalField,
    EmailField,
    HiddenField,
    IntegerField,
    RadioField,
    SelectField,
    StringField,
    TextAreaField,
    URLField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import (
    URL,
    DataRequired,
    InputRequired,
    Length,
    Optional,
    Regexp,
    ValidationError,
)

from . import delivery
from .fonts import missing_glyphs
from .letters import (
    MAX_BODY,
    MAX_FRONT_MATTER,
    RECIPIENT_KINDS,
    SLUG,
    Letter,
    check_recipients,
)
from .mail import LINE_BREAKS, recipient_address
from .models import Kind

# Bidi overrides and isolates can make a name display as something else.
_BIDI_CONTROLS = re.compile("[\u202a-\u202e\u2066-\u2069]")
_SPACES = re.compile(r"[^\S\x00-\x1f\x7f-\x9f\u2028\u2029]+")


def clean_text(value: str | None) -> str | None:
    """NFC-normalise and trim a text field; inner runs of spaces become one space.

    Line breaks and other controls are left in place for `plain_text` to refuse.
    """
    if value is None:
        return None
    return _SPACES.sub(" ", unicodedata.normalize("NFC", value)).strip(" ")


def plain_text(form, field) -> None:
    """Refuse characters that have no place in a name: controls, bidi overrides, private use."""
    value = field.data or ""
    if "\x00" in value:
        raise ValidationError(_("Null characters are not allowed."))
    if _BIDI_CONTROLS.search(value):
        raise ValidationError(
            _("Text-direction control characters (such as U+202E) are not allowed.")
        )
    for char in value:
        if unicodedata.category(char) in ("Cc", "Co", "Cs", "Cn", "Zl", "Zp"):
            raise ValidationError(
                _("The character U+%(code)04X is not allowed here.", code=ord(char))
            )


def printable(form, field) -> None:
    """Refuse what the PDF cannot draw, so the name never prints as empty boxes."""
    if missing := missing_glyphs(field.data or ""):
        shown = ", ".join(f"U+{ord(c):04X}" for c in missing)
        raise ValidationError(
            _("The letter's fonts cannot print these characters: %(chars)s.", chars=shown)
        )


class SignatoryForm(FlaskForm):
    """Who signs: the fields shared by the web form and imported rows."""

    kind = RadioField(
        _l("Signing as"),
        choices=[
            SelectChoice(Kind.ORGANIZATION.value, _l("An organisation")),
            SelectChoice(Kind.INDIVIDUAL.value, _l("An individual")),
        ],
        default=Kind.ORGANIZATION.value,
        validators=[
            InputRequired(_l("Choose whether you sign as an organisation or an individual."))
        ],
    )
    name = StringField(
        _l("Name as it should appear in the letter"),
        filters=[clean_text],
        validators=[
            DataRequired(_l("Enter the name as it should appear in the letter.")),
            Length(max=200, message=_l("The name can be at most 200 characters.")),
            plain_text,
            printable,
        ],
    )
    acronym = StringField(
        _l("Acronym (optional)"),
        filters=[clean_text],
        validators=[
            Optional(),
            Length(max=30, message=_l("The acronym can be at most 30 characters.")),
            plain_text,
            printable,
        ],
    )
    contact_name = StringField(
        _l("Contact person"),
        filters=[clean_text],
        validators=[
            Length(max=200, message=_l("The contact name can be at most 200 characters.")),
            plain_text,
        ],
    )
    email = EmailField(
        _l("Email (never shown publicly)"),
        filters=[clean_text],
        validators=[
            DataRequired(_l("Enter an email address.")),
            Length(max=254, message=_l("The email address can be at most 254 characters.")),
        ],
    )
    country = StringField(
        _l("Country (optional)"),
        filters=[clean_text],
        validators=[
            Length(max=100, message=_l("The country can be at most 100 characters.")),
            plain_text,
        ],
    )
    contact_title = StringField(
        _l("Title of the person signing (optional)"),
        filters=[clean_text],
        validators=[
            Length(max=200, message=_l("The title can be at most 200 characters.")),
            plain_text,
        ],
    )
    website = URLField(
        _l("Organisation website (optional)"),
        filters=[clean_text],
        validators=[
            Optional(),
            Length(max=300, message=_l("The website address can be at most 300 characters.")),
            URL(message=_l("Enter the website as a full address, e.g. https://example.org.")),
            plain_text,
        ],
    )
    affiliation = StringField(
        _l("Affiliation (optional)"),
        filters=[clean_text],
        validators=[
            Length(max=200, message=_l("The affiliation can be at most 200 characters.")),
            plain_text,
        ],
    )

    def validate_email(self, field) -> None:
        try:
            field.data = validate_email(field.data, check_deliverability=False).normalized
        except EmailNotValidError as error:
            raise ValidationError(
                _("This email address is not valid: %(error)s", error=error)
            ) from None

    def validate_acronym(self, field) -> None:
        if field.data and self.kind.data == Kind.INDIVIDUAL:
            raise ValidationError(
                _("Only organisations have an acronym; leave it empty for an individual.")
            )

    def validate_contact_name(self, field) -> None:
        if not field.data and self.kind.data == Kind.ORGANIZATION:
            raise ValidationError(_("Enter the name of the person signing for the organisation."))

    def validate_website(self, field) -> None:
        if field.data and not field.data.startswith(("https://", "http://")):
            raise ValidationError(_("The website address must start with https:// or http://."))

    def signer(self) -> dict:
        """The cleaned values of this form's signer fields, ready to store."""
        values = {name: self[name].data or "" for name in SIGNER_FIELDS if name in self}
        if "kind" in values and values["kind"] == Kind.INDIVIDUAL:
            values.update(acronym="", website="", contact_title="")
        return values


SIGNER_FIELDS = (
    "kind", "name", "acronym", "contact_name", "email", "country",
    "contact_title", "website", "affiliation",
)  # fmt: skip


class SignOnForm(SignatoryForm):
    """The public sign-on form."""

    authorised = BooleanField(_l("I am authorised to sign on behalf of this organisation."))
    consent = BooleanField(
        _l("I agree that this name is listed publicly as a signatory of the letter."),
        validators=[DataRequired(_l("You need to agree to be listed publicly to sign on."))],
    )
    updates_opt_in = BooleanField(
        _l("Keep my contact details after the letter is sent, to hear about its follow-up.")
    )
    # A honeypot: hidden from people, filled in by simple bots.
    homepage = StringField(_l("Leave this field empty"), validators=[Length(max=300)])

    def validate_authorised(self, field) -> None:
        if not field.data and self.kind.data == Kind.ORGANIZATION:
            raise ValidationError(
                _("Confirm that you are authorised to sign for the organisation.")
            )


class CorrectionForm(SignatoryForm):
    """A signer correcting their own sign-on; the email stays the one that was confirmed."""

    email = None


class ResendForm(FlaskForm):
    """Ask for the confirmation link again."""

    email = EmailField(
        _l("Your email address"),
        filters=[clean_text],
        validators=[
            DataRequired(_l("Enter an email address.")),
            Length(max=254, message=_l("The email address can be at most 254 characters.")),
        ],
    )


class ButtonForm(FlaskForm):
    """An empty form: a POST button protected by CSRF (confirm, withdraw, approve)."""


class RejectForm(FlaskForm):
    """Reject a sign-on; the reason is kept in the record and the audit log."""

    reason = StringField(
        "Reason",
        filters=[clean_text],
        validators=[
            DataRequired("Give a reason: it is kept for the other coordinators."),
            Length(max=500, message="The reason can be at most 500 characters."),
            plain_text,
        ],
    )


class LetterNameForm(FlaskForm):
    """How a signatory appears in the letter; empty restores the signer's own form."""

    letter_name = StringField(
        "In the letter as",
        filters=[clean_text],
        validators=[
            Length(max=250, message="The name can be at most 250 characters."),
            plain_text,
            printable,
        ],
    )


class MergeForm(FlaskForm):
    keep = IntegerField(validators=[InputRequired()])
    duplicate = IntegerField(validators=[InputRequired()])

    def validate_duplicate(self, field) -> None:
        if field.data == self.keep.data:
            raise ValidationError("A sign-on cannot be merged into itself.")


class ImportForm(FlaskForm):
    """Upload a CSV file, see every row checked, then import it."""

    file = FileField("CSV file (UTF-8, comma-separated)")
    csv_text = TextAreaField(validators=[Length(max=5_000_000)])


class ExportForm(FlaskForm):
    """Options of the exported PDF."""

    as_of = DateField("Signatories as of", validators=[InputRequired("Choose a date.")])
    notes = SelectField(
        "Notes",
        default="endnotes",
        choices=[
            SelectChoice("endnotes", "After the signatories (endnotes)"),
            SelectChoice("footnotes", "At the foot of each page"),
        ],
    )
    paper = SelectField(
        "Paper",
        default="a4",
        choices=[SelectChoice("a4", "A4"), SelectChoice("letter", "US Letter")],
    )
    # The letter's own language and its translations; set per letter by the view.
    language = SelectField("Language", default="", choices=[SelectChoice("", "The letter's own")])


class NewLetterForm(FlaskForm):
    slug = StringField(
        "Short name for the web address",
        filters=[clean_text],
        validators=[
            DataRequired("Choose a short name, e.g. civic-space-2026."),
            Regexp(
                rf"^{SLUG}$",
                message="Use lower-case letters, digits and hyphens, starting with a letter or digit.",
            ),
        ],
    )
    title = StringField(
        "Title",
        filters=[clean_text],
        validators=[DataRequired("Give the letter a title."), Length(max=300), plain_text],
    )
    date = DateField("Date of the letter", validators=[InputRequired("Choose a date.")])


class LetterTextForm(FlaskForm):
    """The whole letter file: front matter and Markdown body."""

    text = TextAreaField(
        "Letter file",
        validators=[
            DataRequired("The letter cannot be empty."),
            Length(max=MAX_FRONT_MATTER + MAX_BODY),
        ],
    )
    note = StringField("What changed (kept in the history)", filters=[clean_text],
                       validators=[Length(max=500), plain_text])  # fmt: skip
    minor = BooleanField("Minor change (a typo): signers need not confirm again")


def text_lines(text: str | None) -> list[str]:
    """The non-empty lines of a one-item-per-line text area, trimmed."""
    return [line.strip() for line in (text or "").replace("\r\n", "\n").split("\n") if line.strip()]


def plain_lines(form, field) -> None:
    """`plain_text` for each line of a text area."""
    for number, line in enumerate(text_lines(field.data), start=1):
        try:
            plain_text(form, SimpleNamespace(data=line))
        except ValidationError as error:
            raise ValidationError(f"Line {number}: {error}") from None


def _offset(minutes: int) -> str:
    sign = "-" if minutes < 0 else "+"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


# Every UTC offset in use, from -12:00 to +14:00 in quarter hours (Nepal is +05:45).
OFFSETS = [_offset(minutes) for minutes in range(-12 * 60, 14 * 60 + 1, 15)]
LINES = {"rows": 4, "spellcheck": "true"}


def _text(label: str, limit: int, required: str | None = None, **kwargs) -> StringField:
    """A one-line text field of the letter, with its length limit and a readable error."""
    needed = [DataRequired(required)] if required else [Optional()]
    return StringField(
        label,
        filters=[clean_text],
        validators=[*needed, Length(max=limit, message=f"{label} can be at most {limit} characters."),
                    plain_text],
        **kwargs,
    )  # fmt: skip


class LetterFieldsForm(FlaskForm):
    """The letter, one field per front-matter key, and its Markdown body.

    The delivery recipients are edited on the Deliver page and kept as they are.
    """

    title = _text("Title", 300, "Give the letter a title.")
    date = DateField("Date of the letter", validators=[InputRequired("Choose the letter's date.")])
    addressee = TextAreaField(
        "Addressee, one line each",
        validators=[DataRequired("Write whom the letter is to, one line each."),
                    Length(max=2000, message="The addressee can be at most 2000 characters."),
                    plain_lines],
        render_kw=LINES,
    )  # fmt: skip
    attn = TextAreaField(
        "ATTN (optional), one person a line",
        validators=[Length(max=2000, message="ATTN can be at most 2000 characters."), plain_lines],
        render_kw={**LINES, "rows": 3},
    )
    re = _text("Re", 300, "Write what the letter is about (the Re: line).")
    salutation = _text("Salutation", 200, "Write the salutation, e.g. Dear Minister,")
    closing = _text("Closing", 100, "Write the closing, e.g. Sincerely,")
    signatories_heading = _text(
        "Heading of the signatories", 200, "Write the heading above the signatories."
    )
    coalition = _text("Coalition (optional)", 300)
    language = _text("Language code", 35, "Give the letter's language, e.g. en or ko.")
    closes = DateTimeLocalField(
        "Sign-on closes (optional)", format="%Y-%m-%dT%H:%M",
        validators=[Optional()],
    )  # fmt: skip
    closes_offset = SelectField(
        "Time zone of the closing time", choices=[SelectChoice(o, f"UTC{o}") for o in OFFSETS],
        default="+00:00",
    )  # fmt: skip
    moderation = SelectField(
        "Moderation",
        choices=[
            SelectChoice("manual", "Manual: a coordinator approves each confirmed sign-on"),
            SelectChoice("auto", "Automatic: a confirmed sign-on is in the letter"),
        ],
    )
    signatory_format = SelectField(
        "Organisations appear as",
        choices=[
            SelectChoice("name-acronym", "Name (ACRONYM)"),
            SelectChoice("name", "Name"),
            SelectChoice("name-acronym-country", "Name (ACRONYM), Country"),
        ],
    )
    group_signatories = BooleanField("List organisations first, then individuals")
    noindex = BooleanField("Ask search engines not to index the letter's pages")
    body = TextAreaField(
        "Letter text (Markdown)",
        validators=[DataRequired("The letter text cannot be empty."),
                    Length(max=MAX_BODY, message=f"The text can be at most {MAX_BODY} characters.")],
        render_kw={"rows": 24, "spellcheck": "true"},
    )  # fmt: skip
    note = _text("What changed (kept in the history)", 500)
    minor = BooleanField("Minor change (a typo): signers need not confirm again")

    def fill(self, letter: Letter) -> None:
        """Show a saved letter in the fields."""
        for name in ("title", "date", "re", "salutation", "closing", "signatories_heading",
                     "coalition", "language", "moderation", "signatory_format",
                     "group_signatories", "noindex", "body"):  # fmt: skip
            self[name].data = getattr(letter, name)
        self.addressee.data = "\n".join(letter.addressee)
        self.attn.data = "\n".join(letter.attn)
        if letter.closes:
            self.closes.data = letter.closes.replace(tzinfo=None)
            self.closes_offset.data = letter.closes.isoformat()[-6:]

    def values(self) -> dict:
        """The front matter as the fields give it, for `format_letter`."""
        values = {
            name: self[name].data
            for name in ("title", "date", "re", "salutation", "closing", "signatories_heading",
                         "coalition", "language", "moderation", "signatory_format",
                         "group_signatories", "noindex")
        }  # fmt: skip
        values["coalition"] = values["coalition"] or ""
        values["addressee"] = text_lines(self.addressee.data)
        values["attn"] = text_lines(self.attn.data)
        values["closes"] = None
        if self.closes.data and self.closes_offset.data in OFFSETS:
            sign = -1 if self.closes_offset.data.startswith("-") else 1
            hours, minutes = self.closes_offset.data[1:].split(":")
            zone = timezone(sign * timedelta(hours=int(hours), minutes=int(minutes)))
            values["closes"] = self.closes.data.replace(tzinfo=zone)
        return values


def address_lines(text: str | None) -> list[str]:
    """One address per line; a lone CR stays in its line, for the address check to refuse."""
    lines = (text or "").replace("\r\n", "\n").split("\n")
    return [line.strip(" \t") for line in lines if line.strip(" \t")]


ADDRESSES = {"rows": 3, "cols": 72, "spellcheck": "false"}


class DeliveryForm(FlaskForm):
    """The recipients, one address per line, and the cover message."""

    to = TextAreaField("To", validators=[Length(max=20_000)], render_kw=ADDRESSES)
    cc = TextAreaField("Cc", validators=[Length(max=20_000)], render_kw=ADDRESSES)
    bcc = TextAreaField("Bcc", validators=[Length(max=20_000)], render_kw=ADDRESSES)
    reply_to = StringField(
        "Reply-To (optional)", filters=[clean_text], validators=[Length(max=254)]
    )
    subject = StringField(
        "Subject",
        filters=[clean_text],
        validators=[DataRequired("Enter a subject."), Length(max=300)],
    )
    cover = TextAreaField(
        "Cover message (Markdown)",
        validators=[DataRequired("Write the cover message."), Length(max=50_000)],
        render_kw={"rows": 12, "cols": 72},
    )

    def validate_subject(self, field) -> None:
        if LINE_BREAKS.search(field.data or ""):
            raise ValidationError(
                "The subject must be one line: a line break could add headers to the email."
            )
        plain_text(self, field)

    def validate_reply_to(self, field) -> None:
        if field.data:
            try:
                recipient_address("Reply-To", field.data)
            except ValueError as error:
                raise ValidationError(str(error)) from None

    def validate(self, extra_validators=None) -> bool:
        valid = super().validate(extra_validators)
        lists = {kind: address_lines(self[kind].data) for kind in RECIPIENT_KINDS}
        self.recipients, problems = check_recipients(lists)
        for where, message in problems:
            self[where.partition("[")[0]].errors.append(message)
        return valid and not problems

    def draft(self) -> delivery.Draft:
        return delivery.Draft(
            recipients=self.recipients,
            subject=self.subject.data,
            cover=self.cover.data.replace("\r\n", "\n"),
            reply_to=self.reply_to.data or "",
            edited=frozenset(),
        )


class SendForm(FlaskForm):
    """Send the previewed message; the digest tells if it changed since."""

    digest = HiddenField()
    checked = BooleanField("I have read the message above, and it is ready to go.")


class NotifyForm(FlaskForm):
    attach = BooleanField("Attach the PDF (otherwise each message links to it)")
