"""The Rasa server validates action-server responses as before, with the schema checked once."""

from __future__ import annotations

import pytest
from jsonschema import ValidationError, validate
from rasa.core.actions.action import RemoteAction

import bot.nlu.components  # noqa: F401 - importing it is what applies the patch in Rasa
from bot import rasa_patches


def test_loading_our_components_patches_rasa():
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
