"""signature.language: the language the signer read the letter in

Revision ID: b7e2c41f9d30
Revises: b5e1d0c7f3a2
Create Date: 2026-11-23

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'b7e2c41f9d30'
down_revision = 'b5e1d0c7f3a2'
branch_labels = None
depends_on = None


def upgrade():
    # Nullable: sign-ons made before it read the letter in its own language.
    with op.batch_alter_table('signature', schema=None) as batch_op:
        batch_op.add_column(sa.Column('language', sa.String(length=35), nullable=True))


def downgrade():
    with op.batch_alter_table('signature', schema=None) as batch_op:
        batch_op.drop_column('language')
