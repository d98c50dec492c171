"""Where the emulator may listen, and the numbers that bound what its clients may cost.

The emulator accepts a public demo key and its admin endpoints read out what it
stored, so it listens on loopback; another address needs ``allow_remote=True``
(command line: ``--allow-remote``) and gives a :class:`RemoteBindWarning`.
:func:`check_bind_host` is that rule as a pure function, checked before any bind.
"""

from __future__ import annotations

import ipaddress

from cms_magic.errors import ConfigError, RemoteBindWarning

__all__ = ["RemoteBindWarning", "check_bind_host", "check_count", "check_seconds"]


def check_bind_host(host: str, *, allow_remote: bool) -> str | None:
    """None for a loopback ``host``; the warning to give for another one if ``allow_remote``.

    Without ``allow_remote`` any other host (``0.0.0.0``, ``''``, ``::``, an interface's
    address, a name that is not ``localhost``) is a :class:`ConfigError`: the emulator
    accepts a public demo key and its admin endpoints read out what it stored.
    """
    if _is_loopback(host):
        return None
    if not allow_remote:
        raise ConfigError(
            "is not a loopback address, and the emulator listens only on loopback "
            "unless told otherwise (it accepts a public demo key)",
            option="host",
            value=host,
            hint="bind 127.0.0.1, or pass allow_remote=True (command line: --allow-remote) "
            "to let other hosts reach it",
        )
    return (
        f"binding {host!r}, not loopback: other hosts can reach this emulator "
        "(its demo key is public; the admin endpoints want the admin token)"
    )


def _is_loopback(host: str) -> bool:
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip().strip("[]")).is_loopback
    except ValueError:
        return False


def check_count(option: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError("must be a whole number >= 1", option=option, value=value)


def check_seconds(option: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ConfigError("must be a number of seconds > 0", option=option, value=value)
