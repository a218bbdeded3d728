"""The Rasa server validates action-server responses as before, with the schema checked once."""

from __future__ import annotations

import pytest
from jsonschema import ValidationError, validate
from rasa.core.actions.action import RemoteAction

from bot import rasa_patches
from bot.rasa_channel import GatewayInput


def test_the_server_that_serves_the_gateway_is_patched_when_it_creates_the_channel(monkeypatch):
    def unpatched(self, result):
        return True

    monkeypatch.setattr(RemoteAction, "_validate_action_result", unpatched)
    import bot.nlu.components  # noqa: F401 - importing a component no longer patches anything

    assert RemoteAction._validate_action_result is unpatched
    GatewayInput.from_credentials({"token": "t"})
    assert RemoteAction._validate_action_result is rasa_patches._validate_action_result


def test_valid_responses_pass_and_invalid_ones_fail_as_in_rasa():
    action = RemoteAction("action_answer_faq", None)
    valid = {
        "events": [{"event": "slot", "name": "academie", "value": "Lyon", "timestamp": None}],
        "responses": [{"text": "Bonjour", "buttons": []}],
    }
    assert action._validate_action_result(valid)
    for invalid in (
        {"events": "pas une liste"},
        {"events": [{"event": "slot", "name": 3}]},
        {"responses": [42]},
    ):
        with pytest.raises(ValidationError, match="Failed to validate Action server response"):
            action._validate_action_result(invalid)
        with pytest.raises(ValidationError):  # Rasa's own check refuses it too
            validate(invalid, RemoteAction.action_response_format_spec())


def test_rasa_waits_for_the_action_server_only_as_long_as_configured(monkeypatch):
    """A hung action server costs one bounded turn, not five minutes of the conversation."""
    import asyncio
    import time

    import rasa.core.actions.action
    from aiohttp import web
    from aiohttp.test_utils import TestServer
    from rasa.core.channels.channel import CollectingOutputChannel
    from rasa.core.nlg import TemplatedNaturalLanguageGenerator
    from rasa.shared.core.domain import Domain
    from rasa.shared.core.trackers import DialogueStateTracker
    from rasa.shared.exceptions import RasaException
    from rasa.utils.endpoints import EndpointConfig

    monkeypatch.setenv("ACTION_TIMEOUT_SECONDS", "1")
    rasa_patches.apply()
    assert rasa.core.actions.action.DEFAULT_REQUEST_TIMEOUT == 1.0

    async def hung(request: web.Request) -> web.Response:
        await asyncio.sleep(30)
        return web.json_response({})

    async def main() -> float:
        app = web.Application()
        app.router.add_post("/webhook", hung)
        async with TestServer(app) as server:
            action = RemoteAction(
                "action_answer_faq", EndpointConfig(str(server.make_url("/webhook")))
            )
            started = time.monotonic()
            with pytest.raises((RasaException, asyncio.TimeoutError)):  # processor catches both
                await action.run(
                    CollectingOutputChannel(),
                    TemplatedNaturalLanguageGenerator({}),
                    DialogueStateTracker("voter", []),
                    Domain.empty(),
                )
            return time.monotonic() - started

    assert asyncio.run(main()) < 5
    monkeypatch.delenv("ACTION_TIMEOUT_SECONDS")
    rasa_patches.apply()
    assert rasa.core.actions.action.DEFAULT_REQUEST_TIMEOUT == 12.0
