"""Every exception cms_magic raises, in one place.

The hierarchy::

    CmsError                      base of everything below
    ├── ConfigError               a caller's mistake in arguments or settings (also ValueError)
    │   ├── UnknownRegionError    a region id not in the catalog; lists the valid ids
    │   └── MappingError          a frame-to-events mapping that cannot work (missing column...)
    ├── CredentialsError          no usable AccessKey; says where it looked
    └── SendError                 a whole send had to stop
        └── AuthError             403 for a bad signature, unknown key or missing permission

Row-level problems (an empty name, a group id that is not an integer, an event
too large for a request) are *not* exceptions: they become rows with status
``rejected`` and a reason, so nothing is lost and one bad row never hides the
others.

This module imports nothing of ours, so every other module may import it.
"""

from __future__ import annotations

__all__ = [
    "AuthError",
    "CmsError",
    "ConfigError",
    "CredentialsError",
    "MappingError",
    "SendError",
    "UnknownRegionError",
]


class CmsError(Exception):
    """Base class of every error raised by cms_magic."""


class ConfigError(CmsError, ValueError):
    """An argument or setting that cannot work; the message names it and the rule."""


class UnknownRegionError(ConfigError):
    """A region id that is not in the catalog."""

    def __init__(self, region: str, valid: list[str]) -> None:
        self.region = region
        self.valid = valid
        super().__init__(
            f"unknown region {region!r}; valid region ids: {', '.join(valid)} "
            "(or pass an explicit endpoint URL)"
        )


class MappingError(ConfigError):
    """A mapping from a frame's columns to event fields that cannot work."""


class CredentialsError(CmsError):
    """No usable credentials, or a credentials source that is malformed."""


class SendError(CmsError):
    """A send that had to stop as a whole; the partial result is attached when there is one."""

    def __init__(self, message: str, *, result: object | None = None) -> None:
        super().__init__(message)
        self.result = result


class AuthError(SendError):
    """The service refused the credentials (403 signature, unknown key, missing permission).

    Retrying cannot help, so the send stops at once and the rows not yet sent
    are reported as ``not_sent``.
    """
