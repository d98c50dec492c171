"""Scrub secrets out of text that came from elsewhere (a server's answer, an exception).

A server may echo what it received: Alibaba's services put their string to
sign in a 403, which holds the ``x-cms-security-token``; a proxy may echo
the ``Authorization`` header. Whatever a server sends back, cms_magic stores
and shows it only after :func:`scrub` has replaced every known secret value
(the AccessKey secret, the security token, the Authorization value) and
anything that looks like those headers with :data:`MARK`.

Pure and small: it knows nothing of credentials or HTTP, only of the strings
it is given.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Final
from urllib.parse import quote

__all__ = ["MARK", "scrub"]

#: What a scrubbed value reads as.
MARK: Final = "<redacted>"

#: Values shorter than this are not scrubbed by value (they would match ordinary text).
_MIN_SECRET_CHARS: Final = 8

#: Header-like echoes whose value is secret whatever it is: ``x-cms-security-token: v``,
#: ``x-acs-security-token=v``, ``Authorization: acs id:sig``, a JSON ``"SecurityToken": "v"``.
_SECRET_FIELDS: Final = re.compile(
    r"""(?ix)
    (?P<name>
        x-(?:cms|acs)-security-token
      | security[-_]?token
      | access[-_]?key[-_]?secret
      | authorization
    )
    (?P<sep>["']?\s*[:=]\s*["']?)
    (?P<value>(?:acs\s+)?[^\s"',;&}\\]+)
    """
)


def _forms(value: str) -> set[str]:
    """A value as a server might echo it: as is, JSON-escaped, URL-encoded."""
    return {value, json.dumps(value)[1:-1], quote(value, safe=""), quote(value)}


def scrub(text: str, secrets: Iterable[str | None] = ()) -> str:
    """``text`` with every one of ``secrets`` (in the forms a server may echo it) and every
    secret-looking header value replaced by :data:`MARK`."""
    if not text:
        return text
    values = sorted(
        {form for s in secrets if s and len(s) >= _MIN_SECRET_CHARS for form in _forms(s)},
        key=len,
        reverse=True,
    )
    for value in values:
        if value in text:
            text = text.replace(value, MARK)
    return _SECRET_FIELDS.sub(
        lambda m: m.group(0) if m.group("value") == MARK else f"{m['name']}{m['sep']}{MARK}",
        text,
    )
