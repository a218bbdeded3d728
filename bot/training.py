"""Train the Rasa model only when what it is trained from has changed.

`python -m bot.training` prints the path of an up-to-date model, training it if needed. The
model's name is a hash of its inputs (config, domain, training data, our NLU components, the
pinned packages), so an unchanged project never retrains and a changed one always does.

While Rasa trains, its log (`var/log/train.log`) is read as it is written and turned into a few
lines on stderr: one per component, and DIET's progress with the time left. Two processes that
need the same model train it once: the second waits for the first (a lock in the models folder).
`python -m bot.training --estimate` says how long a first run takes on this machine, from the
last measured install and training. Only the standard library here: the estimate runs before
the virtual environment exists.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import IO

from bot.config import REPO_ROOT

# What the model is trained from; bot/knowledge/matching.py masks the names in the examples the
# linear classifier learns from (the knowledge base itself is read when the model starts).
INPUTS = (
    "config.yml",
    "domain.yml",
    "requirements.lock",
    "data",
    "bot/nlu",
    "bot/knowledge/matching.py",
)
MODELS = REPO_ROOT / "models"
# scripts/lib.sh writes how long the last `pip install -r requirements.lock` took here.
INSTALL_SECONDS = REPO_ROOT / "var" / "install-seconds"
# Estimates used when nothing was measured on this machine yet (2 cores, 2026-12-08, fresh
# clone, quiet machine: install of both environments 2 min 07 s; training from scratch 4 min
# 51 s to 5 min 02 s, DIET on length-bucketed batches).
FALLBACK_INSTALL_SECONDS = 127.0
FALLBACK_TRAIN_SECONDS = 300.0


def fingerprint(root: Path = REPO_ROOT) -> str:
    """SHA-256 over the names and contents of every file the model is trained from."""
    digest = hashlib.sha256()
    for name in INPUTS:
        path = root / name
        if not path.exists():  # a small test project has no bot/nlu or requirements.lock
            continue
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for file in files:
            if "__pycache__" in file.parts:
                continue
            digest.update(str(file.relative_to(root)).encode() + b"\0")
            digest.update(file.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def ensure_model(out: Path = MODELS, root: Path = REPO_ROOT) -> Path:
    """Path of the model for the project in `root`; trains it first when it does not exist.

    If another process is training the same models folder, waits for it (showing its
    progress) instead of training a second time."""
    model = out / f"{fingerprint(root)}.tar.gz"
    if model.exists():
        print(f"Modèle à jour : {_shown(model, root)}", file=sys.stderr)
        return model
    out.mkdir(parents=True, exist_ok=True)
    log = root / "var" / "log" / "train.log"
    with _training_lock(out, log):
        if model.exists():  # trained by the process we waited for
            print(
                f"Modèle entraîné par un autre processus : {_shown(model, root)}", file=sys.stderr
            )
            return model
        _train(model, root, log)
    return model


def _train(model: Path, root: Path, log: Path) -> None:
    log.parent.mkdir(parents=True, exist_ok=True)
    print(
        f"Entraînement du modèle ({training_estimate(model.parent)} ; journal : {log})…",
        file=sys.stderr,
    )
    started = time.monotonic()
    rasa = Path(sys.executable).parent / "rasa"
    # Rasa writes the archive in place: under another name, so a half-written one is never used.
    partial = model.parent / f"{model.name[:-7]}.partial.tar.gz"
    with log.open("wb") as output:
        training = subprocess.Popen(
            [
                str(rasa),
                "train",
                "--out",
                str(model.parent),
                "--fixed-model-name",
                partial.name,
            ],
            cwd=root,
            stdout=output,
            stderr=subprocess.STDOUT,
            env={**os.environ, "RASA_TELEMETRY_ENABLED": "false"},
        )
        progress = TrainingProgress()
        follow_log(log, progress, until=lambda: training.poll() is not None)
    if training.returncode != 0 or not partial.exists():
        tail = log.read_text(errors="replace")[-4000:]
        raise SystemExit(f"{tail}\nÉchec de l'entraînement du modèle (journal complet : {log}).")
    seconds = time.monotonic() - started
    partial.replace(model)
    if not any("DIET" in name for name in progress.restored):
        # What the next estimate reads: a training that reused DIET from Rasa's cache took
        # seconds, and would promise that to a fresh clone.
        (model.parent / f"{model.name[:-7]}.train-seconds").write_text(f"{seconds:.1f}\n")
    print(f"Modèle entraîné en {duration(seconds)} : {_shown(model, root)}", file=sys.stderr)


@contextlib.contextmanager
def _training_lock(out: Path, log: Path) -> Iterator[None]:
    """Held while training into `out`; a second process waits, following the first one's log."""
    with (out / ".training.lock").open("w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(
                f"Un autre processus entraîne déjà ce modèle : j'attends qu'il finisse "
                f"(journal : {log})…",
                file=sys.stderr,
            )
            follow_log(log, TrainingProgress(), until=lambda: _try_lock(lock))
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _try_lock(lock: IO[str]) -> bool:
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def follow_log(log: Path, progress: TrainingProgress, until: Callable[[], bool]) -> None:
    """Feed what is appended to `log` to `progress` until `until()` is true, then the rest."""
    offset = 0
    while True:
        finished = until()
        with contextlib.suppress(FileNotFoundError), log.open("rb") as stream:
            if stream.seek(0, os.SEEK_END) < offset:  # the file was truncated: start again
                offset = 0
            stream.seek(offset)
            chunk = stream.read()
            offset += len(chunk)
            progress.feed(chunk.decode("utf-8", errors="replace"))
        if finished:
            progress.close()
            return
        time.sleep(0.5)


# What `rasa train` writes (rasa.engine.training.hooks, and tqdm's bar for DIET's epochs).
COMPONENT = re.compile(
    r"(?P<event>Starting to train|Finished training|Restored) component '(?P<name>[^']+)'"
)
EPOCHS = re.compile(
    r"^Epochs:\s+(?P<percent>\d+)%.*?\|\s*(?P<done>\d+)/(?P<total>\d+)\s+"
    r"\[(?P<elapsed>[\d:]+)<(?P<left>[\d:?]+)"
)


class TrainingProgress:
    """Turns `rasa train`'s log into what a person reads: a line when a component starts and
    when it is done (with its time), and DIET's epochs as a percentage with the time left; in a
    terminal on one updating line, otherwise a line every 10 %."""

    def __init__(self, write: Callable[[str], None] | None = None, live: bool | None = None):
        self._write = write or _to_stderr
        self._live = sys.stderr.isatty() if live is None else live
        self._pending = ""
        self._started: dict[str, float] = {}
        self._last_tenth = -1
        self._updating = False  # a live line is on screen, not yet ended by a newline
        self.restored: list[str] = []  # components Rasa took from its cache

    def feed(self, text: str) -> None:
        lines = re.split(r"[\r\n]", self._pending + text.replace("\0", ""))
        self._pending = lines.pop()
        for line in lines:
            self._read(line)

    def close(self) -> None:
        if self._pending:
            self._read(self._pending)
            self._pending = ""
        self._end_live_line()

    def _read(self, line: str) -> None:
        if "Started validating domain and training data" in line:
            self._say("  validation des données d'entraînement, chargement des composants…")
        elif match := COMPONENT.search(line):
            self._component(match["event"], match["name"])
        elif match := EPOCHS.match(line.strip()):
            self._epochs(
                int(match["percent"]), int(match["done"]), int(match["total"]), match["left"]
            )

    def _component(self, event: str, name: str) -> None:
        self._end_live_line()
        if event == "Starting to train":
            self._started[name] = time.monotonic()
            self._last_tenth = -1
            self._say(f"  {name} : entraînement…")
        elif event == "Finished training":
            took = time.monotonic() - self._started.pop(name, time.monotonic())
            self._say(f"  {name} : terminé en {duration(took)}")
        else:
            self.restored.append(name)
            self._say(f"  {name} : repris du cache")

    def _epochs(self, percent: int, done: int, total: int, left: str) -> None:
        remaining = "" if "?" in left or done == total else f", reste {duration(_clock(left))}"
        text = f"  DIET : {percent} % ({done}/{total} époques{remaining})"
        if self._live:
            self._write(f"\r\033[K{text}")
            self._updating = True
        elif percent // 10 > self._last_tenth:
            self._last_tenth = percent // 10
            self._say(text)

    def _say(self, text: str) -> None:
        self._write(text + "\n")

    def _end_live_line(self) -> None:
        if self._updating:
            self._write("\n")
            self._updating = False


def _to_stderr(text: str) -> None:
    sys.stderr.write(text)
    sys.stderr.flush()


def _clock(text: str) -> float:
    """Seconds in tqdm's `mm:ss` or `h:mm:ss`."""
    seconds = 0.0
    for part in text.split(":"):
        seconds = seconds * 60 + int(part)
    return seconds


def duration(seconds: float) -> str:
    """« 45 s », « 3 min 05 s », « 1 h 02 min »."""
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def _shown(path: Path, root: Path) -> Path:
    return path.relative_to(root) if path.is_relative_to(root) else path


# --- how long a first run takes on this machine ----------------------------------------------


def last_measured(files: list[Path]) -> tuple[float, datetime] | None:
    """Seconds and date of the newest of these one-number files, if any."""
    newest = max((f for f in files if f.is_file()), key=lambda f: f.stat().st_mtime, default=None)
    if newest is None:
        return None
    with contextlib.suppress(ValueError):
        return float(newest.read_text().strip()), datetime.fromtimestamp(newest.stat().st_mtime)
    return None


def training_estimate(out: Path = MODELS) -> str:
    """« environ 20 min 39 s, mesuré ici le 07/12/2026 », or the stated fallback."""
    measured = last_measured(list(out.glob("*.train-seconds")))
    if measured is None:
        return (
            f"environ {duration(FALLBACK_TRAIN_SECONDS)}, estimation : aucun entraînement "
            "mesuré sur cette machine"
        )
    seconds, when = measured
    return f"environ {duration(seconds)}, mesuré ici le {when:%d/%m/%Y}"


def first_run_estimate(with_install: bool, out: Path = MODELS, root: Path = REPO_ROOT) -> str:
    """What `./scripts/run` says before installing and training; empty when neither is needed."""
    needs_training = not (out / f"{fingerprint(root)}.tar.gz").exists()
    if not (with_install or needs_training):
        return ""
    parts, total = [], 0.0
    if with_install:
        measured = last_measured([INSTALL_SECONDS])
        seconds = measured[0] if measured else FALLBACK_INSTALL_SECONDS
        total += seconds
        origin = f"mesurée ici le {measured[1]:%d/%m/%Y}" if measured else "estimation"
        parts.append(f"installation {duration(seconds)} ({origin})")
    if needs_training:
        measured = last_measured(list(out.glob("*.train-seconds")))
        seconds = measured[0] if measured else FALLBACK_TRAIN_SECONDS
        total += seconds
        origin = f"mesuré ici le {measured[1]:%d/%m/%Y}" if measured else "estimation"
        parts.append(f"entraînement du modèle {duration(seconds)} ({origin})")
    return (
        f"Ce premier démarrage prendra environ {duration(total)} sur cette machine "
        f"({os.cpu_count()} cœurs) : {' + '.join(parts)}, puis le démarrage des services."
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--estimate",
        action="store_true",
        help="dire combien de temps prendra le premier démarrage, sans rien faire",
    )
    parser.add_argument(
        "--with-install",
        action="store_true",
        help="avec --estimate : les dépendances sont aussi à installer",
    )
    arguments = parser.parse_args()
    if arguments.estimate:
        if text := first_run_estimate(arguments.with_install):
            print(text, file=sys.stderr)
    else:
        print(ensure_model())
