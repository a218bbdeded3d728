# What the widget's browser test needs: Debian's Chromium and the npm packages of tests/browser
# (playwright-core drives the browser, axe-core checks accessibility). Sourced by scripts/test.
# shellcheck shell=bash

CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
BROWSER_DIR="${ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}/tests/browser"

ensure_browser() {
  if [ ! -x "$CHROMIUM" ]; then
    if ! install_debian_package chromium Chromium "une minute environ" || [ ! -x "$CHROMIUM" ]; then
      echo "ERREUR : impossible d'installer Chromium ($CHROMIUM) ; le test du widget dans un" >&2
      echo "navigateur ne peut pas tourner. Installez-le (apt-get install chromium) et relancez." >&2
      return 1
    fi
  fi
  if ! command -v npm >/dev/null 2>&1; then
    echo "ERREUR : npm est introuvable ; installez Node.js 20 (apt-get install nodejs npm)." >&2
    return 1
  fi
  local wanted stamp="$BROWSER_DIR/node_modules/.installed"
  wanted="$(sha256sum "$BROWSER_DIR/package-lock.json" | cut -c1-16)"
  if [ "$(cat "$stamp" 2>/dev/null)" = "$wanted" ]; then
    return 0
  fi
  echo "Installation des paquets npm du test navigateur (tests/browser, npm ci)…" >&2
  if ! (cd "$BROWSER_DIR" && npm ci --no-audit --no-fund --loglevel=error >&2); then
    echo "ERREUR : npm ci a échoué dans tests/browser ; vérifiez l'accès au registre npm." >&2
    return 1
  fi
  echo "$wanted" > "$stamp"
}
