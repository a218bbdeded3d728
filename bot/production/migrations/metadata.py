"""The tables our migrations manage: those of the assistant's database (knowledge base, vault,
support desk; see `bot.db`), not the simulated portal's, which is a stand-in with its own
database, nor Rasa's tracker store."""

from bot.db import ASSISTANT, schemas

target_metadata = schemas(ASSISTANT)
