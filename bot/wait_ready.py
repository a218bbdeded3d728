"""`python -m bot.wait_ready URL...`: wait until every URL answers HTTP 200 (or time out)."""

from __future__ import annotations

import sys
import time
import urllib.error
import urllib.request


def wait_ready(urls: list[str], timeout: float = 240.0) -> bool:
    deadline = time.monotonic() + timeout
    pending = list(urls)
    while pending and time.monotonic() < deadline:
        url = pending[0]
        try:
            with urllib.request.urlopen(url, timeout=2) as reply:
                if reply.status == 200:
                    pending.pop(0)
                    continue
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.5)
    for url in pending:
        print(f"pas de réponse : {url}", file=sys.stderr)
    return not pending


if __name__ == "__main__":
    sys.exit(0 if wait_ready(sys.argv[1:]) else 1)
