"""Measured fixes to Rasa 3.6.21, applied in the Rasa server when it creates our input channel
(`bot/rasa_channel.py`, the one the gateway talks to).

Rasa validates every action-server response with `jsonschema.validate(result, schema)`, which
re-checks the (large) events schema against its meta-schema on every call: profiled with py-spy,
that was 54 % of the Rasa server's CPU time for a FAQ answer. The same validation, with the
schema checked once, gives the same answers and errors (tests/test_rasa_patches.py).

Rasa waits 300 s for the action server (`DEFAULT_REQUEST_TIMEOUT`, read at each call): with a hung
action server, a voter's turn would hold its conversation's lock for five minutes while the
gateway gave up after 15 s. `ACTION_TIMEOUT_SECONDS` (default 12 s, under the gateway's wait)
bounds it; the turn then gets the service-error sentence (bot/rasa_channel.py).
"""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Any

import rasa.core.actions.action
from jsonschema import ValidationError
from jsonschema.validators import validator_for
from rasa.core.actions.action import RemoteAction
from rasa.shared.constants import DOCS_BASE_URL


@lru_cache(maxsize=1)
def _action_response_validator() -> Any:
    schema = RemoteAction.action_response_format_spec()
    validator_class = validator_for(schema)
    validator_class.check_schema(schema)
    return validator_class(schema)


def _validate_action_result(self: RemoteAction, result: dict[str, Any]) -> bool:
    try:
        _action_response_validator().validate(result)
        return True
    except ValidationError as error:  # the message Rasa's own version gives
        error.message += (
            ". Failed to validate Action server response from API, make sure your response from "
            f"the Action endpoint is valid. For more information about the format visit "
            f"{DOCS_BASE_URL}/custom-actions"
        )
        raise


def action_timeout_seconds() -> float:
    return float(os.environ.get("ACTION_TIMEOUT_SECONDS", "12"))


def apply() -> None:
    RemoteAction._validate_action_result = _validate_action_result
    rasa.core.actions.action.DEFAULT_REQUEST_TIMEOUT = action_timeout_seconds()
