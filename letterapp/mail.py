"""Email: built with the standard library, recorded in the outbox, sent over SMTP or to .eml files."""


def init_app(app) -> None:
    """Placeholder until the mail module lands (helper task in progress)."""
