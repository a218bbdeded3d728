"""The tables our migrations manage: knowledge base, vault, support desk (not the simulated
portal's, which is a stand-in with its own database, nor Rasa's tracker store)."""

from bot.knowledge import models as knowledge_models
from bot.personal_data import vault
from bot.support import models as support_models

target_metadata = [
    knowledge_models.Base.metadata,
    vault.Base.metadata,
    support_models.Base.metadata,
]
