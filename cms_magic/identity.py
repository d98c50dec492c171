"""Who a send would sign as: the credentials' source, masked key id and expiry (``whoami``).

:func:`describe_credentials` is what ``%cms whoami``, ``cms-event whoami`` and the panel
show about a resolved credential: where it comes from (the source names the profile or the
role), the AccessKey id masked, whether an STS token is set, and, for a refreshing source,
when the current credentials expire. Never the secret or the token.

For a refreshing source (STS AssumeRole, OIDC, a credentials URI, an ECS RAM role), asking
``whoami`` is an explicit request to fetch: with ``fetch=True`` (the default) the current
credentials are fetched (once; later sends use them) on the library's event loop, and a
source that fails is reported with its reason instead of raising.
"""

from __future__ import annotations

import concurrent.futures
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Final, TypeAlias

from cms_magic.credentials.refreshing import RefreshingCredentials
from cms_magic.credentials.static import Credentials
from cms_magic.errors import CredentialsError

__all__ = ["AnyCredentials", "CredentialsReport", "describe_credentials", "key_label"]

#: What a send signs with: fixed keys, or a source that hands out expiring triples.
AnyCredentials: TypeAlias = Credentials | RefreshingCredentials

#: The longest whoami waits for a refreshing source to answer.
FETCH_TIMEOUT: Final = 30.0


@dataclass(frozen=True, slots=True)
class CredentialsReport:
    """What ``whoami`` says about one credential (see the module)."""

    source: str
    access_key_id: str | None  # masked; None before a refreshing source's first fetch
    security_token: bool
    refreshing: bool
    expires_at: datetime | None = None
    expires_in: float | None = None
    error: str | None = None  # why a refreshing source could not be fetched

    def text(self, *, demo: bool = False) -> str:
        """One line, e.g. ``AccessKey STS.****abcd from STS AssumeRole (...), with an STS
        token, expires 2026-12-01T12:00:00Z (in 54 min)``; ``demo`` drops "AccessKey"."""
        key = "" if demo else "AccessKey "
        if self.access_key_id is None:
            head = f"from {self.source}"
        else:
            head = f"{key}{self.access_key_id} from {self.source}"
        parts = [head]
        if self.security_token:
            parts.append("with an STS token")
        if self.expires_at is not None:
            stamp = self.expires_at.isoformat(timespec="seconds").replace("+00:00", "Z")
            parts.append(f"expires {stamp}{_in(self.expires_in)}")
        elif self.refreshing and self.error is None:
            parts.append("refreshed ahead of expiry")
        if self.error is not None:
            parts.append(f"could not be fetched: {self.error}")
        return ", ".join(parts)


def _in(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if seconds <= 0:
        return " (expired)"
    if seconds < 120:
        return f" (in {seconds:.0f} s)"
    if seconds < 7200:
        return f" (in {seconds / 60:.0f} min)"
    return f" (in {seconds / 3600:.1f} h)"


def describe_credentials(
    credentials: Credentials | RefreshingCredentials,
    *,
    fetch: bool = True,
    timeout: float = FETCH_TIMEOUT,
) -> CredentialsReport:
    """The report on ``credentials`` (see the module); with ``fetch``, a refreshing source
    is asked for its current credentials first (on the library loop, within ``timeout``)."""
    refreshing = isinstance(credentials, RefreshingCredentials)
    error = (
        _fetch(credentials, timeout)
        if fetch and isinstance(credentials, RefreshingCredentials)
        else None
    )
    info = credentials.describe()  # the same keys for static and refreshing credentials
    expires_in = info.get("expires_in")
    masked = info.get("access_key_id")
    return CredentialsReport(
        source=credentials.source,
        access_key_id=masked if isinstance(masked, str) else None,
        security_token=bool(info.get("security_token")),
        refreshing=refreshing,
        expires_at=_parse(info.get("expires_at")),
        expires_in=float(expires_in) if isinstance(expires_in, int | float) else None,
        error=error,
    )


def _fetch(credentials: RefreshingCredentials, timeout: float) -> str | None:
    """Fetch (if needed) on the library loop; the failure's text, or None."""
    from cms_magic.sending._loop import wait_for

    try:
        wait_for(credentials.current(), timeout)
    except CredentialsError as exc:
        text = str(exc)
        prefix = f"credentials from {credentials.source} could not be fetched: "
        return text.removeprefix(prefix)
    except concurrent.futures.TimeoutError:
        return f"no answer within {timeout:g} s"
    return None


def _parse(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)


def key_label(credentials: Credentials | RefreshingCredentials) -> str:
    """How a message names the key: its masked id, or a refreshing source's latest masked
    id and source (``STS.****abcd from STS AssumeRole (...)``), never contacting it."""
    if isinstance(credentials, Credentials):
        return credentials.masked_id
    masked = credentials.masked_id
    return (
        f"{masked} from {credentials.source}"
        if masked
        else f"the credentials from {credentials.source}"
    )
