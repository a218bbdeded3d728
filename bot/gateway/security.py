"""Security defaults of every gateway response: headers, and a last-resort JSON error.

Headers: each page gets a Content Security Policy that allows only the gateway's own files (no
inline code, nothing from elsewhere) and `frame-ancestors 'none'`: the widget is embedded on
other sites by a script tag (`static/widget.js`), never in a frame, so no page of ours may be
framed (clickjacking). Other responses (JSON, scripts, styles, images) get a policy that allows
nothing at all, which only matters if a browser ever renders one as a document. The console
sets its own, stricter headers on its paths (`bot/gateway/console.py`); they are kept.

The catch-all turns an unexpected exception into a 500 with a French JSON sentence, and logs
the exception's type and stack without its message or the request's body (either may hold what
a user typed). It should never run: `tests/test_fuzz.py` sends malformed input to every
endpoint and checks that none gets a 500.
"""

from __future__ import annotations

import codecs
import logging
import mimetypes
import traceback
from collections.abc import Awaitable, Callable

from aiohttp import web

logger = logging.getLogger(__name__)

# The demo page and anything else rendered as a document: our own files only.
PAGE_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
# JSON, scripts, styles: never a document, so nothing is allowed.
RESOURCE_POLICY = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'"
COMMON_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",  # frame-ancestors for browsers that predate CSP level 2
    "Referrer-Policy": "no-referrer",
}
INTERNAL_ERROR = (
    "Une erreur inattendue s'est produite de notre côté : réessayez dans un instant. "
    "Si elle se répète, contactez l'assistance académique."
)

UNREADABLE_CHARSET = (
    "Requête illisible : l'encodage des caractères indiqué (charset) est inconnu. Envoyez le "
    "texte en UTF-8."
)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def setup_security(app: web.Application) -> None:
    """Add the headers to every response of `app`, and the catch-all around every handler."""
    app.middlewares.insert(0, unexpected_errors)  # outermost: also covers the other middlewares
    app.middlewares.insert(1, known_charset)
    app.on_response_prepare.append(security_headers)


async def security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """Set the headers a response has not set itself (the console sets stricter ones)."""
    is_page = _media_type(request, response).startswith("text/html")
    policy = PAGE_POLICY if is_page else RESOURCE_POLICY
    response.headers.setdefault("Content-Security-Policy", policy)
    for name, value in COMMON_HEADERS.items():
        response.headers.setdefault(name, value)


def _media_type(request: web.Request, response: web.StreamResponse) -> str:
    """The response's media type; for a 304 (no Content-Type), the one its path is served with:
    a browser copies the 304's headers onto its cached page, CSP included."""
    if "Content-Type" in response.headers:
        return response.content_type
    guessed, _ = mimetypes.guess_type(request.path)
    return guessed or ("text/html" if request.path.endswith("/") else "")


@web.middleware
async def unexpected_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException:
        raise  # aiohttp's own answers (404, 405, 413...) and the handlers' refusals
    except Exception as error:
        route = request.match_info.route.resource
        where = route.canonical if route is not None else "(no route)"
        stack = "".join(traceback.format_tb(error.__traceback__))
        # The type and the stack only: the message may quote what the user sent.
        logger.error(
            "unexpected %s on %s %s\n%s", type(error).__name__, request.method, where, stack
        )
        return web.json_response({"error": INTERNAL_ERROR}, status=500)


@web.middleware
async def known_charset(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A body in an unknown `charset` (`text/plain; charset=klingon`) is a 400 in French: every
    handler decodes bodies with it, and Python would raise LookupError (a 500); codecs that are
    not text encodings (`rot13`, `base64`) too."""
    charset = request.charset
    if charset:
        try:
            readable = codecs.lookup(charset)._is_text_encoding
        except (LookupError, ValueError):
            readable = False
        if not readable:
            return web.json_response({"error": UNREADABLE_CHARSET}, status=400)
    return await handler(request)
