"""Checks run before anything long starts (installing aside: before training the model and
before starting the Rasa servers): are PostgreSQL, Redis and the election portal reachable, is
the trained model readable. Each failure is one French sentence saying what is wrong and what
to do. The local mode (`python -m bot.startup_checks`, run by scripts/run) checks
`BOT_DATABASE_URL` when it is PostgreSQL, `PORTAL_URL` when set, and the model; the production
mode (`bot.production`) also `TRACKER_DATABASE_URL`, `PORTAL_DATABASE_URL` (simulated portal)
and `REDIS_URL`.

Each check gives up after `CONNECT_TIMEOUT_SECONDS`: a closed port answers at once, a filtered
one within that time.
"""

from __future__ import annotations

import sys
import tarfile
import zlib
from collections.abc import Mapping
from pathlib import Path

CONNECT_TIMEOUT_SECONDS = 3


def database_problems(env: Mapping[str, str], names: list[str]) -> list[str]:
    """One sentence per PostgreSQL server that the databases `names` (environment variables
    holding SQLAlchemy URLs) are on and that does not accept a connection. Other dialects
    (SQLite) need no server."""
    from sqlalchemy.engine import make_url

    servers: dict[str, list[str]] = {}
    for name in names:
        url = env.get(name, "")
        if not url:
            continue
        try:
            parsed = make_url(url)
        except Exception:  # SQLAlchemy's ArgumentError, or a bad port
            servers.setdefault(f"invalid:{name}", []).append(name)
            continue
        if parsed.drivername.startswith("postgresql"):
            # The databases are created if missing (bot.production.stack.ensure_database),
            # through the server's `postgres` database: that one must answer.
            admin = parsed.set(database="postgres")
            servers.setdefault(admin.render_as_string(hide_password=False), []).append(name)
    problems = []
    for server, variables in servers.items():
        if server.startswith("invalid:"):
            problems.append(
                f"{variables[0]} n'est pas une adresse de base de données valide "
                "(attendu : postgresql://utilisateur@hôte:port/base) : corrigez-la."
            )
            continue
        problem = _postgresql_problem(server, variables)
        if problem:
            problems.append(problem)
    return problems


def _postgresql_problem(url: str, variables: list[str]) -> str | None:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import SQLAlchemyError

    parsed = make_url(url)
    where = f"{parsed.host or 'localhost'}:{parsed.port or 5432}"
    named = ", ".join(variables)
    engine = create_engine(
        url,
        connect_args={"connect_timeout": CONNECT_TIMEOUT_SECONDS},
        hide_parameters=True,
    )
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except SQLAlchemyError as error:
        reason = str(getattr(error, "orig", error)).strip().splitlines()[0:1]
        detail = reason[0] if reason else type(error).__name__
        if "password authentication failed" in detail or "authentication" in detail:
            return (
                f"PostgreSQL ({where}) refuse l'utilisateur « {parsed.username} » : vérifiez "
                f"l'utilisateur et le mot de passe dans {named}."
            )
        return (
            f"PostgreSQL ne répond pas à {where} ({named}) : démarrez le serveur PostgreSQL "
            f"(par exemple `systemctl start postgresql`) ou corrigez {named}. "
            f"Détail : {detail}"
        )
    finally:
        engine.dispose()
    return None


def redis_problem(url: str, name: str = "REDIS_URL") -> str | None:
    """A sentence if the Redis server at `url` does not answer PING."""
    import redis

    try:
        client = redis.Redis.from_url(
            url,
            socket_connect_timeout=CONNECT_TIMEOUT_SECONDS,
            socket_timeout=CONNECT_TIMEOUT_SECONDS,
        )
    except ValueError:
        return f"{name} n'est pas une adresse Redis valide (attendu : redis://hôte:port/numéro)."
    where = "{host}:{port}".format(**client.connection_pool.connection_kwargs)
    try:
        client.ping()
    except redis.AuthenticationError:
        return f"Redis ({where}) refuse la connexion : vérifiez le mot de passe dans {name}."
    except redis.ResponseError as error:
        return f"Redis ({where}) refuse la base demandée dans {name} : {error}."
    except redis.RedisError as error:
        return (
            f"Redis ne répond pas à {where} ({name}) : démarrez le serveur Redis (par exemple "
            f"`systemctl start redis-server`) ou corrigez {name}. Détail : {error}"
        )
    finally:
        client.close()
    return None


def portal_problem(url: str, token: str) -> str | None:
    """A sentence if the election portal at `url` (`PORTAL_URL`) cannot be reached, or if its
    token is missing. Any HTTP answer counts as reachable: the real portal's status page may
    differ from the simulator's `/health`."""
    import requests

    if not token:
        return (
            "PORTAL_TOKEN n'est pas défini alors que PORTAL_URL l'est : indiquez le jeton "
            "d'accès au portail électoral, ou retirez PORTAL_URL pour utiliser le portail simulé."
        )
    try:
        requests.get(f"{url.rstrip('/')}/health", timeout=CONNECT_TIMEOUT_SECONDS)
    except requests.RequestException as error:
        return (
            f"Le portail électoral ne répond pas à {url} (PORTAL_URL) : vérifiez l'adresse et "
            "que le portail est joignable depuis cette machine, ou retirez PORTAL_URL pour "
            f"utiliser le portail simulé. Détail : {type(error).__name__}"
        )
    return None


def model_problem(model: Path) -> str | None:
    """A sentence if the trained model `model` exists but cannot be read (a truncated or
    damaged archive). A missing model is no problem: it is trained next."""
    if not model.exists():
        return None
    try:
        with tarfile.open(model, "r:gz") as archive:
            for _ in archive:  # reads the whole archive: a truncated one fails here
                pass
    except (tarfile.TarError, OSError, EOFError, zlib.error) as error:
        return (
            f"Le modèle {model} est illisible ({type(error).__name__}) : supprimez ce fichier, "
            "il sera réentraîné au prochain démarrage."
        )
    return None


def problems(mode: str, env: Mapping[str, str]) -> list[str]:
    """Every problem found for `mode` (`local` or `production`), the model last."""
    from bot.logs import settings_problem
    from bot.training import MODELS, fingerprint

    databases = ["BOT_DATABASE_URL"]
    if mode == "production":
        databases.append("TRACKER_DATABASE_URL")
        if not env.get("PORTAL_URL"):
            databases.append("PORTAL_DATABASE_URL")
    found = [settings_problem(env) or ""]
    found += database_problems(env, databases)
    if mode == "production":
        found.append(redis_problem(env.get("REDIS_URL", "")) or "")
    if env.get("PORTAL_URL"):
        found.append(portal_problem(env["PORTAL_URL"], env.get("PORTAL_TOKEN", "")) or "")
    found.append(model_problem(MODELS / f"{fingerprint()}.tar.gz") or "")
    return [problem for problem in found if problem]


def report(found: list[str]) -> int:
    """Print `found` on stderr, one paragraph each; the exit status (1 if any)."""
    for problem in found:
        print(f"Démarrage impossible : {problem}", file=sys.stderr)
    return 1 if found else 0


def main() -> int:
    import os

    return report(problems("local", os.environ))


if __name__ == "__main__":
    sys.exit(main())
