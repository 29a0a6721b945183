"""letter state: draft, open or closed, and the draft's preview link nonce

Revision ID: b5e1d0c7f3a2
Revises: a69eca203231
Create Date: 2026-11-23

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'b5e1d0c7f3a2'
down_revision = 'a69eca203231'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('letter_record', schema=None) as batch_op:
        # Letters that exist already are open, as they were before states.
        batch_op.add_column(sa.Column('state', sa.Enum('draft', 'open', 'closed', name='letterstate', native_enum=False, length=20), nullable=False, server_default='open'))
        batch_op.add_column(sa.Column('state_changed_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('preview_nonce', sa.String(length=32), nullable=True))


def downgrade():
    with op.batch_alter_table('letter_record', schema=None) as batch_op:
        batch_op.drop_column('preview_nonce')
        batch_op.drop_column('state_changed_at')
        batch_op.drop_column('state')
