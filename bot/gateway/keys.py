"""Typed keys of what the gateway application holds, shared by its handlers and channels."""

from __future__ import annotations

from collections import OrderedDict

from aiohttp import ClientSession, web

from bot.gateway.relay import Relay
from bot.personal_data.vault import Vault

RASA = web.AppKey("rasa_url", str)
HTTP = web.AppKey("http", ClientSession)  # one client session for Rasa and the channels' APIs
HISTORY = web.AppKey("history", OrderedDict)
VAULT = web.AppKey("vault", Vault)
RELAY = web.AppKey("relay", Relay)  # every channel sends user messages through it
