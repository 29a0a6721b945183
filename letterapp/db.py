"""The database handle, SQLite tuning, migrations, and what a busy database answers."""

import fcntl
import random
import re
import sqlite3
import time
from pathlib import Path

import sqlalchemy as sa
from flask import Flask, current_app, g, render_template_string
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import DeclarativeBase

MIGRATIONS = Path(__file__).parent / "migrations"
BUSY_TIMEOUT_MS = 5000  # how long a writer waits for another before giving up
RETRY_AFTER_SECONDS = 5
# Statements that only read; anything else opens the write transaction.
_READ = re.compile(r"\s*(SELECT|PRAGMA|EXPLAIN)\b", re.IGNORECASE)


class Base(DeclarativeBase):
    # Named constraints let Alembic alter them on SQLite and PostgreSQL alike.
    metadata = sa.MetaData(
        naming_convention={
            "ix": "ix_%(column_0_label)s",
            "uq": "uq_%(table_name)s_%(column_0_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )


db = SQLAlchemy(model_class=Base)
migrate = Migrate(directory=str(MIGRATIONS), render_as_batch=True)


# SQLite: one writer at a time, and readers never wait.
#
# WAL lets readers go on while one worker writes. Python's driver would open a
# deferred transaction, which fails at once, busy timeout or not, when it read
# before another worker's write and then writes itself. So, after SQLAlchemy's
# pysqlite recipe, we emit the BEGIN: reads run outside any transaction, and the
# first write of a transaction starts it with BEGIN IMMEDIATE, which takes the
# write lock up front.
#
# Waiting writers then queue on a lock file beside the database, in 1 ms steps:
# SQLite's own busy handler sleeps up to 100 ms between tries, leaving the lock
# free while workers sleep (a third of the sign-on rate, measured). Processes
# that write without this code (the sqlite3 shell) are still waited for by the
# busy timeout.


def _tune_sqlite(dbapi_connection, connection_record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()
    dbapi_connection.isolation_level = None  # the driver emits no BEGIN of its own


def _begin(connection: sa.Connection) -> None:
    connection.info["begin_pending"] = True


def _begin_before_write(connection, cursor, statement, parameters, context, executemany):
    info = connection.info
    if not info.get("begin_pending") or _READ.match(statement):
        return
    info["begin_pending"] = False
    _take_write_lock(connection)
    try:
        cursor.execute("BEGIN IMMEDIATE")
    except BaseException:
        _release_write_lock(info)
        raise


def _take_write_lock(connection: sa.Connection) -> None:
    info = connection.info
    if "write_lock" not in info:
        database = connection.engine.url.database
        on_disk = database and database != ":memory:"
        info["write_lock"] = open(f"{database}-writers", "ab") if on_disk else None  # noqa: SIM115
    if info["write_lock"] is None:
        return
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            fcntl.flock(info["write_lock"], fcntl.LOCK_EX | fcntl.LOCK_NB)
            info["write_locked"] = True
            return
        except BlockingIOError:
            if time.monotonic() > deadline:
                busy = sqlite3.OperationalError("database is locked")
                busy.sqlite_errorcode = sqlite3.SQLITE_BUSY
                raise busy from None
            time.sleep(0.001)


def _release_write_lock(info: dict) -> None:
    if info.pop("write_locked", False):
        fcntl.flock(info["write_lock"], fcntl.LOCK_UN)


def _commit(connection: sa.Connection) -> None:
    # Commit here, then let the next writer in; SQLAlchemy's own commit that
    # follows finds no transaction open and does nothing.
    connection.info["begin_pending"] = False
    if connection.info.get("write_locked"):
        try:
            connection.connection.dbapi_connection.commit()
        finally:
            _release_write_lock(connection.info)


def _rollback(connection: sa.Connection) -> None:
    connection.info["begin_pending"] = False
    if connection.info.get("write_locked"):
        try:
            connection.connection.dbapi_connection.rollback()
        finally:
            _release_write_lock(connection.info)


def _checkin(dbapi_connection, connection_record) -> None:
    _release_write_lock(connection_record.info)  # never leave the lock with an idle connection


def is_busy(error: OperationalError) -> bool:
    """Whether the database refused for now (locked, or a PostgreSQL conflict) and may not next."""
    code = getattr(error.orig, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
    return (getattr(error.orig, "sqlstate", None) or "").startswith("40")  # serialization


BUSY_PAGE = """{% extends "base.html" %}{% block title %}Busy{% endblock %}{% block content %}
<h1>Too many requests at once</h1>
<p>We could not save or read this just now. Please try again in a few seconds.</p>
{% endblock %}"""


def database_busy(error: OperationalError):
    """Try the request once more after a short pause if the database was busy; else 503."""
    db.session.rollback()
    if is_busy(error) and not g.get("database_retried"):
        g.database_retried = True
        time.sleep(random.uniform(0.05, 0.25))
        try:
            return current_app.dispatch_request()
        except Exception as again:  # noqa: BLE001 - handled as if raised the first time
            return current_app.handle_user_exception(again)
    # One line, without the statement's parameters: they may hold a signer's details.
    reason = (str(error.orig) or type(error.orig).__name__).splitlines()[0]
    current_app.logger.warning("database unavailable: %s", reason)
    return render_template_string(BUSY_PAGE), 503, {"Retry-After": str(RETRY_AFTER_SECONDS)}


def init_app(app: Flask) -> None:
    db.init_app(app)
    migrate.init_app(app, db)
    app.register_error_handler(OperationalError, database_busy)
    with app.app_context():
        if db.engine.dialect.name == "sqlite":
            sa.event.listen(db.engine, "connect", _tune_sqlite)
            sa.event.listen(db.engine, "begin", _begin)
            sa.event.listen(db.engine, "before_cursor_execute", _begin_before_write)
            sa.event.listen(db.engine, "commit", _commit)
            sa.event.listen(db.engine, "rollback", _rollback)
            sa.event.listen(db.engine, "checkin", _checkin)
