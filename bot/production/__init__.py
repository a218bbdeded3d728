"""Production mode: PostgreSQL (our database and Rasa's tracker store), Redis locks, several
Rasa replicas behind the gateway's sticky routing (`python -m bot.production`)."""
