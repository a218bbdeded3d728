"""initial schema: knowledge base, vault, support desk

Revision ID: 0001
Revises:
Create Date: 2026-11-28 23:40:43.077507
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "academie",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("rang", sa.Integer(), nullable=False),
        sa.Column("nom", sa.String(length=64), nullable=False),
        sa.Column("messagerie", sa.String(length=255), nullable=False),
        sa.Column("recuperation_mdp", sa.Text(), nullable=False),
        sa.Column("domaine", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("domaine"),
        sa.UniqueConstraint("nom"),
    )
    op.create_table(
        "categorie",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("rang", sa.Integer(), nullable=False),
        sa.Column("nom", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("nom"),
    )
    op.create_table(
        "evenement",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("cle", sa.String(length=64), nullable=False),
        sa.Column("libelle", sa.Text(), nullable=False),
        sa.Column("debut", sa.DateTime(), nullable=True),
        sa.Column("fin", sa.DateTime(), nullable=True),
        sa.Column("debut_avec_heure", sa.Boolean(), nullable=False),
        sa.Column("fin_avec_heure", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("cle"),
    )
    op.create_table(
        "groupe_categories",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("nom", sa.String(length=128), nullable=False),
        sa.Column("alias", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("nom"),
    )
    op.create_table(
        "kb_version",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("loaded_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "regle",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("cle", sa.String(length=64), nullable=False),
        sa.Column("valeur", sa.Text(), nullable=False),
        sa.Column("signification", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("cle"),
    )
    op.create_table(
        "reponse",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("rang", sa.Integer(), nullable=False),
        sa.Column("cle", sa.String(length=64), nullable=False),
        sa.Column("titre", sa.Text(), nullable=False),
        sa.Column("gabarit", sa.Text(), nullable=False),
        sa.Column("evenement_cle", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("cle"),
    )
    op.create_table(
        "scrutin",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("rang", sa.Integer(), nullable=False),
        sa.Column("sigle", sa.String(length=64), nullable=False),
        sa.Column("intitule", sa.Text(), nullable=False),
        sa.Column("role", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("sigle"),
    )
    op.create_table(
        "academie_alias",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("academie_id", sa.Integer(), nullable=False),
        sa.Column("nom", sa.String(length=128), nullable=False),
        sa.ForeignKeyConstraint(["academie_id"], ["academie.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "categorie_alias",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("categorie_id", sa.Integer(), nullable=False),
        sa.Column("nom", sa.String(length=128), nullable=False),
        sa.ForeignKeyConstraint(["categorie_id"], ["categorie.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "departement",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("academie_id", sa.Integer(), nullable=False),
        sa.Column("numero", sa.String(length=3), nullable=False),
        sa.Column("nom", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(["academie_id"], ["academie.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("numero"),
    )
    op.create_table(
        "eligibilite",
        sa.Column("categorie_id", sa.Integer(), nullable=False),
        sa.Column("scrutin_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["categorie_id"], ["categorie.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["scrutin_id"], ["scrutin.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("categorie_id", "scrutin_id"),
    )
    op.create_table(
        "vault_entries",
        sa.Column("sender_hash", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("ciphertext", sa.LargeBinary(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("sender_hash", "kind"),
    )
    op.create_index(
        op.f("ix_vault_entries_expires_at"), "vault_entries", ["expires_at"], unique=False
    )
    op.create_table(
        "support_agents",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("login", sa.String(length=64), nullable=False),
        sa.Column("display_name", sa.String(length=128), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("login"),
    )
    op.create_index(
        op.f("ix_support_agents_last_seen_at"), "support_agents", ["last_seen_at"], unique=False
    )
    op.create_table(
        "support_agent_sessions",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=False),
        sa.Column("csrf_token", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["agent_id"], ["support_agents.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("token_hash"),
    )
    op.create_index(
        op.f("ix_support_agent_sessions_expires_at"),
        "support_agent_sessions",
        ["expires_at"],
        unique=False,
    )
    op.create_table(
        "support_audit",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=True),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("conversation_id", sa.String(length=96), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["agent_id"],
            ["support_agents.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_support_audit_at"), "support_audit", ["at"], unique=False)
    op.create_table(
        "support_conversations",
        sa.Column("id", sa.String(length=96), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("address", sa.Text(), nullable=True),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("last_at", sa.DateTime(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["agent_id"],
            ["support_agents.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        op.f("ix_support_conversations_last_at"), "support_conversations", ["last_at"], unique=False
    )
    op.create_index(
        op.f("ix_support_conversations_state"), "support_conversations", ["state"], unique=False
    )
    op.create_table(
        "support_handoffs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("conversation_id", sa.String(length=96), nullable=False),
        sa.Column("reason", sa.String(length=16), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("taken_at", sa.DateTime(), nullable=True),
        sa.Column("taken_by", sa.Integer(), nullable=True),
        sa.Column("closed_at", sa.DateTime(), nullable=True),
        sa.Column("closed_by", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["closed_by"],
            ["support_agents.id"],
        ),
        sa.ForeignKeyConstraint(
            ["conversation_id"], ["support_conversations.id"], ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["taken_by"],
            ["support_agents.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        op.f("ix_support_handoffs_closed_at"), "support_handoffs", ["closed_at"], unique=False
    )
    op.create_index(
        op.f("ix_support_handoffs_created_at"), "support_handoffs", ["created_at"], unique=False
    )
    op.create_table(
        "support_turns",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("conversation_id", sa.String(length=96), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("role", sa.String(length=8), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("buttons", sa.Text(), nullable=True),
        sa.Column("intent", sa.String(length=64), nullable=True),
        sa.Column("confidence", sa.Float(), nullable=True),
        sa.Column("agent_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["agent_id"],
            ["support_agents.id"],
        ),
        sa.ForeignKeyConstraint(
            ["conversation_id"], ["support_conversations.id"], ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_support_turns_at"), "support_turns", ["at"], unique=False)
    op.create_index(
        "ix_support_turns_conversation", "support_turns", ["conversation_id", "id"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_support_turns_conversation", table_name="support_turns")
    op.drop_index(op.f("ix_support_turns_at"), table_name="support_turns")
    op.drop_table("support_turns")
    op.drop_index(op.f("ix_support_handoffs_created_at"), table_name="support_handoffs")
    op.drop_index(op.f("ix_support_handoffs_closed_at"), table_name="support_handoffs")
    op.drop_table("support_handoffs")
    op.drop_index(op.f("ix_support_conversations_state"), table_name="support_conversations")
    op.drop_index(op.f("ix_support_conversations_last_at"), table_name="support_conversations")
    op.drop_table("support_conversations")
    op.drop_index(op.f("ix_support_audit_at"), table_name="support_audit")
    op.drop_table("support_audit")
    op.drop_index(op.f("ix_support_agent_sessions_expires_at"), table_name="support_agent_sessions")
    op.drop_table("support_agent_sessions")
    op.drop_index(op.f("ix_support_agents_last_seen_at"), table_name="support_agents")
    op.drop_table("support_agents")
    op.drop_index(op.f("ix_vault_entries_expires_at"), table_name="vault_entries")
    op.drop_table("vault_entries")
    op.drop_table("eligibilite")
    op.drop_table("departement")
    op.drop_table("categorie_alias")
    op.drop_table("academie_alias")
    op.drop_table("scrutin")
    op.drop_table("reponse")
    op.drop_table("regle")
    op.drop_table("kb_version")
    op.drop_table("groupe_categories")
    op.drop_table("evenement")
    op.drop_table("categorie")
    op.drop_table("academie")
