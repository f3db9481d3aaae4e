"""StaticHandler: ``/static/`` files, with the same security headers as every page, and
revalidated when their URL carries no version."""

from __future__ import annotations

import tornado.web

from chatroom.views.base import set_security_headers


class StaticHandler(tornado.web.StaticFileHandler):
    """Tornado's static files plus nosniff, CSP, framing and referrer headers.

    Without nosniff a browser may guess a type for a file and run it as script.
    ``static_url()`` versions the files a page names (``?v=<hash>``, cached for a
    year); the ES modules that ``js/main.js`` imports by relative URL have no
    version, so the browser must revalidate them (a 304 when unchanged), or a new
    ``main.js`` could meet an old cached module after an upgrade.
    """

    def set_default_headers(self) -> None:
        set_security_headers(self)

    def set_extra_headers(self, path: str) -> None:
        if "v" not in self.request.arguments:
            self.set_header("Cache-Control", "no-cache")
