"""The layers of `bot/` only point down: each package's imports, read from its source.

Every import counts, at the top of a module or inside a function. The ground (`bot/config.py`,
`bot/db.py`, `bot/metrics.py`) may be imported by anyone.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from bot.config import REPO_ROOT

BOT = REPO_ROOT / "bot"
GROUND = {"bot", "bot.config", "bot.db", "bot.metrics"}

# package: the packages (or top-level libraries) it must never import.
FORBIDDEN = {
    "bot.knowledge": {
        "bot.answers",
        "bot.actions",
        "bot.support",
        "bot.gateway",
        "bot.channels",
        "rasa_sdk",
    },
    "bot.answers": {"rasa", "rasa_sdk", "bot.actions", "bot.support", "bot.gateway"},
    "bot.support": {"rasa", "rasa_sdk", "bot.actions"},
    "bot.gateway": {"rasa", "rasa_sdk", "bot.actions"},
    "bot.channels": {"rasa", "rasa_sdk", "bot.actions"},
}
# personal_data imports no other layer of bot/: only itself and the ground.
SELF_CONTAINED = "bot.personal_data"


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO_ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """Every module `path` imports (relative imports resolved)."""
    package = module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            found.add(module)
            found |= {f"{module}.{alias.name}" for alias in node.names}
    return found


def within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def modules_of(package: str) -> list[Path]:
    root = REPO_ROOT.joinpath(*package.split("."))
    if root.is_dir():
        return sorted(root.rglob("*.py"))
    return [root.with_suffix(".py")] if root.with_suffix(".py").exists() else []


def broken_rules() -> list[str]:
    broken = []
    for package, forbidden in FORBIDDEN.items():
        for path in modules_of(package):
            for name in sorted(imports(path)):
                for banned in forbidden:
                    if within(name, banned):
                        broken.append(f"{path.relative_to(REPO_ROOT)} imports {name}")
    for path in modules_of(SELF_CONTAINED):
        for name in sorted(imports(path)):
            ground = name == "bot" or any(within(name, g) for g in GROUND - {"bot"})
            if within(name, "bot") and not ground and not within(name, SELF_CONTAINED):
                broken.append(f"{path.relative_to(REPO_ROOT)} imports {name}")
    # `from x import y` is read as x and x.y: name x alone when both break a rule.
    return sorted(b for b in set(broken) if b.rpartition(".")[0] not in broken)


def test_the_layers_only_point_down():
    assert broken_rules() == []


@pytest.mark.parametrize(
    ("package", "source", "rule"),
    [
        ("bot.answers", "from rasa_sdk import Tracker\n", "rasa_sdk"),
        ("bot.knowledge", "from bot.actions import lookup\n", "bot.actions"),
        ("bot.support", "def later():\n    from bot.actions import base\n", "bot.actions"),
        ("bot.personal_data", "from bot.knowledge.store import make_engine\n", "bot.knowledge"),
        ("bot.gateway", "from . import console\nimport rasa.core\n", "rasa.core"),
    ],
)
def test_an_import_against_the_layers_is_named(monkeypatch, tmp_path, package, source, rule):
    """The check reads function-level imports too, and names the file and the import."""
    module = tmp_path.joinpath(*package.split("."), "intruder.py")
    module.parent.mkdir(parents=True)
    module.write_text(source, encoding="utf-8")
    monkeypatch.setattr(f"{__name__}.REPO_ROOT", tmp_path)
    assert any(line.endswith(rule) or f"imports {rule}" in line for line in broken_rules())
    assert all(str(Path(*package.split("."), "intruder.py")) in line for line in broken_rules())
