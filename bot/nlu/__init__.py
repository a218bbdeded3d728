"""Custom Rasa NLU components (text normalisation, entities from the knowledge base)."""
