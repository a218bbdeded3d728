"""Rasa's own checks: the training data validates, and the test stories pass on the model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from bot.config import REPO_ROOT

RASA = str(Path(sys.executable).parent / "rasa")
ENV = {**os.environ, "RASA_TELEMETRY_ENABLED": "false"}


def test_rasa_data_validate_finds_no_error():
    result = subprocess.run(
        [RASA, "data", "validate"], cwd=REPO_ROOT, env=ENV, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


def test_every_topic_story_passes_end_to_end(tmp_path, live_bot):
    """tests/test_stories.yml: each FAQ topic, small talk, out of scope and the fallback."""
    out = tmp_path / "results"
    result = subprocess.run(
        [
            RASA, "test", "core", "--model", str(live_bot.model),
            "--stories", "tests/test_stories.yml", "--out", str(out),
            "--fail-on-prediction-errors",
        ],
        cwd=REPO_ROOT, env=ENV, capture_output=True, text=True,
    )  # fmt: skip
    failed = (out / "failed_test_stories.yml").read_text() if out.exists() else ""
    assert result.returncode == 0, failed or result.stderr[-3000:]
    report = json.loads((out / "story_report.json").read_text())
    assert report["conversation_accuracy"]["accuracy"] == 1.0
