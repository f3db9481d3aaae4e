"""StaticHandler: ``/static/`` files, with the same security headers as every page."""

from __future__ import annotations

import tornado.web

from chatroom.views.base import set_security_headers


class StaticHandler(tornado.web.StaticFileHandler):
    """Tornado's static files plus nosniff, CSP, framing and referrer headers.

    Without nosniff a browser may guess a type for a file and run it as script.
    """

    def set_default_headers(self) -> None:
        set_security_headers(self)
