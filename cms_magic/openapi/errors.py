"""The errors of an OpenAPI call (read-back, issue 15), all :class:`~cms_magic.errors.CmsError`.

::

    CmsError
    └── OpenApiError              the service answered {Code, Message, RequestId}, or no usable answer
        ├── OpenApiAuthError      the credentials were refused (signature, unknown key, expired token)
        ├── OpenApiPermissionError  the key lacks a RAM permission (also builtins.PermissionError);
        │                         names it: ``cms:DescribeCustomEventAttribute``
        ├── OpenApiThrottledError still throttled when the retries' budget ran out
        ├── OpenApiServerError    5xx still failing when the retries' budget ran out
        └── OpenApiConnectionError  no answer at all (connect failed, timeout)

Every error carries ``action``, ``code``, ``message`` (the service's, scrubbed of secrets
and cut to a readable length), ``request_id`` and ``http_status`` (``None`` without an
answer). The text never holds a secret, a token, a signature or a URL (URLs may carry
tokens): :func:`OpenApiError.from_answer` is given the secrets to scrub.

Pure and light: imports nothing but :mod:`cms_magic.errors` and :mod:`cms_magic.redact`,
so the package root may re-export these names eagerly.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from cms_magic.errors import CmsError
from cms_magic.redact import scrub

__all__ = [
    "AUTH_CODE_PREFIXES",
    "PERMISSION_CODE_PREFIXES",
    "OpenApiAuthError",
    "OpenApiConnectionError",
    "OpenApiError",
    "OpenApiPermissionError",
    "OpenApiServerError",
    "OpenApiThrottledError",
    "is_throttling_code",
    "ram_action",
]

#: The RAM product prefix of the CloudMonitor actions (``cms:DescribeCustomEventCount``).
RAM_PRODUCT: Final = "cms"

#: Codes saying the credentials themselves were refused (not a missing permission).
AUTH_CODE_PREFIXES: Final = (
    "SignatureDoesNotMatch",
    "IncompleteSignature",
    "InvalidAccessKeyId",
    "InvalidSecurityToken",
    "InvalidTimeStamp",
    "SignatureNonceUsed",
    "InvalidAccessKeySecret",
)

#: Codes saying the key is valid but RAM does not allow the action.
PERMISSION_CODE_PREFIXES: Final = (
    "Forbidden",
    "NoPermission",
    "AccessDenied",
    "NotAuthorized",
    "Unauthorized",
)

_MAX_MESSAGE_CHARS: Final = 300


def ram_action(action: str) -> str:
    """The RAM action a call needs: ``cms:`` and the API action's name."""
    return f"{RAM_PRODUCT}:{action}"


def is_throttling_code(code: str | None) -> bool:
    """A ``Code`` of the ``Throttling`` family (``Throttling``, ``Throttling.User``...)."""
    return bool(code) and str(code).lower().startswith("throttling")


def _clean(text: object, secrets: Iterable[str | None]) -> str:
    cleaned = scrub(str(text or ""), secrets).replace("\n", " ").strip()
    if len(cleaned) > _MAX_MESSAGE_CHARS:
        cleaned = cleaned[: _MAX_MESSAGE_CHARS - 1] + "…"
    return cleaned


class OpenApiError(CmsError):
    """An OpenAPI call that failed; ``code``, ``message``, ``request_id``, ``http_status``
    and ``action`` say how. ``str()`` reads ``DescribeCustomEventCount: InvalidParameter:
    StartTime is invalid (HTTP 400, request id 5E3...)``."""

    def __init__(
        self,
        code: str,
        message: str,
        request_id: str | None = None,
        http_status: int | None = None,
        *,
        action: str = "",
        hint: str | None = None,
    ) -> None:
        self.code = code
        self.message = message
        self.request_id = request_id
        self.http_status = http_status
        self.action = action
        super().__init__(self._rule(), hint=self._default_hint() if hint is None else hint)

    def _default_hint(self) -> str | None:
        """What to do about this kind of failure, when the caller gave no hint."""
        return None

    def _rule(self) -> str:
        head = f"{self.action}: " if self.action else ""
        said = ": ".join(p for p in (self.code, self.message) if p) or "no details"
        where = [f"HTTP {self.http_status}"] if self.http_status is not None else []
        if self.request_id:
            where.append(f"request id {self.request_id}")
        return f"{head}{said}" + (f" ({', '.join(where)})" if where else "")

    @classmethod
    def from_answer(
        cls,
        *,
        action: str,
        code: object,
        message: object,
        request_id: object,
        http_status: int | None,
        secrets: Iterable[str | None] = (),
    ) -> OpenApiError:
        """The error of one answer, in the most precise class: the code and message are
        scrubbed of ``secrets`` (and of anything looking like a token) and cut short."""
        kept = list(secrets)
        text_code = _clean(code, kept)
        text = _clean(message, kept)
        rid = _clean(request_id, kept) or None
        kind: type[OpenApiError] = OpenApiError
        if is_throttling_code(text_code):
            kind = OpenApiThrottledError
        elif text_code.startswith(AUTH_CODE_PREFIXES):
            kind = OpenApiAuthError
        elif text_code.startswith(PERMISSION_CODE_PREFIXES) or (
            http_status == 403 and not text_code
        ):
            kind = OpenApiPermissionError
        elif http_status is not None and http_status >= 500:
            kind = OpenApiServerError
        return kind(text_code, text, rid, http_status, action=action)


class OpenApiAuthError(OpenApiError):
    """The service refused the credentials: a signature it could not verify, an unknown or
    disabled AccessKey, an expired or malformed STS token, a clock too far off."""

    def _default_hint(self) -> str:
        return "check the AccessKey id and secret (and the STS token, if any) and this clock"


class OpenApiPermissionError(OpenApiError, PermissionError):
    """The key is valid but RAM does not allow the action; ``ram_action`` names what to
    grant (``cms:DescribeCustomEventAttribute``). Also a builtin :class:`PermissionError`."""

    @property
    def ram_action(self) -> str:
        return ram_action(self.action) if self.action else ""

    def _default_hint(self) -> str | None:
        if not self.ram_action:
            return None
        return (
            f"grant the RAM action {self.ram_action} to this key's user or role (the "
            "system policy AliyunCloudMonitorReadOnlyAccess includes the read actions)"
        )

    def _rule(self) -> str:
        missing = f"missing RAM permission {self.ram_action}; " if self.ram_action else ""
        return missing + super()._rule()


class OpenApiThrottledError(OpenApiError):
    """Still throttled (a ``Throttling*`` code or ``x-acs-retry-after``) when the retries'
    budget ran out; ``retry_after`` is the service's last hint in seconds, if it gave one."""

    retry_after: float | None = None


class OpenApiServerError(OpenApiError):
    """The service kept failing (HTTP 5xx) until the retries' budget ran out."""


class OpenApiConnectionError(OpenApiError):
    """No answer: the connection failed or timed out (``code`` names the kind, such as
    ``ConnectTimeout``; ``http_status`` is None). The endpoint's URL is not in the text."""
