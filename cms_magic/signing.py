"""The CloudMonitor request signature (HMAC-SHA1), as pure steps plus one ``httpx.Auth``.

The steps are named after the protocol::

    SignString = VERB "\\n" CONTENT-MD5 "\\n" CONTENT-TYPE "\\n" DATE "\\n"
                 CanonicalizedHeaders "\\n" CanonicalizedResource
    Signature  = upper-case hex(HMAC-SHA1(UTF-8(secret), UTF-8(SignString)))
    Authorization = AccessKeyId ":" Signature

Each step is a pure function of its inputs; the date is an argument, never read
from a clock inside a step. Only :meth:`CmsAuth.auth_flow` touches request
headers. The emulator verifies with the very same functions, so a server and a
client can never drift apart on the rules.

Rules where public clients have been seen to go wrong, and that these steps get
right: header names are lower-cased *before* sorting and matching; values are
trimmed; the query string's pairs are sorted; Content-Length counts UTF-8 bytes
(httpx does that from the body bytes); the sign string is encoded to UTF-8 once;
non-ASCII secrets are UTF-8 encoded.
"""

from __future__ import annotations

import email.utils
import hashlib
import hmac
import math
import os
import time
from collections.abc import Callable, Generator, Iterable, Mapping
from functools import cache
from urllib.parse import parse_qsl

import httpx

from cms_magic._version import __version__
from cms_magic.credentials.secret import Secret
from cms_magic.errors import ConfigError

__all__ = [
    "CANONICAL_HEADER_PREFIXES",
    "CmsAuth",
    "canonical_headers",
    "canonical_resource",
    "content_md5",
    "detect_source_ip",
    "format_date",
    "request_string_to_sign",
    "signature",
    "string_to_sign",
]

#: Headers whose (lower-cased) names start with one of these are signed.
CANONICAL_HEADER_PREFIXES = ("x-cms", "x-acs")
_CANONICAL_PREFIXES_BYTES = tuple(prefix.encode("ascii") for prefix in CANONICAL_HEADER_PREFIXES)
#: Headers :class:`CmsAuth` always writes (a request's own values for some are kept).
_OWN_HEADERS = frozenset(
    {
        b"content-md5",
        b"content-length",
        b"content-type",
        b"date",
        b"x-cms-signature",
        b"x-cms-api-version",
        b"x-cms-ip",
        b"user-agent",
    }
)

SIGNATURE_METHOD = "hmac-sha1"
API_VERSION = "1.0"
CONTENT_TYPE = "application/json"
USER_AGENT = f"cms_magic/{__version__} (+python-httpx)"

Clock = Callable[[], float]
"""Seconds since the epoch, like :func:`time.time`; injected so tests can fix the Date."""


def content_md5(body: bytes) -> str:
    """The MD5 of the body bytes as upper-case hex (not base64, unlike RFC 1864)."""
    return hashlib.md5(body, usedforsecurity=False).hexdigest().upper()


def format_date(epoch_seconds: float) -> str:
    """An RFC 1123 date in GMT, e.g. ``Mon, 23 Oct 2017 06:51:11 GMT``."""
    return email.utils.formatdate(epoch_seconds, usegmt=True)


def canonical_headers(headers: Mapping[str, str] | Iterable[tuple[str, str]]) -> str:
    """The signed ``x-cms*``/``x-acs*`` headers: ``name:value`` lines, names lower-cased first.

    Names are lower-cased before they are matched and sorted, values are
    trimmed, lines are joined by ``\\n`` with no trailing newline. No such
    header gives the empty string.
    """
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    lines = sorted(
        (name.strip().lower(), value.strip())
        for name, value in pairs
        if name.strip().lower().startswith(CANONICAL_HEADER_PREFIXES)
    )
    return "\n".join(f"{name}:{value}" for name, value in lines)


def canonical_resource(path: str, query: str | Mapping[str, str] | None = None) -> str:
    """The path, plus ``?`` and the query's ``key=value`` pairs sorted and joined by ``&``."""
    if isinstance(query, Mapping):
        pairs = list(query.items())
    elif query:
        pairs = parse_qsl(query, keep_blank_values=True)
    else:
        pairs = []
    if not pairs:
        return path
    return path + "?" + "&".join(f"{key}={value}" for key, value in sorted(pairs))


def string_to_sign(
    verb: str,
    content_md5: str,
    content_type: str,
    date: str,
    canonical_headers: str,
    canonical_resource: str,
) -> str:
    """The six protocol fields joined by ``\\n``, without a trailing newline."""
    return "\n".join(
        (verb.upper(), content_md5, content_type, date, canonical_headers, canonical_resource)
    )


def signature(secret: str, string_to_sign: str) -> str:
    """Upper-case hex HMAC-SHA1 of the UTF-8 sign string, keyed by the UTF-8 secret."""
    digest = hmac.new(secret.encode("utf-8"), string_to_sign.encode("utf-8"), hashlib.sha1)
    return digest.hexdigest().upper()


def request_string_to_sign(
    method: str, path: str, query: str, headers: Iterable[tuple[str, str]]
) -> str:
    """The sign string of a request from its parts as sent or received.

    Shared by :class:`CmsAuth` and the emulator's verifier, so both read a
    request the same way. ``headers`` are (name, value) pairs in any case.
    """
    pairs = list(headers)
    lookup = {name.lower(): value for name, value in pairs}
    return string_to_sign(
        method,
        lookup.get("content-md5", ""),
        lookup.get("content-type", ""),
        lookup.get("date", ""),
        canonical_headers(pairs),
        canonical_resource(path, query),
    )


def _header_text(value: bytes, headers: httpx.Headers) -> str:
    """A raw header name or value as text, in the encoding httpx found for these headers."""
    try:
        return value.decode("ascii")
    except UnicodeDecodeError:
        return value.decode(headers.encoding)


@cache
def detect_source_ip() -> str:
    """The host's outbound IPv4 address, read from the local interfaces (detected once).

    Nothing is sent anywhere: on Linux the default route's interface is read
    from ``/proc/net/route`` and its address asked of the kernel; failing
    that, the first non-loopback interface. ``CMS_MAGIC_SOURCE_IP`` overrides.
    Falls back to ``127.0.0.1`` when no address can be read (the service uses
    x-cms-ip only to label where events came from).
    """
    override = os.environ.get("CMS_MAGIC_SOURCE_IP", "").strip()
    if override:
        return override
    try:
        from cms_magic import _netif

        return _netif.outbound_ipv4() or "127.0.0.1"
    except OSError:
        return "127.0.0.1"


class CmsAuth(httpx.Auth):
    """Signs each request for CloudMonitor; plug into any ``httpx`` client as ``auth=``.

    Sets Content-MD5, Content-Type (if missing), Date (from ``clock``, unless
    already on the request), x-cms-signature, x-cms-api-version, x-cms-ip
    (unless already on the request), User-Agent, the STS headers when a
    security token is given, and Authorization. Because ``httpx`` calls the
    auth flow for every attempt it makes, a retried request is signed again
    with a fresh Date.

    The secret and the token are held as :class:`~cms_magic.credentials.secret.Secret`
    values (plain strings given are wrapped), revealed only at the HMAC and for the
    token header: no attribute, cache or ``repr`` of the signer holds their text.
    """

    requires_request_body = True

    __slots__ = (
        "_canonical",
        "_date",
        "_replaced",
        "_resources",
        "_secret",
        "_token",
        "access_key_id",
        "clock",
        "source_ip",
    )

    def __init__(
        self,
        access_key_id: str,
        access_key_secret: str | Secret,
        *,
        security_token: str | Secret | None = None,
        source_ip: str | None = None,
        clock: Clock = time.time,
    ) -> None:
        self.access_key_id = access_key_id
        self._secret = Secret(access_key_secret)
        self._token = Secret(security_token) if security_token else None
        del access_key_secret, security_token  # wrapped: no plain text left in this frame
        self.source_ip = source_ip
        self.clock = clock
        # Headers this signer writes; a request's own copies of them are replaced.
        replaced = {*_OWN_HEADERS, b"authorization"}
        if self._token:
            replaced |= {b"x-cms-security-token", b"x-cms-caller-type"}
        self._replaced = frozenset(replaced)
        # Caches of values that change rarely: the canonical x-cms headers per source IP
        # (as the text before and after the token's value, so no cache holds the token),
        # the canonical resource per URL path, the Date text of the current second.
        self._canonical: dict[str, tuple[str, str]] = {}
        self._resources: dict[bytes, str] = {}
        self._date: tuple[int, str] = (-1, "")

    @classmethod
    def from_credentials(
        cls, credentials: object, *, source_ip: str | None = None, clock: Clock = time.time
    ) -> CmsAuth:
        """Build from a :class:`cms_magic.credentials.static.Credentials`."""
        from cms_magic.credentials.static import Credentials

        if not isinstance(credentials, Credentials):
            raise ConfigError(
                f"must be a cms_magic.Credentials, got a {type(credentials).__name__}",
                option="credentials",
            )
        return cls(
            credentials.access_key_id,
            credentials.access_key_secret,
            security_token=credentials.security_token,
            source_ip=source_ip,
            clock=clock,
        )

    def __repr__(self) -> str:
        from cms_magic.credentials.static import mask

        token = ", security_token=<set>" if self._token else ""
        return f"CmsAuth(access_key_id={mask(self.access_key_id)!r}{token})"

    def sign(self, request: httpx.Request) -> str:
        """Set every protocol header on ``request``; return the sign string used.

        The request's headers are read once and replaced once. This runs for every
        attempt of every request, so values that rarely change (the canonical x-cms
        headers, the resource, the Date of the current second) are cached; a request
        carrying its own ``x-cms*``/``x-acs*`` headers takes the general path.
        """
        body = request.content
        kept: list[tuple[bytes, bytes]] = []
        present: dict[bytes, bytes] = {}
        extra_signed = False
        replaced = self._replaced
        for name, value in request.headers.raw:
            lower = name.lower()
            present[lower] = value
            if lower not in replaced:
                kept.append((name, value))
                extra_signed = extra_signed or lower.startswith(_CANONICAL_PREFIXES_BYTES)

        def given(name: bytes) -> str:
            value = present.get(name)
            return "" if value is None else _header_text(value, request.headers)

        content_type = given(b"content-type") or CONTENT_TYPE
        date = given(b"date") or self._date_text()
        source_ip = given(b"x-cms-ip") or self.source_ip or detect_source_ip()
        agent = given(b"user-agent")
        md5 = content_md5(body)
        ours: list[tuple[str, str]] = [
            ("content-md5", md5),
            ("content-length", str(len(body))),
            ("content-type", content_type),
            ("date", date),
            ("x-cms-signature", SIGNATURE_METHOD),
            ("x-cms-api-version", API_VERSION),
            ("x-cms-ip", source_ip),
            ("user-agent", agent if agent.startswith("cms_magic/") else USER_AGENT),
        ]
        token = None if self._token is None else self._token.reveal()
        if token is not None:
            ours += [("x-cms-security-token", token), ("x-cms-caller-type", "token")]
        if extra_signed:
            pairs = [
                (_header_text(n, request.headers), _header_text(v, request.headers))
                for n, v in kept
            ]
            canonical = canonical_headers(pairs + ours)
        else:
            before, after = self._canonical.get(source_ip) or self._cache_canonical(source_ip, ours)
            canonical = before if token is None else before + token + after
        sign_string = string_to_sign(
            request.method,
            md5,
            content_type.strip(),
            date.strip(),
            canonical,
            self._resource(request.url),
        )
        key = self._secret.reveal().encode("utf-8")
        digest = hmac.digest(key, sign_string.encode("utf-8"), "sha1").hex().upper()
        out = kept + [(name.encode("ascii"), value.encode("utf-8")) for name, value in ours]
        out.append((b"authorization", f"{self.access_key_id}:{digest}".encode()))
        request.headers = httpx.Headers(out)
        return sign_string

    def _cache_canonical(self, source_ip: str, ours: list[tuple[str, str]]) -> tuple[str, str]:
        """The canonical headers split around the token's value (all before it, if none)."""
        if len(self._canonical) >= 16:
            self._canonical.clear()
        placeholder = "\x00"  # never in a header value, so the one split point
        text = canonical_headers(
            [(n, placeholder if n == "x-cms-security-token" else v) for n, v in ours]
        )
        before, _, after = text.partition(placeholder)
        parts = self._canonical[source_ip] = (before, after)
        return parts

    def _resource(self, url: httpx.URL) -> str:
        key = url.raw_path
        resource = self._resources.get(key)
        if resource is None:
            if len(self._resources) >= 64:
                self._resources.clear()
            resource = canonical_resource(url.path, url.query.decode("ascii"))
            self._resources[key] = resource
        return resource

    def _date_text(self) -> str:
        now = self.clock()
        second = math.floor(now)
        cached_second, text = self._date
        if second != cached_second:
            text = format_date(now)
            self._date = (second, text)
        return text

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        self.sign(request)
        yield request
