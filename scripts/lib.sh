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

GATEWAY_VENV="$ROOT/.venv-gateway"
GATEWAY_PY="$GATEWAY_VENV/bin/python"

# An environment is current when it was installed from its lock file as it is now.
_env_is_current() { # venv, lock
  [ -x "$1/bin/python" ] && [ "$(cat "$1/.installed" 2>/dev/null)" = "$(sha256sum "$2" | cut -c1-16)" ]
}
venv_is_current() { _env_is_current "$VENV" requirements.lock; }

# What a first run will take on this machine, from the last measured install and training
# (bot/training.py); says nothing when the venv and the model are up to date.
first_run_estimate() {
  local python="$PY" install=""
  if ! venv_is_current; then
    install="--with-install"
    [ -x "$PY" ] || python="$(find_python310 2>/dev/null)" || return 0
  fi
  "$python" -m bot.training --estimate $install || true
}

ensure_venv() {
  _ensure_env "$VENV" requirements.lock install "$ROOT/var/install-seconds"
}

# The gateway's own environment (requirements-gateway.lock): the public port runs a current
# aiohttp, and this process cannot import Rasa (docs/security.md).
ensure_gateway_venv() {
  _ensure_env "$GATEWAY_VENV" requirements-gateway.lock install-gateway ""
}

_ensure_env() { # venv, lock, log name, file for the measured seconds (or "")
  local venv="$1" lock="$2" log="$ROOT/var/log/$3.log" seconds_file="$4"
  _env_is_current "$venv" "$lock" && return 0
  if [ ! -x "$venv/bin/python" ]; then
    local python
    python="$(find_python310)"
    echo "Création de l'environnement Python ($python -> ${venv#"$ROOT"/})…" >&2
    "$python" -m venv "$venv"
  fi
  local total started
  total="$(grep -cE '^[A-Za-z0-9]' "$lock")"
  mkdir -p "$ROOT/var/log"
  echo "Installation des dépendances : $total paquets ($lock ; journal : ${log#"$ROOT"/})…" >&2
  started=$SECONDS
  if ! "$venv/bin/python" -m pip install --disable-pip-version-check --progress-bar off -r "$lock" 2>&1 |
    tee "$log" | _install_progress "$total" "$venv"; then
    tail -n 15 "$log" >&2
    echo "ERREUR : l'installation des dépendances a échoué (journal complet : $log)." >&2
    return 1
  fi
  [ -z "$seconds_file" ] || echo "$((SECONDS - started))" > "$seconds_file"
  sha256sum "$lock" | cut -c1-16 > "$venv/.installed"
}

# Reads pip's output: a package counted at each « Collecting » or « Processing », then, while
# pip unpacks the wheels in silence, the packages already in site-packages every 2 seconds.
# In a terminal one line rewrites itself; otherwise a line every 10 %.
_install_progress() { # packages in the lock, venv
  local total="$1" line status collected=0 installing=0 baseline=0 done_now
  local site="$2/lib/python3.10/site-packages" phase="" shown=-1 started=$SECONDS
  _dist_infos() { find "$site" -maxdepth 1 -name '*.dist-info' 2>/dev/null | wc -l; }
  _show() { # phase, count, out of
    local count=$(($2 < $3 ? $2 : $3))
    if [ -t 2 ]; then
      printf '\r\033[K  %s : %d/%d paquets…' "$1" "$count" "$3" >&2
    elif [ "$1" != "$phase" ] || [ $((count * 10 / $3)) -gt "$shown" ]; then
      shown=$((count * 10 / $3))
      echo "  $1 : $count/$3 paquets…" >&2
    fi
    phase="$1"
  }
  while true; do
    if IFS= read -r -t 2 line; then
      case "$line" in
        *"(from "*) ;; # a dependency's own requirement, not a line of requirements.lock
        Collecting* | "Processing /"* | "Requirement already satisfied"*)
          collected=$((collected + 1))
          _show "Téléchargement" "$collected" "$total"
          ;;
        "Installing collected packages:"*)
          installing=$(($(tr -cd ',' <<< "$line" | wc -c) + 1))
          baseline="$(_dist_infos)"
          _show "Installation" 0 "$installing"
          ;;
        "Successfully installed"*)
          [ -t 2 ] && echo >&2
          phase=""
          echo "  $installing paquets installés ($((SECONDS - started)) s en tout)." >&2
          installing=0
          ;;
      esac
    else
      status=$?
      [ "$status" -gt 128 ] || break # end of pip's output (a timeout is > 128)
      if [ "$installing" -gt 0 ]; then
        done_now=$(($(_dist_infos) - baseline))
        _show "Installation" $((done_now < 0 ? 0 : done_now)) "$installing"
      fi
    fi
  done
  [ -t 2 ] && [ -n "$phase" ] && echo >&2
  return 0
}

# Settings from a `.env` file (copy .env.example): KEY=VALUE lines, `#` comments, optional quotes
# around the value. A variable already set in the environment wins over the file, so
# `BOT_NOW=… ./scripts/run` still pins the clock. Used by scripts/run and scripts/run-production.
load_env_file() { # [file]
  local file="${1:-$ROOT/.env}" line key value number=0
  [ -f "$file" ] || return 0
  while IFS= read -r line || [ -n "$line" ]; do
    number=$((number + 1))
    line="${line%$'\r'}"
    [[ "$line" =~ ^[[:space:]]*(#.*)?$ ]] && continue
    if [[ ! "$line" =~ ^[[:space:]]*(export[[:space:]]+)?([A-Z_][A-Z0-9_]*)=(.*)$ ]]; then
      echo "Ligne $number de $file illisible : attendu NOM=valeur (ou un commentaire commençant par #)." >&2
      return 1
    fi
    key="${BASH_REMATCH[2]}"
    value="${BASH_REMATCH[3]}"
    if [[ "$value" =~ ^\"(.*)\"[[:space:]]*$ || "$value" =~ ^\'(.*)\'[[:space:]]*$ ]]; then
      value="${BASH_REMATCH[1]}"
    else # unquoted: a « # » after a space starts a comment
      value="$(sed -E 's/[[:space:]]+#.*$//; s/[[:space:]]+$//' <<<"$value")"
    fi
    [ -n "${!key+x}" ] || export "$key=$value"
  done < "$file"
}

# A Debian package, when a program the commands need is missing (Chromium, nginx, PostgreSQL):
# as root, apt-get install, and once more after apt-get update if that fails; otherwise the sudo
# command to type. apt's output goes to var/log/apt.log.
install_debian_package() { # package, what to call it, how long it takes
  local log="$ROOT/var/log/apt.log"
  if [ "$(id -u)" != 0 ]; then
    echo "$2 est absent et il faut être root pour l'installer :" >&2
    echo "  sudo apt-get install -y $1" >&2
    return 1
  fi
  mkdir -p "$ROOT/var/log"
  echo "Installation de $2 (paquet Debian $1, $3 ; journal : ${log#"$ROOT"/})…" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$1" >> "$log" 2>&1 && return 0
  echo "Première tentative échouée : mise à jour de la liste des paquets (apt-get update)…" >&2
  apt-get update -q >> "$log" 2>&1 &&
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$1" >> "$log" 2>&1
}
