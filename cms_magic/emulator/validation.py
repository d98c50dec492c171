"""The emulator's own checks of a request: route, size, headers, digest, date, key, signature,
quota and body, each a function that returns what it found or raises :class:`Refusal`.

These are kept apart from :mod:`cms_magic.events` on purpose: the emulator is an
independent oracle for the client, so it must not judge events with the client's
own code. It shares only the *facts* of the protocol (:mod:`cms_magic.protocol`:
the path, the limits, the group id range, the event fields) and the signing
steps named after the document.

Every message says what is wrong and how to fix it; the client and its tests
read them, so their wording is part of the emulator's answers.
"""

from __future__ import annotations

import email.utils
import hmac
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any, Final
from urllib.parse import urlsplit

from cms_magic.credentials.static import Credentials, mask
from cms_magic.protocol import EVENT_FIELDS, GROUP_ID_MAX, MAX_EVENTS_PER_REQUEST, UPLOAD_PATH
from cms_magic.signing import (
    API_VERSION,
    CONTENT_TYPE,
    SIGNATURE_METHOD,
    content_md5,
    format_date,
    request_string_to_sign,
    signature,
)

__all__ = [
    "TOKEN_MARKER",
    "Refusal",
    "authorization_key_id",
    "check_body_digest",
    "check_date",
    "check_headers",
    "check_key",
    "check_route",
    "check_signature",
    "check_size",
    "count_events",
    "declared_length",
    "event_problem",
    "header_fields",
    "header_pairs",
    "hidden_fields",
    "hide",
    "parse_events",
    "security_tokens",
    "show",
    "throttled",
    "too_large",
    "valid_time",
]

_TIME_PATTERN: Final = re.compile(r"^\d{8}T\d{6}\.\d{3}[+-]\d{4}$", re.ASCII)
_TIME_FORMAT: Final = "%Y%m%dT%H%M%S.%f%z"
_SHOWN_VALUE_CHARS: Final = 80

#: What an answer shows in place of a security token's value: the token is as secret as
#: the AccessKeySecret for as long as it lives, so it is never echoed.
TOKEN_MARKER: Final = "<security token: not shown>"  # noqa: S105 - a marker, not a secret
_TOKEN_HEADER: Final = "x-cms-security-token"  # noqa: S105 - a header name
#: A token shorter than this is not searched for in messages (it would match ordinary words).
_MIN_HIDDEN_CHARS: Final = 8

_HEADER_NAMES: Final = {
    "authorization": "Authorization",
    "content-md5": "Content-MD5",
    "content-type": "Content-Type",
    "content-length": "Content-Length",
    "date": "Date",
    "x-cms-signature": "x-cms-signature",
    "x-cms-api-version": "x-cms-api-version",
    "x-cms-ip": "x-cms-ip",
}

_HEADER_HINTS: Final = {
    "authorization": "'<AccessKeyId>:<Signature>'",
    "content-md5": "the MD5 of the body bytes as upper-case hex",
    "content-type": f"{CONTENT_TYPE!r}",
    "content-length": "the body's length in bytes",
    "date": "the time of the request as an RFC 1123 date, e.g. 'Mon, 23 Oct 2017 06:51:11 GMT'",
    "x-cms-signature": f"{SIGNATURE_METHOD!r}",
    "x-cms-api-version": f"{API_VERSION!r}",
    "x-cms-ip": "the IP address of the reporting host",
}


class Refusal(Exception):
    """Raised by a check to end handling with an error response (``status`` and ``msg``).

    ``headers`` go into the answer (``Allow``, ``Retry-After``); ``events`` is how
    many events the body held, when the check knows it; ``code`` is the body's ``code``
    when it is not the status (e.g. ``InvalidSecurityToken.Expired``).
    """

    def __init__(
        self,
        status: int,
        msg: str,
        *,
        headers: Mapping[str, str] | None = None,
        events: int | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(msg)
        self.status = status
        self.msg = msg
        self.headers = dict(headers or {})
        self.events = events
        self.code = code


# --------------------------------------------------------------------------- headers


def header_pairs(headers: Mapping[str, str] | Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """The headers as (name, value) pairs, in the order received."""
    items = headers.items() if isinstance(headers, Mapping) else headers
    return [(str(name), str(value)) for name, value in items]


def header_fields(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Lower-cased names to trimmed values; the last of repeated headers wins, as in signing."""
    return {name.strip().lower(): value.strip() for name, value in pairs}


def authorization_key_id(fields: Mapping[str, str]) -> str | None:
    """The AccessKeyId of an ``Authorization: <id>:<signature>`` header, else None."""
    key_id, colon, _ = fields.get("authorization", "").partition(":")
    return key_id if colon and key_id else None


def declared_length(raw: str | None) -> int | None:
    """A Content-Length value as an int, ``None`` if absent or not a byte count."""
    if raw is None:
        return None
    text = raw.strip()
    return int(text) if text.isascii() and text.isdigit() else None


# --------------------------------------------------------------------------- the checks, in order


def check_route(method: str, target: str) -> tuple[str, str]:
    """The path and query of an upload (404 for another path, 405 for another method)."""
    parts = urlsplit(target)
    path, query = parts.path, parts.query
    if path != UPLOAD_PATH:
        raise Refusal(
            404,
            f"no such resource {show(path)}: events are uploaded with POST {UPLOAD_PATH}",
        )
    if method != "POST":
        raise Refusal(
            405,
            f"method {show(method)} is not allowed on {UPLOAD_PATH}: use POST",
            headers={"Allow": "POST"},
        )
    return path, query


def too_large(nbytes: int, limit: int, *, declared: bool = False) -> str:
    """The message for a body over the limit (``declared``: by its Content-Length)."""
    what = "Content-Length declares a body of" if declared else "the body has"
    return (
        f"{what} {nbytes} bytes, over the limit of {limit} bytes per request: "
        "split the events into smaller requests"
    )


def check_size(nbytes: int, limit: int) -> None:
    if nbytes > limit:
        raise Refusal(400, too_large(nbytes, limit))


def check_headers(fields: Mapping[str, str], body: bytes) -> tuple[str, str]:
    """The required headers; returns the AccessKeyId and signature from Authorization."""
    required = ["authorization", "content-md5", "content-type", "date"]
    required += ["x-cms-signature", "x-cms-api-version", "x-cms-ip"]
    if body:
        required.append("content-length")
    for name in required:
        if not fields.get(name):
            raise Refusal(
                400, f"missing required header {_HEADER_NAMES[name]} ({_HEADER_HINTS[name]})"
            )
    key_id, _, sent_signature = fields["authorization"].partition(":")
    if not key_id or not sent_signature or any(ch.isspace() for ch in key_id):
        raise Refusal(
            400,
            "header Authorization must be '<AccessKeyId>:<Signature>', "
            f"got {show(fields['authorization'])}",
        )
    media_type = fields["content-type"].split(";", 1)[0].strip().lower()
    if media_type != CONTENT_TYPE:
        raise Refusal(
            400,
            f"header Content-Type must be {CONTENT_TYPE!r}, got {show(fields['content-type'])}",
        )
    for name, wanted in (
        ("x-cms-signature", SIGNATURE_METHOD),
        ("x-cms-api-version", API_VERSION),
    ):
        if fields[name] != wanted:
            raise Refusal(400, f"header {name} must be {wanted!r}, got {show(fields[name])}")
    return key_id, sent_signature


def check_body_digest(fields: Mapping[str, str], body: bytes) -> None:
    """Content-Length (when sent) and Content-MD5 match the body as received."""
    declared = fields.get("content-length")
    if declared is not None:
        if not (declared.isascii() and declared.isdigit()):
            raise Refusal(400, f"header Content-Length must be a byte count, got {show(declared)}")
        if int(declared) != len(body):
            raise Refusal(
                400,
                f"header Content-Length is {declared} but the body has {len(body)} bytes "
                "(count UTF-8 bytes, not characters)",
            )
    sent, actual = fields["content-md5"], content_md5(body)
    if sent != actual:
        hint = ""
        if sent.upper() == actual:
            hint = "; send it in upper case"
        elif len(sent) == 24 and sent.endswith("=="):
            hint = "; it looks like base64, but CloudMonitor wants upper-case hex"
        raise Refusal(
            400,
            f"header Content-MD5 is {show(sent)} but the MD5 of the {len(body)}-byte "
            f"body is {actual!r} (upper-case hex of the body bytes){hint}",
        )


def check_date(text: str, *, now: float, max_skew_seconds: float) -> None:
    """Date is an RFC 1123 date (else 400) within ``max_skew_seconds`` of ``now`` (else 403)."""
    try:
        sent = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        raise Refusal(
            400,
            f"header Date {show(text)} is not an RFC 1123 date "
            "like 'Mon, 23 Oct 2017 06:51:11 GMT'",
        ) from None
    if sent.tzinfo is None:  # "-0000": UTC, source unknown
        sent = sent.replace(tzinfo=timezone.utc)
    offset = sent.timestamp() - now
    if abs(offset) > max_skew_seconds:
        direction = "behind" if offset < 0 else "ahead of"
        raise Refusal(
            403,
            f"Date {show(text)} is {abs(offset):.0f} s off the server clock "
            f"({direction} the server time {format_date(now)!r}; at most "
            f"{max_skew_seconds:g} s either way is accepted): sign each request "
            "with the current time and check the client's clock",
        )


def check_key(
    key_id: str, fields: Mapping[str, str], accepted: Sequence[Credentials]
) -> Credentials:
    """The accepted key with this id (else 403); an STS key must come with its token."""
    credentials = next((c for c in accepted if c.access_key_id == key_id), None)
    if credentials is None:
        known = ", ".join(mask(c.access_key_id) for c in accepted)
        raise Refusal(403, f"unknown AccessKeyId {show(key_id)} (this emulator accepts {known})")
    token = credentials.security_token
    if token is None:
        return credentials
    sent = fields.get("x-cms-security-token")
    if not sent:
        raise Refusal(
            403,
            f"AccessKeyId {show(key_id)} is a temporary (STS) key: send its security "
            "token in x-cms-security-token, with x-cms-caller-type: token",
        )
    if not hmac.compare_digest(sent.encode("utf-8"), token.reveal().encode("utf-8")):
        raise Refusal(
            403,
            f"x-cms-security-token does not match the token of AccessKeyId {show(key_id)} "
            "(expired, or from another AssumeRole call?)",
        )
    caller_type = fields.get("x-cms-caller-type")
    if caller_type != "token":
        raise Refusal(
            403,
            "header x-cms-caller-type must be 'token' when a security token is sent, "
            f"got {show(caller_type)}",
        )
    return credentials


def check_signature(
    credentials: Credentials,
    method: str,
    path: str,
    query: str,
    pairs: list[tuple[str, str]],
    sent_signature: str,
) -> None:
    """The signature recomputed from the request as received matches (in constant time)."""
    sign_string = request_string_to_sign(method, path, query, pairs)
    expected = signature(credentials.access_key_secret.reveal(), sign_string)
    if not hmac.compare_digest(sent_signature.encode("utf-8"), expected.encode("ascii")):
        tokens = security_tokens(header_fields(pairs), (credentials,))
        shown_pairs = [
            (name, TOKEN_MARKER if name.strip().lower() == _TOKEN_HEADER else hide(value, tokens))
            for name, value in pairs
        ]
        shown = request_string_to_sign(method, path, query, shown_pairs)
        raise Refusal(
            403,
            "the request signature does not match the one the server computed: "
            f"the server's string to sign is '{_escape(shown)}'; sign exactly "
            "this string with HMAC-SHA1 keyed by the AccessKeySecret, and send "
            "'<AccessKeyId>:<upper-case hex signature>' in Authorization",
        )


def security_tokens(
    fields: Mapping[str, str], accepted: Iterable[Credentials] = ()
) -> tuple[str, ...]:
    """The tokens no answer may show: the one the request sent and those of the accepted keys.

    Longest first, and none shorter than a few characters (those would match ordinary words).
    """
    tokens = {fields.get(_TOKEN_HEADER, "")}
    tokens.update("" if c.security_token is None else c.security_token.reveal() for c in accepted)
    return tuple(sorted((t for t in tokens if len(t) >= _MIN_HIDDEN_CHARS), key=len, reverse=True))


def hide(text: str, tokens: Iterable[str]) -> str:
    """``text`` with each of ``tokens`` replaced by :data:`TOKEN_MARKER`."""
    for token in tokens:
        text = text.replace(token, TOKEN_MARKER)
    return text


def hidden_fields(fields: Mapping[str, str], tokens: Sequence[str]) -> dict[str, str]:
    """The header fields as messages may show them: the token header's value, and any
    token inside another value, replaced by :data:`TOKEN_MARKER`."""
    return {
        name: TOKEN_MARKER if name == _TOKEN_HEADER else hide(value, tokens)
        for name, value in fields.items()
    }


def throttled(qps: float, key_id: str) -> Refusal:
    """The refusal of a request over the per-AccessKeyId quota (403, ``Retry-After: 1``)."""
    return Refusal(
        403,
        f"Throttling: rate limit exceeded, at most {qps:g} requests per second "
        f"per account (AccessKeyId {show(key_id)}); slow down and retry after 1 s",
        headers={"Retry-After": "1"},
    )


# --------------------------------------------------------------------------- the body


def count_events(body: bytes) -> int:
    """How many events a body holds, if it reads as a JSON array; else 0."""
    try:
        parsed = json.loads(body)
    except (ValueError, RecursionError):
        return 0
    return len(parsed) if isinstance(parsed, list) else 0


def parse_events(body: bytes, poison_marker: str | None) -> list[dict[str, Any]]:
    """The body as a list of valid events, or a 400 refusal naming the first problem."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Refusal(400, f"body is not valid UTF-8: {exc.reason} at byte {exc.start}") from None
    try:
        parsed: Any = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise Refusal(
            400,
            f"body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
        ) from None
    except ValueError as exc:  # NaN or Infinity, or an integer too long to convert
        raise Refusal(400, f"body is not valid JSON: {exc}") from None
    except RecursionError:
        raise Refusal(400, "body is not valid JSON: nested too deeply") from None
    if not isinstance(parsed, list):
        raise Refusal(400, f"body must be a JSON array of events, got {_json_type(parsed)}")
    if not parsed:
        raise Refusal(400, "body must hold at least 1 event, got an empty array", events=0)
    if len(parsed) > MAX_EVENTS_PER_REQUEST:
        raise Refusal(
            400,
            f"body holds {len(parsed)} events, over the limit of {MAX_EVENTS_PER_REQUEST} "
            "per request: split them into smaller requests",
            events=len(parsed),
        )
    for index, event in enumerate(parsed):
        problem = event_problem(event)
        if problem is None and poison_marker is not None and poison_marker in event["content"]:
            problem = "content contains the poison marker"
        if problem is not None:
            raise Refusal(400, f"event {index}: {problem}", events=len(parsed))
    return parsed


def event_problem(event: object) -> str | None:
    """What is wrong with one event (field, rule and value), or ``None``."""
    if not isinstance(event, dict):
        return f"must be a JSON object, got {_json_type(event)} {show(event)}"
    for name in ("name", "content"):
        if name not in event:
            return f"{name!r} is required"
        value = event[name]
        if not isinstance(value, str):
            return f"{name!r} must be a string, got {show(value)}"
        if not value:
            return f"{name!r} must not be empty"
    if "groupId" in event:
        group_id = event["groupId"]
        if (
            isinstance(group_id, bool)
            or not isinstance(group_id, int)
            or not 0 <= group_id <= GROUP_ID_MAX
        ):
            return f"'groupId' must be an integer >= 0 (a Long), got {show(group_id)}"
    if "time" in event and not valid_time(event["time"]):
        return (
            "'time' must be 'yyyyMMddTHHmmss.SSS+zzzz' (e.g. '20171023T144439.948+0800') "
            f"or epoch milliseconds, got {show(event['time'])}"
        )
    unknown = sorted(set(event) - set(EVENT_FIELDS))
    if unknown:
        return f"unknown field {unknown[0]!r} (allowed: {', '.join(EVENT_FIELDS)})"
    return None


def valid_time(value: object) -> bool:
    """A real ``yyyyMMddTHHmmss.SSS±zzzz`` date/time, or epoch milliseconds (digits or int)."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return value >= 0
    if not isinstance(value, str):
        return False
    if value.isascii() and value.isdigit():
        return True
    if not _TIME_PATTERN.match(value):
        return False
    try:
        datetime.strptime(value, _TIME_FORMAT)
    except ValueError:
        return False
    return True


def _reject_constant(name: str) -> Any:
    """For ``parse_constant``: NaN and Infinity are Python's, not JSON's."""
    raise ValueError(f"{name} is not valid JSON")


def _json_type(value: object) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return "null"


# --------------------------------------------------------------------------- words


def show(value: object) -> str:
    """A value for a message: strings quoted, others as JSON, cut to 80 characters."""
    text = repr(value) if isinstance(value, str) or value is None else _json_text(value)
    if len(text) > _SHOWN_VALUE_CHARS:
        text = f"{text[:_SHOWN_VALUE_CHARS]}... ({len(text)} characters)"
    return text


def _json_text(value: object) -> str:
    try:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    except (TypeError, ValueError):
        return repr(value)


def _escape(text: str) -> str:
    """Backslash-escape line breaks and tabs, so a multi-line string reads on one line."""
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
