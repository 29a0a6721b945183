"""Rate limits: `@limiter.limit(...)` on routes that strangers can hammer."""

import math
import os
import time

from flask import Flask, render_template, request
from flask_limiter import Limiter
from flask_limiter.errors import RateLimitExceeded
from flask_limiter.util import get_remote_address

from .names import fold_email

# Behind a reverse proxy, get_remote_address sees the proxy unless the app is
# wrapped in werkzeug's ProxyFix: then every visitor would share one limit.
limiter = Limiter(key_func=get_remote_address)

# Per letter and client: generous enough for one office behind one address.
SIGN_ON = "20 per minute; 200 per hour"
SIGN_ON_PER_EMAIL = "10 per hour"


def by_submitted_email(scope: str):
    """A rate-limit key: the folded email in the submitted form, whoever sends it."""

    def key() -> str:
        return f"{scope}-email:" + fold_email(request.form.get("email", ""))[:254]

    return key


def init_app(app: Flask) -> None:
    """Configure the limiter from the environment and show a friendly 429 page."""
    # Counts must be shared by all workers, so production sets a Redis URL.
    storage = os.environ.get("RATELIMIT_STORAGE_URI") or os.environ.get("REDIS_URL")
    app.config.setdefault("RATELIMIT_STORAGE_URI", storage or "memory://")
    # Load tests switch limits off with RATELIMIT_ENABLED=false.
    enabled = os.environ.get("RATELIMIT_ENABLED", "true").strip().lower() != "false"
    app.config.setdefault("RATELIMIT_ENABLED", enabled)
    limiter.init_app(app)
    app.register_error_handler(429, too_many_requests)


def _wait_text(seconds: int) -> str:
    """`a minute`, `12 minutes`, `an hour` or `3 hours`: about how long to wait."""
    minutes = math.ceil(seconds / 60)
    if minutes <= 1:
        return "a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = math.ceil(minutes / 60)
    return "an hour" if hours == 1 else f"{hours} hours"


def too_many_requests(error: Exception):
    """Ask the visitor to wait, saying for about how long."""
    current = limiter.current_limit if isinstance(error, RateLimitExceeded) else None
    seconds = max(1, int(current.reset_at - time.time())) if current else 60
    html = render_template("rate_limited.html", wait=_wait_text(seconds))
    return html, 429, {"Retry-After": str(seconds)}
