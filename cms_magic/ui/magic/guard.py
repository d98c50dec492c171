"""Secrets never ride on a magic line: a line that looks like it holds one is refused, unread.

A magic line is saved in the notebook and in IPython's history, so an AccessKey
typed there has leaked before any code could use it. :func:`refuse_secrets`
looks at each word of the line (an option named after a credential, an
assignment to one, something shaped like an AccessKey id or secret) and raises
``UsageError`` naming the position of the word, never the word itself.
"""

from __future__ import annotations

import re
import shlex
from typing import Final

from IPython.core.error import UsageError

from cms_magic.credentials import ENV_ACCESS_KEY_ID, ENV_ACCESS_KEY_SECRET

__all__ = ["HOW_CREDENTIALS", "refuse_secrets"]

#: How to give credentials instead (said by every credentials message of the magic).
HOW_CREDENTIALS: Final = (
    f"provide credentials through the environment ({ENV_ACCESS_KEY_ID} and "
    f"{ENV_ACCESS_KEY_SECRET}) or a profile of ~/.aliyun/config.json (`aliyun configure`) "
    "chosen with --profile NAME or %config CmsMagic.profile; `%cms whoami` shows what is "
    "found, and --endpoint local uses the local emulator's demo credentials"
)

_SECRET_WORDS: Final = (
    "secret",
    "password",
    "passwd",
    "token",
    "credential",
    "accesskey",
    "signature",
    "privatekey",
)
_SECRET_ASSIGNMENT: Final = re.compile(
    r"(?:^|[\s,;{])[-\"']*[\w.-]*(?:secret|password|passwd|access_?key|access-key|"
    r"security_?token|sts_?token)[\w.-]*[\"']?\s*[=:]",
    re.IGNORECASE,
)
_ACCESS_KEY_ID: Final = re.compile(r"(?<![A-Za-z0-9])(?:LTAI[A-Za-z0-9]{8,}|STS\.[A-Za-z0-9]{10,})")
_SECRET_LIKE: Final = re.compile(r"^[A-Za-z0-9]{30}$")


def _looks_secret(token: str) -> str | None:
    """Why a token of a magic line looks like a credential, or None. Never the token."""
    if token.startswith("-"):
        option = token.lstrip("-").partition("=")[0].lower().replace("_", "-")
        squashed = option.replace("-", "")
        if (
            any(word in squashed for word in _SECRET_WORDS)
            or "key" in option.split("-")
            or squashed in ("ak", "sk", "akid", "aksecret", "keyid")
        ):
            return "an option for a credential"
    if _SECRET_ASSIGNMENT.search(token):
        return "a credential assignment"
    if _ACCESS_KEY_ID.search(token):
        return "an AccessKey id"
    for part in (token, token.partition("=")[2]):
        if (
            _SECRET_LIKE.match(part)
            and any(c.isupper() for c in part)
            and any(c.islower() for c in part)
            and any(c.isdigit() for c in part)
        ):
            return "an AccessKey secret"
    return None


def refuse_secrets(line: str, magic: str) -> None:
    """Raise ``UsageError`` if anything on the magic line looks like a credential."""
    try:
        tokens = shlex.split(line, posix=True)
    except ValueError:
        tokens = line.split()
    for position, token in enumerate(tokens, start=1):
        why = _looks_secret(token)
        if why is not None:
            raise UsageError(
                f"{magic} refuses credentials on the magic line (argument {position} looks "
                f"like {why}; it was not used, and a line is saved in the notebook and its "
                f"history): {HOW_CREDENTIALS}"
            )
