"""The knowledge base: `kb/faq_fr.md` parsed, stored with SQLAlchemy, and queried."""

from bot.knowledge.store import Knowledge, default_knowledge, load_kb

__all__ = ["Knowledge", "default_knowledge", "load_kb"]
