"""Forms: the public sign-on form and the same fields for imported rows."""

import re
import unicodedata

from email_validator import EmailNotValidError, validate_email
from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, RadioField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import (
    DataRequired,
    InputRequired,
    Length,
    Optional,
    ValidationError,
)

from .fonts import missing_glyphs
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
        raise ValidationError("Null characters are not allowed.")
    if _BIDI_CONTROLS.search(value):
        raise ValidationError("Text-direction control characters (such as U+202E) are not allowed.")
    for char in value:
        if unicodedata.category(char) in ("Cc", "Co", "Cs", "Cn", "Zl", "Zp"):
            raise ValidationError(f"The character U+{ord(char):04X} is not allowed here.")


def printable(form, field) -> None:
    """Refuse what the PDF cannot draw, so the name never prints as empty boxes."""
    if missing := missing_glyphs(field.data or ""):
        shown = ", ".join(f"U+{ord(c):04X}" for c in missing)
        raise ValidationError(f"The letter's fonts cannot print these characters: {shown}.")


class SignatoryForm(FlaskForm):
    """Who signs: the fields shared by the web form and imported rows."""

    kind = RadioField(
        "Signing as",
        choices=[
            SelectChoice(Kind.ORGANIZATION.value, "An organisation"),
            SelectChoice(Kind.INDIVIDUAL.value, "An individual"),
        ],
        default=Kind.ORGANIZATION.value,
        validators=[InputRequired("Choose whether you sign as an organisation or an individual.")],
    )
    name = StringField(
        "Name as it should appear in the letter",
        filters=[clean_text],
        validators=[
            DataRequired("Enter the name as it should appear in the letter."),
            Length(max=200, message="The name can be at most 200 characters."),
            plain_text,
            printable,
        ],
    )
    acronym = StringField(
        "Acronym (optional)",
        filters=[clean_text],
        validators=[
            Optional(),
            Length(max=30, message="The acronym can be at most 30 characters."),
            plain_text,
            printable,
        ],
    )
    contact_name = StringField(
        "Contact person",
        filters=[clean_text],
        validators=[
            Length(max=200, message="The contact name can be at most 200 characters."),
            plain_text,
        ],
    )
    email = EmailField(
        "Email (never shown publicly)",
        filters=[clean_text],
        validators=[
            DataRequired("Enter an email address."),
            Length(max=254, message="The email address can be at most 254 characters."),
        ],
    )
    country = StringField(
        "Country (optional)",
        filters=[clean_text],
        validators=[
            Length(max=100, message="The country can be at most 100 characters."),
            plain_text,
        ],
    )

    def validate_email(self, field) -> None:
        try:
            field.data = validate_email(field.data, check_deliverability=False).normalized
        except EmailNotValidError as error:
            raise ValidationError(f"This email address is not valid: {error}") from None

    def validate_acronym(self, field) -> None:
        if field.data and self.kind.data == Kind.INDIVIDUAL:
            raise ValidationError(
                "Only organisations have an acronym; leave it empty for an individual."
            )

    def validate_contact_name(self, field) -> None:
        if not field.data and self.kind.data == Kind.ORGANIZATION:
            raise ValidationError("Enter the name of the person signing for the organisation.")

    def signer(self) -> dict[str, str]:
        """The cleaned values, ready for `signatures.add_signature`."""
        return {
            "kind": self.kind.data,
            "name": self.name.data,
            "acronym": self.acronym.data or "",
            "contact_name": self.contact_name.data or "",
            "email": self.email.data,
            "country": self.country.data or "",
        }


class SignOnForm(SignatoryForm):
    """The public sign-on form."""

    consent = BooleanField(
        "I agree that this name is listed publicly as a signatory of the letter.",
        validators=[DataRequired("You need to agree to be listed publicly to sign on.")],
    )
