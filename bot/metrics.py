"""What the gateway and the action server share for their `/metrics` (Prometheus text format,
through `prometheus_client`): who may read them, and the page itself.

Each process counts what happens in it; Prometheus scrapes every process and adds them up.
Labels are channels, outcomes, intent names, kinds of limit: never a conversation id, an
address or a text. `/metrics` answers requests from the host itself (a Prometheus, or an agent,
on the same machine); from elsewhere only with `Authorization: Bearer <METRICS_TOKEN>`
(without `METRICS_TOKEN`, loopback only). Behind a reverse proxy the gateway judges the client's
address through `X-Forwarded-For` (`bot/gateway/limits.py`), so the proxy's own loopback
address opens nothing.
"""

from __future__ import annotations

import hmac
import ipaddress

from prometheus_client import REGISTRY, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

from bot import config

FORBIDDEN = (
    "Accès aux métriques refusé : lisez-les depuis la machine elle-même, ou envoyez "
    "« Authorization: Bearer <METRICS_TOKEN> »."
)


def may_read_metrics(client_address: str | None, authorization: str | None) -> bool:
    """True for a client on this host, or one that sends the bearer `METRICS_TOKEN`."""
    token = config.metrics_token()
    if token and authorization:
        expected = f"Bearer {token}".encode()
        if hmac.compare_digest(authorization.encode(), expected):
            return True
    return is_loopback(client_address)


def is_loopback(address: str | None) -> bool:
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # ::ffff:127.0.0.1 on a dual-stack socket
    return ip.is_loopback


def exposition() -> tuple[bytes, str]:
    """Every metric of this process, and the media type of the text format: version 0.0.4,
    which every Prometheus 2 and 3 reads (our names need none of 1.0.0's escaping)."""
    return generate_latest(REGISTRY), CONTENT_TYPE_PLAIN_0_0_4
