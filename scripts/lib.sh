# Shared by scripts/run, scripts/test and scripts/benchmark: find Python 3.10, make the venv.
# shellcheck shell=bash
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="$ROOT/.venv"
PY="$VENV/bin/python"
export RASA_TELEMETRY_ENABLED=false
export SQLALCHEMY_SILENCE_UBER_WARNING=1
export PYTHONDONTWRITEBYTECODE=1

find_python310() {
  local candidate
  for candidate in "${PYTHON310:-}" python3.10 "$(command -v pyenv >/dev/null && pyenv root)/versions/"3.10*/bin/python3.10 /usr/local/bin/python3.10 /usr/bin/python3.10; do
    [ -n "$candidate" ] || continue
    if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c 'import sys, venv; assert sys.version_info[:2] == (3, 10)' 2>/dev/null; then
      command -v "$candidate"
      return 0
    fi
  done
  cat >&2 <<'MSG'
Python 3.10 est introuvable (Rasa 3.6 ne fonctionne qu'avec Python 3.8 à 3.10).
Installez-le, puis relancez :
  - avec pyenv :        pyenv install 3.10   (le fichier .python-version le sélectionne)
  - Debian / Ubuntu :   apt-get install python3.10 python3.10-venv
Ou indiquez son chemin : PYTHON310=/chemin/vers/python3.10 ./scripts/run
MSG
  return 1
}

ensure_venv() {
  local wanted
  wanted="$(sha256sum requirements.lock | cut -c1-16)"
  if [ -x "$PY" ] && [ "$(cat "$VENV/.installed" 2>/dev/null)" = "$wanted" ]; then
    return 0
  fi
  if [ ! -x "$PY" ]; then
    local python
    python="$(find_python310)"
    echo "Création de l'environnement Python ($python -> .venv)…" >&2
    "$python" -m venv "$VENV"
  fi
  echo "Installation des dépendances (requirements.lock, 2 à 3 minutes la première fois)…" >&2
  "$PY" -m pip install --quiet --disable-pip-version-check -r requirements.lock >&2
  echo "$wanted" > "$VENV/.installed"
}
