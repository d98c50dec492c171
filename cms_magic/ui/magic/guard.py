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
from collections.abc import Sequence
from typing import Final

from IPython.core.error import UsageError

from cms_magic.credentials import ENV_ACCESS_KEY_ID, ENV_ACCESS_KEY_SECRET

__all__ = ["HOW_CREDENTIALS", "refuse_secret_words", "refuse_secrets"]

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
#: ``KEY=VALUE`` or ``KEY: VALUE`` where KEY names a credential; VALUE is judged apart.
_SECRET_ASSIGNMENT: Final = re.compile(
    r"(?:^|[\s,;{(])[-\"']*[\w.-]*(?:secret|password|passwd|access_?key|access-key|"
    r"security_?token|sts_?token)[\w.-]*[\"']?(\s*)[=:](\s*)[\"']?([^\s\"',;]*)",
    re.IGNORECASE,
)
_ACCESS_KEY_ID: Final = re.compile(r"(?<![A-Za-z0-9])(?:LTAI[A-Za-z0-9]{8,}|STS\.[A-Za-z0-9]{10,})")
#: An AccessKey secret's shape: 30 letters and digits (checked for mixed case and digits).
_SECRET_LIKE: Final = re.compile(r"(?<![A-Za-z0-9])[A-Za-z0-9]{30}(?![A-Za-z0-9])")


def _real_value(value: str, *, spaced: bool) -> bool:
    """Whether the value of a credential assignment looks like a real secret.

    Glued to its key (``secret=abc``) any value counts; after a space (prose such as
    ``password: reset for {content}``) only a word that is not plain text does: six
    characters or more with a digit or a capital inside. A template field
    (``{secret}``) is never a value.
    """
    if not value or value.startswith("{"):
        return False
    if not spaced:
        return True
    return len(value) >= 6 and (
        any(c.isdigit() for c in value) or any(c.isupper() for c in value[1:])
    )


def _assignment(token: str) -> bool:
    return any(
        _real_value(m.group(3), spaced=bool(m.group(1) or m.group(2)))
        for m in _SECRET_ASSIGNMENT.finditer(token)
    )


def _looks_secret(token: str) -> str | None:
    """Why a token of a magic line looks like a credential, or None. Never the token.

    What counts: an option named after a credential (``--secret``), an assignment
    to one with a real-looking value (``AccessKeySecret=...``, not the word
    "password" in prose), an AccessKey id (``LTAI...``, ``STS....``), or a
    30-character token of letters and digits in mixed case (an AccessKey secret).
    """
    if token.startswith("-"):
        option = token.lstrip("-").partition("=")[0].lower().replace("_", "-")
        squashed = option.replace("-", "")
        if (
            any(word in squashed for word in _SECRET_WORDS)
            or "key" in option.split("-")
            or squashed in ("ak", "sk", "akid", "aksecret", "keyid")
        ):
            return "an option for a credential"
    if _assignment(token):
        return "a credential assignment"
    if _ACCESS_KEY_ID.search(token):
        return "an AccessKey id"
    for match in _SECRET_LIKE.finditer(token):
        part = match.group(0)
        if (
            any(c.isupper() for c in part)
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
    refuse_secret_words(tokens, magic)


def refuse_secret_words(words: Sequence[str], magic: str, *, expanded: bool = False) -> None:
    """Raise ``UsageError`` if a word looks like a credential; ``expanded``: the words
    after ``$name`` expansion (a secret held in a variable is refused as well)."""
    for position, token in enumerate(words, start=1):
        why = _looks_secret(token)
        if why is not None:
            origin = ", once its $variables are expanded," if expanded else ""
            raise UsageError(
                f"{magic} refuses credentials on the magic line (argument {position}{origin} "
                f"looks like {why}; it was not used, and a line is saved in the notebook and "
                f"its history): {HOW_CREDENTIALS}"
            )
