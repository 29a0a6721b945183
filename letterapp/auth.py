"""Coordinator login: Flask-Login, rate-limited, and per-letter roles."""


def init_app(app) -> None:
    """Placeholder until the auth module lands (helper task in progress)."""
