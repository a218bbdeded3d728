"""Training: a model is trained once for given inputs, even by two processes at the same time,
and the person waiting sees each component and DIET's progress with the time left.

The trainings here use a two-intent project (`tiny_project`, seconds to train), never the
assistant's own: what is tested is the cache and the progress, not understanding."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bot import training
from bot.config import REPO_ROOT
from bot.training import TrainingProgress, ensure_model, fingerprint, first_run_estimate

# Lines as `rasa train` writes them (Rasa 3.6.21; tqdm's bar rewrites itself with \r).
RASA_LOG = (
    "2026-12-07 14:31:21 INFO     rasa.cli.train  - Started validating domain and training "
    "data...\n"
    "2026-12-07 14:31:51 INFO     rasa.engine.training.hooks  - Starting to train component "
    "'CountVectorsFeaturizer'.\n"
    "2026-12-07 14:31:52 INFO     rasa.engine.training.hooks  - Finished training component "
    "'CountVectorsFeaturizer'.\n"
    "2026-12-07 14:31:52 INFO     rasa.engine.training.hooks  - Starting to train component "
    "'DIETClassifier'.\n"
    "Epochs:   0%|          | 0/60 [00:00<?, ?it/s]"
    + "".join(
        f"\rEpochs: {100 * n // 60:3d}%|█         | {n}/60 [{n // 3:02d}:{n % 3 * 20:02d}<"
        f"{(60 - n) // 3:02d}:00, 20.00s/it, t_loss=2.5, i_acc=0.99]"
        for n in range(1, 61)
    )
    + "\n2026-12-07 14:52:02 INFO     rasa.engine.training.hooks  - Finished training component "
    "'DIETClassifier'.\n"
    "2026-12-07 14:52:02 INFO     rasa.engine.training.hooks  - Restored component "
    "'RulePolicy' from cache.\n"
)


def progress_of(log: str, live: bool, chunk: int = 37) -> str:
    """What a person sees when `log` arrives `chunk` characters at a time."""
    shown: list[str] = []
    progress = TrainingProgress(shown.append, live=live)
    for start in range(0, len(log), chunk):
        progress.feed(log[start : start + chunk])
    progress.close()
    return "".join(shown)


def test_each_component_gets_a_line_and_diet_a_line_every_ten_percent():
    lines = progress_of(RASA_LOG, live=False).splitlines()
    assert lines[0].strip().startswith("validation des données")
    assert [line for line in lines if "CountVectorsFeaturizer" in line] == [
        "  CountVectorsFeaturizer : entraînement…",
        "  CountVectorsFeaturizer : terminé en 0 s",
    ]
    diet = [line for line in lines if line.startswith("  DIET :")]
    assert len(diet) == 11  # 0 %, 10 %, …, 100 %: a readable log, not 60 lines
    assert diet[3] == "  DIET : 30 % (18/60 époques, reste 14 min 00 s)"
    assert diet[-1] == "  DIET : 100 % (60/60 époques)"
    assert lines[-1] == "  RulePolicy : repris du cache"


def test_in_a_terminal_diet_progress_is_one_updating_line():
    shown = progress_of(RASA_LOG, live=True)
    diet_line = next(line for line in shown.split("\n") if "DIET :" in line)
    assert diet_line.count("\r\033[K") == 61  # rewritten in place at each epoch
    assert diet_line.endswith("  DIET : 100 % (60/60 époques)")
    assert "\n  DIETClassifier : terminé en" in shown  # the finished line starts a new line


def test_a_truncated_log_and_nul_bytes_do_not_break_the_progress():
    # Someone truncating the log while Rasa writes it leaves NUL bytes up to Rasa's offset.
    shown = progress_of("\0" * 500 + RASA_LOG[RASA_LOG.index("Epochs") :], live=False)
    assert "DIET : 100 % (60/60 époques)" in shown


def test_the_tiny_project_trains_once_and_is_then_reused(tiny_project, tmp_path, monkeypatch):
    out = tmp_path / "models"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    # Two processes need the same model at the same time: one trains, the other waits for it.
    code = (
        "import sys; from pathlib import Path; from bot.training import ensure_model; "
        "ensure_model(Path(sys.argv[1]), Path(sys.argv[2]))"
    )
    both = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(out), str(tiny_project)],
            cwd=tiny_project,
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    said = [process.communicate(timeout=300)[1] for process in both]
    assert [process.returncode for process in both] == [0, 0], said
    trained = [s for s in said if "Modèle entraîné en" in s]
    waited = [s for s in said if "Modèle entraîné par un autre processus" in s]
    assert (len(trained), len(waited)) == (1, 1), said
    assert "DIETClassifier : terminé en" in trained[0]
    assert "DIET : 100 % (5/5 époques)" in trained[0]
    model = out / f"{fingerprint(tiny_project)}.tar.gz"
    assert model.exists() and not list(out.glob("*.partial.tar.gz"))
    assert float((out / f"{fingerprint(tiny_project)}.train-seconds").read_text()) > 0

    # Same inputs later: the cached model, without starting Rasa.
    monkeypatch.setattr(training.subprocess, "Popen", _no_training)
    assert ensure_model(out, tiny_project) == model
    # A changed input is another model.
    (tiny_project / "domain.yml").write_text(
        (tiny_project / "domain.yml").read_text().replace("Bonjour !", "Salut !")
    )
    with pytest.raises(AssertionError, match="would train"):
        ensure_model(out, tiny_project)
    # Trained with DIET from Rasa's cache, it took seconds: not what the estimate should read.
    monkeypatch.undo()
    again = ensure_model(out, tiny_project)
    assert again != model and again.exists()
    assert not (out / f"{fingerprint(tiny_project)}.train-seconds").exists()


def _no_training(*args, **kwargs):
    raise AssertionError("would train")


def test_the_fingerprint_covers_every_input_and_nothing_else(tiny_project):
    before = fingerprint(tiny_project)
    (tiny_project / "README.md").write_text("not an input")
    (tiny_project / "data" / "__pycache__").mkdir()
    (tiny_project / "data" / "__pycache__" / "x.pyc").write_bytes(b"\0")
    assert fingerprint(tiny_project) == before
    (tiny_project / "data" / "more.yml").write_text('version: "3.1"\n')
    assert fingerprint(tiny_project) != before


def test_the_first_run_estimate_says_the_last_measured_times(tiny_project, tmp_path, monkeypatch):
    out = tmp_path / "models"
    out.mkdir()
    monkeypatch.setattr(training, "INSTALL_SECONDS", tmp_path / "install-seconds")
    nothing_measured = first_run_estimate(True, out, tiny_project)
    install = training.duration(training.FALLBACK_INSTALL_SECONDS)
    assert f"installation {install} (estimation)" in nothing_measured
    fallback = training.duration(training.FALLBACK_TRAIN_SECONDS)
    assert f"entraînement du modèle {fallback} (estimation)" in nothing_measured

    (tmp_path / "install-seconds").write_text("95.2\n")
    older, newer = out / "0000.train-seconds", out / "1111.train-seconds"
    older.write_text("1239.0\n")
    newer.write_text("151.4\n")
    os.utime(older, (time.time() - 3600, time.time() - 3600))
    measured = first_run_estimate(True, out, tiny_project)
    today = time.strftime("%d/%m/%Y")
    assert measured.startswith("Ce premier démarrage prendra environ 4 min 07 s sur cette machine")
    assert f"installation 1 min 35 s (mesurée ici le {today})" in measured
    assert f"entraînement du modèle 2 min 31 s (mesuré ici le {today})" in measured

    assert "installation" not in first_run_estimate(False, out, tiny_project)
    (out / f"{fingerprint(tiny_project)}.tar.gz").write_bytes(b"")  # the model is up to date
    assert first_run_estimate(False, out, tiny_project) == ""


def test_the_estimate_runs_without_the_virtual_environment():
    """`./scripts/run` asks for it before installing anything: the standard library only."""
    python = Path(sys.base_prefix) / "bin" / "python3"
    result = subprocess.run(
        [str(python), "-S", "-m", "bot.training", "--estimate", "--with-install"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "installation" in result.stderr
