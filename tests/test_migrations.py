import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade

from letterapp.db import db
from letterapp.models import Signature, Status

FIRST = "a4a82c8498a1"


def test_upgrade_keeps_sign_ons_made_before_it(app):
    with app.app_context():
        downgrade(revision=FIRST)
        db.session.execute(
            sa.text(
                "INSERT INTO signature (letter_slug, kind, name, acronym, contact_name, email,"
                " country, status, signed_at, email_key, name_key) VALUES ('test-letter',"
                " 'organization', '김민지 모임', 'KM', 'Kim', 'a@example.org', '', 'approved',"
                " '2026-11-20 10:00:00', 'a@example.org', '김민지 모임')"
            )
        )
        db.session.commit()
        upgrade()
        [signature] = db.session.scalars(sa.select(Signature))
        assert signature.display_name == "김민지 모임 (KM)"
        assert signature.status == Status.APPROVED
        assert signature.website == "" and signature.authorised is False
        assert signature.messages_sent == 0


def test_upgrade_twice_changes_nothing(app):
    with app.app_context():
        upgrade()
        tables = sa.inspect(db.engine).get_table_names()
    assert {"signature", "user", "membership", "audit_entry", "outgoing_mail"} <= set(tables)


def test_migrations_match_the_models(app):
    with app.app_context(), db.engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), db.metadata)
    assert differences == []
