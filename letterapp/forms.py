"""Forms: the public sign-on form and the same fields for imported rows."""

import re
import unicodedata

from email_validator import EmailNotValidError, validate_email
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import (
    BooleanField,
    DateField,
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
from .letters import MAX_BODY, MAX_FRONT_MATTER, RECIPIENT_KINDS, SLUG, check_recipients
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
