"""One logging setup for every process we start: the gateway, the action servers, the simulated
portal, the Rasa servers (through `rasa run --logging-config-file`) and our commands.

Each line carries the time, the level, the process (`service`: gateway, rasa-0, actions-1…), the
logger's name and the message. Read from the environment:

- `LOG_LEVEL` (INFO);
- `LOG_FORMAT`: `text` (default) or `json`: one JSON object per line, with `time` (ISO 8601,
  UTC), `level`, `service`, `logger`, `message` (and `exception`), rendered by structlog's
  formatter for the standard library's records (structlog is already there for Rasa);
- `LOG_DIR`: when set, each process writes `LOG_DIR/<service>.log`, rotated by size
  (`LOG_MAX_BYTES`, 10 MB; `LOG_BACKUP_COUNT` older files, 5): the local mode. Unset, the lines go
  to standard output, for the supervisor to collect: the production mode.

The Rasa servers read the same configuration from a file (`rasa_config`); they are started as
`python -m rasa` from the repository, so that this module can be imported by it.
"""

from __future__ import annotations

import json
import logging
import logging.config
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType

TEXT_FORMAT = "%(asctime)s %(levelname)s {service} %(name)s: %(message)s"
DEFAULT_MAX_BYTES = 10 * 1024 * 1024
DEFAULT_BACKUP_COUNT = 5
# Sanic's loggers do not propagate to the root logger in the Rasa server (rasa sets
# `propagate = False`): they get our handler directly, everywhere.
SANIC_LOGGERS = ("sanic.root", "sanic.error", "sanic.access")
FORMATS = ("text", "json")
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def settings_problem(env: Mapping[str, str] | None = None) -> str | None:
    """A French sentence if a logging variable of `env` has a value we cannot use."""
    env = os.environ if env is None else env
    log_format = env.get("LOG_FORMAT", "text").strip().lower() or "text"
    if log_format not in FORMATS:
        return f"LOG_FORMAT vaut « {env['LOG_FORMAT']} » : indiquez text ou json."
    level = env.get("LOG_LEVEL", "INFO").strip() or "INFO"
    if level not in LEVELS:  # in capitals: Rasa reads LOG_LEVEL too, and fails on « info »
        return (
            f"LOG_LEVEL vaut « {env['LOG_LEVEL']} » : indiquez, en majuscules, {', '.join(LEVELS)}."
        )
    for name in ("LOG_MAX_BYTES", "LOG_BACKUP_COUNT"):
        value = env.get(name, "").strip()
        if value and not (value.isdigit() and int(value) > 0):
            return f"{name} vaut « {env[name]} » : indiquez un nombre entier positif."
    return None


def log_file(service: str, env: Mapping[str, str] | None = None) -> Path | None:
    """Where `service` writes its log: `LOG_DIR/<service>.log`, or None for standard output."""
    env = os.environ if env is None else env
    folder = env.get("LOG_DIR", "")
    return Path(folder) / f"{service}.log" if folder else None


def logging_config(service: str, env: Mapping[str, str] | None = None) -> dict:
    """The `logging.config.dictConfig` configuration of the process named `service`; a
    ValueError with a French sentence for a setting we cannot use."""
    env = os.environ if env is None else env
    problem = settings_problem(env)
    if problem:
        raise ValueError(problem)
    if env.get("LOG_FORMAT", "text").strip().lower() == "json":
        formatter: dict[str, object] = {"()": "bot.logs.json_formatter", "service": service}
    else:
        formatter = {"format": TEXT_FORMAT.format(service=service)}
    path = log_file(service, env)
    if path is None:
        handler: dict[str, object] = {
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stdout",
        }
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        handler = {
            "class": "logging.handlers.RotatingFileHandler",
            "filename": str(path),
            "maxBytes": int(env.get("LOG_MAX_BYTES") or DEFAULT_MAX_BYTES),
            "backupCount": int(env.get("LOG_BACKUP_COUNT") or DEFAULT_BACKUP_COUNT),
            "encoding": "utf-8",
        }
    level = env.get("LOG_LEVEL", "INFO").strip().upper() or "INFO"
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"line": formatter},
        "handlers": {"out": {**handler, "formatter": "line"}},
        "root": {"level": level, "handlers": ["out"]},
        "loggers": {name: {"handlers": ["out"], "propagate": False} for name in SANIC_LOGGERS},
    }


def json_formatter(service: str) -> logging.Formatter:
    """One JSON object per line for every standard-library record (ours, Rasa's, Sanic's,
    aiohttp's)."""
    import structlog

    def add_service(_logger: object, _method: str, event: dict) -> dict:
        event["service"] = service
        return event

    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[
            structlog.processors.TimeStamper(fmt="iso", utc=True, key="time"),
            structlog.stdlib.add_log_level,
            add_service,
            structlog.stdlib.add_logger_name,
        ],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.EventRenamer("message"),
            structlog.processors.format_exc_info,  # the traceback as one string field
            structlog.processors.JSONRenderer(ensure_ascii=False),  # French stays readable
        ],
    )


def configure(service: str) -> None:
    """Set up this process's logging as `service`, or as `LOG_SERVICE` when the launcher names
    it (`actions-1`); call once, first thing in `main`. Uncaught exceptions and Python warnings
    go to the same log."""
    try:
        config = logging_config(os.environ.get("LOG_SERVICE") or service)
    except ValueError as error:
        sys.exit(f"Journalisation impossible : {error}")
    logging.config.dictConfig(config)
    logging.captureWarnings(True)
    sys.excepthook = _log_uncaught


def _log_uncaught(
    kind: type[BaseException], error: BaseException, trace: TracebackType | None
) -> None:
    if issubclass(kind, KeyboardInterrupt):
        sys.__excepthook__(kind, error, trace)
        return
    logging.getLogger("uncaught").critical("uncaught exception", exc_info=(kind, error, trace))


def rasa_config(service: str, path: Path, env: Mapping[str, str] | None = None) -> Path:
    """Write the configuration of the Rasa server `service` to `path`, for
    `rasa run --logging-config-file` (JSON is YAML); returns `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(logging_config(service, env), indent=2) + "\n", encoding="utf-8")
    return path


if __name__ == "__main__":
    # `python -m bot.logs rasa-config SERVICE PATH`: scripts/run writes Rasa's configuration.
    if len(sys.argv) != 4 or sys.argv[1] != "rasa-config":
        sys.exit("usage : python -m bot.logs rasa-config SERVICE PATH")
    print(rasa_config(sys.argv[2], Path(sys.argv[3])))
