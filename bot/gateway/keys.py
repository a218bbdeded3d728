"""Typed keys of what the gateway application holds, shared by its handlers and channels."""

from __future__ import annotations

from aiohttp import ClientSession, web

from bot.gateway.limits import GatewayLimits
from bot.gateway.relay import Relay
from bot.personal_data.vault import Vault
from bot.support.desk import SupportDesk

RASA = web.AppKey("rasa_url", str)
HTTP = web.AppKey("http", ClientSession)  # one client session for Rasa and the channels' APIs
DESK = web.AppKey("desk", SupportDesk)  # handoffs, transcripts, agents' consoles
VAULT = web.AppKey("vault", Vault)
RELAY = web.AppKey("relay", Relay)  # every channel sends user messages through it
LIMITS = web.AppKey("limits", GatewayLimits)  # bot/gateway/limits.py, from the environment
