# What several gateways need (BOT_GATEWAYS > 1): Debian's nginx in front of them
# (bot/production/proxy.py writes its configuration). Sourced by scripts/run-production.
# shellcheck shell=bash

_nginx_binary() {
  command -v nginx 2>/dev/null || { [ -x /usr/sbin/nginx ] && echo /usr/sbin/nginx; }
}

# Installs nginx when BOT_GATEWAYS asks for more than one gateway and it is missing.
ensure_proxy() {
  local gateways="${BOT_GATEWAYS:-1}"
  if ! [[ "$gateways" =~ ^[0-9]+$ ]] || [ "$gateways" -lt 1 ]; then
    echo "ERREUR : BOT_GATEWAYS doit être un nombre entier d'au moins 1 (reçu : « $gateways »)." >&2
    return 1
  fi
  [ "$gateways" -gt 1 ] || return 0
  if [ -z "$(_nginx_binary)" ]; then
    if ! install_debian_package nginx nginx "quelques secondes" || [ -z "$(_nginx_binary)" ]; then
      echo "ERREUR : impossible d'installer nginx ; il répartit les messages entre les" >&2
      echo "$gateways passerelles. Installez-le (apt-get install nginx) ou lancez BOT_GATEWAYS=1." >&2
      return 1
    fi
  fi
}
