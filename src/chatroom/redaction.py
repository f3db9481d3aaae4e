"""Secrets out of what chatroom prints and logs: ``redact_url`` masks a URL's password."""

from __future__ import annotations

import re

#: What a redacted secret is shown as.
REDACTED = "***"
# "user:password@" up to the last "@" that a host follows (a host holds no "=", "&"
# or "@"): a password may itself hold "@", "/" or "?" when it is not escaped.
_USERINFO_RE = re.compile(r"^([^:/@]*):.*@(?=[^@/=&]*(?:/|\Z))", re.S)
# A query parameter that carries a secret: ?password=, &sslpassword=, ?token=, ...
_SECRET_PARAMETER_RE = re.compile(r"([?&][^=&#]*(?:pass|secret|token)[^=&#]*=)[^&#]*", re.I)


def redact_url(url: str) -> str:
    """``url`` fit to print or log: any password in it replaced by ``***``.

    Every place chatroom shows a database or Redis URL goes through this:
    ``postgresql://user:pw@host/db`` becomes ``postgresql://user:***@host/db``,
    ``redis://:pw@host/0`` ``redis://:***@host/0``, and a ``password=`` (or
    ``token=``, ``secret=``) query parameter is masked too. It works on the
    text, not on a parsed URL, so a malformed URL (an unescaped ``@``, ``/`` or
    ``?`` in the password, a bad port) is redacted as well: rather too much
    than too little.
    """
    scheme, separator, rest = url.partition("://")
    if not separator:  # no scheme: still redact what looks like user:password@
        scheme, rest = "", url
    rest = _USERINFO_RE.sub(lambda m: f"{m.group(1)}:{REDACTED}@", rest, count=1)
    rest = _SECRET_PARAMETER_RE.sub(lambda m: m.group(1) + REDACTED, rest)
    return f"{scheme}{separator}{rest}"
