"""Train the Rasa model only when what it is trained from has changed.

`python -m bot.training` prints the path of an up-to-date model, training it if needed. The
model's name is a hash of its inputs (config, domain, training data, our NLU components, the
pinned packages), so an unchanged project never retrains and a changed one always does.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

from bot.config import REPO_ROOT

INPUTS = ("config.yml", "domain.yml", "requirements.lock", "data", "bot/nlu")
MODELS = REPO_ROOT / "models"


def fingerprint(root: Path = REPO_ROOT) -> str:
    """SHA-256 over the names and contents of every file the model is trained from."""
    digest = hashlib.sha256()
    for name in INPUTS:
        path = root / name
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for file in files:
            if "__pycache__" in file.parts:
                continue
            digest.update(str(file.relative_to(root)).encode() + b"\0")
            digest.update(file.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def ensure_model(out: Path = MODELS) -> Path:
    """Path of the model for the current inputs; trains it first when it does not exist."""
    model = out / f"{fingerprint()}.tar.gz"
    if model.exists():
        print(f"Modèle à jour : {model.relative_to(REPO_ROOT)}", file=sys.stderr)
        return model
    log = REPO_ROOT / "var" / "log" / "train.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    print(f"Entraînement du modèle (environ 10 minutes ; journal : {log})…", file=sys.stderr)
    started = time.monotonic()
    rasa = Path(sys.executable).parent / "rasa"
    with log.open("wb") as output:
        result = subprocess.run(
            [str(rasa), "train", "--out", str(out), "--fixed-model-name", model.name[:-7]],
            cwd=REPO_ROOT,
            stdout=output,
            stderr=subprocess.STDOUT,
            env={**os.environ, "RASA_TELEMETRY_ENABLED": "false"},
        )
    if result.returncode != 0 or not model.exists():
        tail = log.read_text(errors="replace")[-4000:]
        raise SystemExit(f"{tail}\nÉchec de l'entraînement du modèle (journal complet : {log}).")
    seconds = time.monotonic() - started
    (out / f"{model.name[:-7]}.train-seconds").write_text(f"{seconds:.1f}\n")
    print(f"Modèle entraîné en {seconds:.0f} s : {model.relative_to(REPO_ROOT)}", file=sys.stderr)
    return model


if __name__ == "__main__":
    print(ensure_model())
