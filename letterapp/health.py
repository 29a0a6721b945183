"""`/healthz` for load balancers and platforms: 200 "ok" when the database answers."""

import sqlalchemy as sa
from flask import Blueprint, current_app
from sqlalchemy.exc import SQLAlchemyError

from .db import db
from .limits import limiter
from .security import talisman

bp = Blueprint("health", __name__)
# Written by every `db upgrade`: reading it checks the connection and that a schema is there.
_alembic_version = sa.table("alembic_version", sa.column("version_num"))
HEADERS = {"Content-Type": "text/plain; charset=utf-8", "Cache-Control": "no-store"}


@bp.get("/healthz")
@limiter.exempt
@talisman(force_https=False)  # health checks often come over plain HTTP from inside
def healthz():
    try:
        version = db.session.scalar(sa.select(_alembic_version.c.version_num))
    except SQLAlchemyError as error:
        db.session.rollback()
        reason = (str(error.orig or error) or type(error).__name__).splitlines()[0]
        current_app.logger.warning("healthz: database unavailable: %s", reason)
        return "database unavailable\n", 503, HEADERS
    if version is None:
        return "database not migrated\n", 503, HEADERS
    return "ok\n", 200, HEADERS
