"""What every real-browser test needs: the headless Chromium and the npm packages of
`tests/browser/` (installed by `ensure_browser` in scripts/browser.sh), and where screenshots go."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bot.config import REPO_ROOT

BROWSER_DIR = REPO_ROOT / "tests" / "browser"
ARTIFACTS = REPO_ROOT / "tests" / "artifacts"
CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))


def require_browser() -> dict[str, str]:
    """Fail with what to run when Chromium or playwright-core is missing; else the settings
    every spec reads (where to save screenshots, which Chromium to launch)."""
    missing = [str(p) for p in (CHROMIUM, BROWSER_DIR / "node_modules" / "playwright-core")]
    missing = [p for p in missing if not Path(p).exists()]
    if missing:
        pytest.fail(
            f"missing {missing}: run ./scripts/test, or `source scripts/browser.sh; ensure_browser`"
        )
    return {"artifacts": str(ARTIFACTS), "chromium": str(CHROMIUM)}
