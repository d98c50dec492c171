"""The region catalog and the endpoint resolver.

The catalog is data: ``regions.json`` (package data) holds the single public
endpoint and, for each region of the CloudMonitor documentation, its id, its
name and its internal endpoint, in the document's order. This module is the
small piece of code that reads it and turns what a caller wrote (nothing, a
region id, or an explicit URL) into the base URL to send to::

    >>> endpoint()
    'https://metrichub-cms-cn-hangzhou.aliyuncs.com'
    >>> endpoint("cn-beijing", internal=True)
    'http://metrichub-cn-beijing.aliyun.com'
    >>> endpoint("http://127.0.0.1:8080/")
    'http://127.0.0.1:8080'

The documentation lists one public endpoint for every region, so a region id
without ``internal=True`` resolves to that public endpoint.

Importing this module does not import pandas; only :func:`regions_frame` does.

The module itself is callable, as a shorthand for :func:`regions`:
``cms_magic.regions()`` lists the catalog while ``cms_magic.regions.endpoint``
stays the resolver.
"""

from __future__ import annotations

import ipaddress
import json
import sys
import types
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any
from urllib.parse import SplitResult, urlsplit

from cms_magic.errors import ConfigError, InternalError, TargetError, UnknownRegionError

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "PUBLIC_ENDPOINT",
    "Region",
    "endpoint",
    "get_region",
    "is_loopback_url",
    "normalise_url",
    "public_endpoint",
    "region_ids",
    "regions",
    "regions_frame",
]

_CATALOG_FILE = "regions.json"
_URL_SCHEMES = ("http://", "https://")


@dataclass(frozen=True, slots=True)
class Region:
    """One CloudMonitor region: its id, its display name and its internal endpoint."""

    id: str
    name: str
    internal_endpoint: str

    @property
    def public_endpoint(self) -> str:
        """The public endpoint, the same for every region."""
        return PUBLIC_ENDPOINT


@dataclass(frozen=True, slots=True)
class _Catalog:
    public_endpoint: str
    regions: tuple[Region, ...]


def _require_str(obj: dict[str, Any], key: str, where: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value:
        raise InternalError(f"{_CATALOG_FILE}: {where} needs a non-empty string {key!r}")
    return value


@cache
def _catalog() -> _Catalog:
    """Load and check ``regions.json`` once; later calls return the same object."""
    text = resources.files("cms_magic").joinpath(_CATALOG_FILE).read_text(encoding="utf-8")
    data = json.loads(text)
    if not isinstance(data, dict) or not isinstance(data.get("regions"), list):
        raise InternalError(f"{_CATALOG_FILE}: expected an object with a 'regions' list")
    public = _require_str(data, "public_endpoint", "the top level")
    items: list[Region] = []
    for i, raw in enumerate(data["regions"]):
        if not isinstance(raw, dict):
            raise InternalError(f"{_CATALOG_FILE}: regions[{i}] must be an object")
        where = f"regions[{i}]"
        items.append(
            Region(
                id=_require_str(raw, "id", where),
                name=_require_str(raw, "name", where),
                internal_endpoint=_require_str(raw, "internal_endpoint", where),
            )
        )
    return _Catalog(public_endpoint=public, regions=tuple(items))


PUBLIC_ENDPOINT: str = _catalog().public_endpoint
"""The single public endpoint, as read from ``regions.json``."""


@cache
def _by_id() -> dict[str, Region]:
    return {r.id.lower(): r for r in _catalog().regions}


def regions() -> list[Region]:
    """Every region of the catalog, in the documentation's order (a new list each call)."""
    return list(_catalog().regions)


def region_ids() -> list[str]:
    """The valid region ids, in the documentation's order."""
    return [r.id for r in _catalog().regions]


def get_region(region_id: str) -> Region:
    """Return the region with this id.

    The match ignores case and surrounding whitespace. An unknown id raises
    :class:`~cms_magic.errors.UnknownRegionError`, whose message shows the value
    as given and lists every valid id.
    """
    found = _by_id().get(region_id.strip().lower())
    if found is None:
        raise UnknownRegionError(region_id, region_ids())
    return found


def public_endpoint() -> str:
    """The public endpoint (the documentation lists one for all regions)."""
    return PUBLIC_ENDPOINT


def endpoint(region: str | None = None, *, internal: bool = False) -> str:
    """Resolve what a caller wrote into the base URL of the endpoint, without a trailing slash.

    - ``None``: the public endpoint (``internal=True`` is an error: it needs a region).
    - A region id: its internal endpoint with ``internal=True``, else the public endpoint.
    - A string starting with ``http://`` or ``https://``: an explicit endpoint, checked and
      normalised (scheme and host lower-cased, port kept, trailing ``/`` removed). It must
      have a host and no user info, query, fragment or path. ``internal=True`` is an error
      with an explicit URL.

    Raises :class:`~cms_magic.errors.ConfigError` for a bad URL or combination, and its
    subclass :class:`~cms_magic.errors.UnknownRegionError` for an unknown region id.
    """
    if region is None:
        if internal:
            raise ConfigError(
                "internal=True needs a region id to choose an internal endpoint; "
                f"valid region ids: {', '.join(region_ids())}"
            )
        return PUBLIC_ENDPOINT
    if region.strip().lower().startswith(_URL_SCHEMES):
        if internal:
            raise ConfigError(
                "internal=True applies to a region id, not to an explicit endpoint URL, "
                f"got {_redact(region)!r}"
            )
        return normalise_url(region)
    found = get_region(region)
    return found.internal_endpoint if internal else PUBLIC_ENDPOINT


def _redact(url: str) -> str:
    """The URL with any user info replaced, so a password in it never reaches a message."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    authority_end = len(rest)
    for ch in "/?#":
        pos = rest.find(ch)
        if pos != -1:
            authority_end = min(authority_end, pos)
    authority = rest[:authority_end]
    if "@" not in authority:
        return url
    return f"{scheme}://***@{authority.rpartition('@')[2]}{rest[authority_end:]}"


def normalise_url(url: str, *, option: str = "endpoint") -> str:
    """An endpoint URL checked and normalised: ``http`` or ``https``, a host, an optional port,
    nothing else (no user info, path, query or fragment); scheme and host lower-cased, no
    trailing ``/``. Raises :class:`~cms_magic.errors.TargetError` naming the rule broken
    (``option`` names the field in it)."""

    def _bad_url(rule: str, url: str) -> TargetError:
        return TargetError(f"endpoint URL {rule}", option=option, value=_redact(url))

    text = url.strip()
    if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in text):
        raise _bad_url("must not contain whitespace or control characters", url)
    try:
        parts: SplitResult = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise _bad_url(f"is not a valid URL ({exc})", url) from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise _bad_url("must start with http:// or https://", url)
    if "@" in parts.netloc:
        raise _bad_url("must not contain user info (user:password@)", url)
    host = parts.hostname
    if not host:
        raise _bad_url("needs a host, like https://host[:port]", url)
    if "?" in text:
        raise _bad_url("must not have a query string", url)
    if "#" in text:
        raise _bad_url("must not have a fragment", url)
    if parts.path not in ("", "/"):
        raise _bad_url("must not have a path (the client adds /event/custom/upload)", url)
    if ":" in host:  # an IPv6 literal keeps its brackets
        host = f"[{host}]"
    netloc = host if port is None else f"{host}:{port}"
    return f"{scheme}://{netloc}"


def is_loopback_url(url: str) -> bool:
    """Whether the URL's host is a loopback address: 127.0.0.0/8, ``::1`` or ``localhost``.

    Tells the local emulator from the cloud. Anything that is not a parseable
    ``scheme://host`` URL is not loopback.
    """
    try:
        host = urlsplit(url.strip()).hostname
    except ValueError:
        return False
    if not host:
        return False
    if host.rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def regions_frame() -> pd.DataFrame:
    """The catalog as a DataFrame: columns id, name, internal_endpoint, public_endpoint."""
    import pandas as pd

    columns = ["id", "name", "internal_endpoint", "public_endpoint"]
    rows = [(r.id, r.name, r.internal_endpoint, r.public_endpoint) for r in _catalog().regions]
    frame: pd.DataFrame = pd.DataFrame(rows, columns=columns)
    return frame


class _CallableModule(types.ModuleType):
    """This module's class: calling the module lists the regions."""

    def __call__(self) -> list[Region]:
        return regions()


sys.modules[__name__].__class__ = _CallableModule
