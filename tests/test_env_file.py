"""`.env.example` lists every setting the code reads, and `.env` is read by the run commands as
the README says: comments and quotes understood, the environment winning, a bad line refused."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from bot.config import REPO_ROOT

EXAMPLE = REPO_ROOT / ".env.example"

# Upper-case names in the code that are not settings a person sets: placeholders of redacted
# values, a limit constant, what our launchers set for their children, Rasa's telemetry switch.
NOT_SETTINGS = {
    "DATE_MASQUEE",
    "NUMEN_MASQUE",
    "TELEPHONE_MASQUE",
    "MAX_MESSAGE_CHARS",
    "LOG_SERVICE",
    "RASA_TELEMETRY_ENABLED",
}


def names_in_code() -> set[str]:
    names: set[str] = set()
    for path in (REPO_ROOT / "bot").rglob("*.py"):
        names |= set(re.findall(r"[\"']([A-Z][A-Z0-9]+(?:_[A-Z0-9]+)+)[\"']", path.read_text()))
    return names - NOT_SETTINGS


def names_in_example() -> set[str]:
    return set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", EXAMPLE.read_text(), flags=re.M))


def test_every_setting_the_code_reads_is_in_env_example():
    missing = names_in_code() - names_in_example()
    assert not missing, f"absent de .env.example : {sorted(missing)}"


def test_env_example_names_only_settings_the_code_reads():
    scripts = " ".join(p.read_text() for p in (REPO_ROOT / "scripts").iterdir() if p.is_file())
    unknown = {name for name in names_in_example() - names_in_code() if name not in scripts}
    assert not unknown, f"lus nulle part : {sorted(unknown)}"


SETTING_LINE = re.compile(r"^#?\s*[A-Z][A-Z0-9_]+=")


def test_every_setting_is_explained_above_it():
    lines = EXAMPLE.read_text().splitlines()
    for number, line in enumerate(lines):
        if SETTING_LINE.match(line):
            above = number - 1
            while above >= 0 and SETTING_LINE.match(lines[above]):
                above -= 1  # a group of settings under one explanation
            explanation = lines[above] if above >= 0 else ""
            assert explanation.startswith("# ") and len(explanation) > 10, (
                f"ligne {number + 1} sans explication : {line}"
            )


def loaded(env_file: Path, **environment: str) -> tuple[int, dict[str, str], str]:
    script = f'source scripts/lib.sh; load_env_file "{env_file}"; env -0'
    result = subprocess.run(
        ["bash", "-c", script],
        cwd=REPO_ROOT,
        capture_output=True,
        env={"PATH": "/usr/bin:/bin", **environment},
    )
    pairs = [item.split("=", 1) for item in result.stdout.decode().split("\0") if "=" in item]
    return result.returncode, dict(pairs), result.stderr.decode()


def test_env_file_values_comments_quotes_and_the_environment_wins(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text(
        "# a comment\n"
        "\n"
        "GATEWAY_PORT=8181  # the widget's port\r\n"
        'BOT_NOW="2018-11-30T12:00"\n'
        "export LOG_FORMAT='json'\n"
        "PORTAL_TOKEN=a#b\n"
        "GATEWAY_HOST=0.0.0.0\n"
        "LOG_LEVEL=DEBUG"  # no final newline
    )
    code, env, _ = loaded(env_file, GATEWAY_HOST="127.0.0.1")
    assert code == 0
    assert env["GATEWAY_PORT"] == "8181"
    assert env["BOT_NOW"] == "2018-11-30T12:00"
    assert env["LOG_FORMAT"] == "json"
    assert env["PORTAL_TOKEN"] == "a#b"  # « # » starts a comment only after a space
    assert env["GATEWAY_HOST"] == "127.0.0.1"  # already set: the environment wins
    assert env["LOG_LEVEL"] == "DEBUG"


def test_a_bad_line_is_refused_in_french_with_its_number(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("GATEWAY_PORT=8181\nceci n'est pas un réglage\n")
    code, _, error = loaded(env_file)
    assert code != 0
    assert "Ligne 2" in error and "NOM=valeur" in error


def test_the_example_itself_loads_and_sets_nothing(tmp_path):
    # Every line of the example is commented out: copied as it is, it changes no default.
    code, env, _ = loaded(EXAMPLE)
    assert code == 0
    assert not names_in_example() & set(env)
