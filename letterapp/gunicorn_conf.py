"""gunicorn settings: `gunicorn -c letterapp/gunicorn_conf.py "letterapp:create_app()"`.

Command-line options given with -c override these.
"""

import multiprocessing
import os
import re

from gunicorn.glogging import Logger

# Sync workers: SQLite writes had far worse tails with threaded workers.
worker_class = "sync"
workers = int(os.environ.get("WEB_CONCURRENCY", 2 * multiprocessing.cpu_count()))
# A platform's PORT on every interface; else this machine only, behind a local proxy.
bind = f"0.0.0.0:{os.environ['PORT']}" if os.environ.get("PORT") else "127.0.0.1:8000"
# A 5,000-name PDF takes seconds to lay out; a worker is only killed well past that.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "120"))
# On restart, requests under way (a PDF among them) get this long to finish.
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "30"))
# No runtime control socket: one shared path in $HOME would clash between instances.
control_socket_disable = True
if os.path.isdir("/dev/shm"):
    worker_tmp_dir = "/dev/shm"  # the heartbeat file: never wait on a slow disk

accesslog = "-"
errorlog = "-"
# One line per request: time, method, path (tokens hidden), status, bytes, milliseconds.
access_log_format = '%(t)s "%(m)s %(U)s" %(s)s %(B)s %(M)sms'

# Segments that may identify a signer: a private link's token, or anything like an email.
_AFTER = {"confirm", "signon"}
_TOKEN_LIKE = re.compile(r"(?=.*[A-Z_])[A-Za-z0-9_.-]{20,}")
# The only values the access log may show: no address, query, referrer, agent or header.
_SAFE = {"t", "m", "s", "B", "b", "M", "D", "L", "T", "H", "p"}


def redact(path: str) -> str:
    """The path with private tokens and email-like segments replaced by `[hidden]`."""
    parts = path.split("/")
    for i, part in enumerate(parts):
        if (i and parts[i - 1] in _AFTER) or "@" in part or _TOKEN_LIKE.fullmatch(part):
            parts[i] = "[hidden]"
    return "/".join(parts)


class AccessLogger(Logger):
    """gunicorn's logger, holding back whatever could identify a signer."""

    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        safe = {key: value for key, value in atoms.items() if key in _SAFE}
        safe["U"] = redact(environ.get("PATH_INFO", ""))
        safe["r"] = f"{safe['m']} {safe['U']} {safe['H']}"
        return safe


logger_class = AccessLogger
