"""Configuration read from the environment, with safe development defaults."""

import os
import secrets
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def development_secret_key(instance_path: str) -> str:
    """A key generated once and kept in the instance folder, for when SECRET_KEY is unset.

    Keeping it on disk means sessions and CSRF tokens survive a restart in
    development without anyone having to invent a key.
    """
    path = Path(instance_path) / "secret_key"
    if not path.exists():
        # Link a complete file into place, so that workers starting together
        # all end up reading the same key.
        draft = path.with_name(f"secret_key.{os.getpid()}")
        draft.write_text(secrets.token_hex(32))
        draft.chmod(0o600)
        try:
            os.link(draft, path)
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    return path.read_text().strip()


def from_environment(instance_path: str) -> dict:
    """Build the app's configuration from environment variables."""
    default_db = "sqlite:///" + str(Path(instance_path) / "letterapp.sqlite3")
    database_url = os.environ.get("DATABASE_URL", default_db)
    # Hosting platforms still hand out the old "postgres://" scheme.
    if database_url.startswith("postgres://"):
        database_url = "postgresql+psycopg://" + database_url.removeprefix("postgres://")
    return {
        "SECRET_KEY": os.environ.get("SECRET_KEY"),
        "SQLALCHEMY_DATABASE_URI": database_url,
        # A connection dropped by a database restart or a proxy is replaced, not used;
        # errors and logs show statements without their values (signers' details).
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True, "hide_parameters": True},
        # Background jobs go to RQ when set; otherwise they run in a thread.
        "REDIS_URL": os.environ.get("REDIS_URL") or None,
        # Behind N reverse proxies: trust the last N X-Forwarded-For / -Proto values,
        # so rate limits see the client's address and links get the right scheme.
        "PROXY_FIX_X_FOR": int(os.environ.get("PROXY_FIX_X_FOR", "0")),
        "PROXY_FIX_X_PROTO": int(os.environ.get("PROXY_FIX_X_PROTO", "0")),
        "LETTERS_DIR": os.environ.get("LETTERS_DIR", str(PROJECT_ROOT / "letters")),
        # Flask's form parser does not bound URL-encoded bodies by itself.
        "MAX_CONTENT_LENGTH": int(os.environ.get("MAX_CONTENT_LENGTH", str(1024 * 1024))),
        # Days after a letter is sent before signers' contact details are purged.
        "PURGE_CONTACTS_DAYS": int(os.environ.get("PURGE_CONTACTS_DAYS", "90")),
        # Days a confirmation link stays valid.
        "CONFIRM_DAYS": int(os.environ.get("CONFIRM_DAYS", "7")),
        # Behind TLS in production: redirect to HTTPS and send HSTS.
        "FORCE_HTTPS": os.environ.get("FORCE_HTTPS", "false") == "true",
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SECURE": os.environ.get("SESSION_COOKIE_SECURE", "false") == "true",
    }
