"""Public aiohttp gateway: chat page and chat API in front of Rasa."""
