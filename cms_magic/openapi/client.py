"""One small OpenAPI caller: an action and its parameters in, the parsed JSON answer out.

:class:`OpenApiClient` (and the one-shot :func:`call` / :func:`acall`) sends RPC-style
calls the way the official SDK does (``../shared/reference/openapi/api-shapes.md`` §2):
``POST /`` (or ``GET``) with the action's parameters in the query string and an empty
body, signed with ACS3-HMAC-SHA256 by :mod:`cms_magic.openapi.signing` (``x-acs-action``,
``x-acs-version``, a fresh ``x-acs-date`` and ``x-acs-signature-nonce`` per attempt).

- **Credentials**: a :class:`~cms_magic.credentials.Credentials` (anything with
  ``access_key_id``, ``access_key_secret``, ``security_token``), or a refreshing source
  with ``async current()`` giving a :class:`~cms_magic.credentials.refreshing.Triple`
  (:class:`~cms_magic.credentials.refreshing.RefreshingCredentials`): each attempt is
  signed with one whole triple, asked for afresh (a lone ``Triple`` serves too). An answer saying the STS token expired
  makes such a source refresh (``force_refresh``) and the call is tried once more.
- **Bounds**: each attempt has one total deadline (``timeout`` seconds: connect, send
  and the whole answer), the answer is read to at most ``max_answer_bytes`` (decoded),
  and retries are bounded by a :class:`~cms_magic.sending.retry.RetryPolicy` (attempts
  and total time).
- **Retried** (reads are idempotent): throttling (an ``x-acs-retry-after`` header, in
  milliseconds, on any error answer; or a ``Throttling*`` code), HTTP 500/502/503/504,
  and a request that got no answer (connect failure, timeout). The wait is the service's
  hint (capped at 120 s, as the SDK does), else full-jitter exponential backoff; a wait
  that would pass the policy's ``max_time`` ends the retries at once; ``sleep``, ``monotonic``, ``clock``,
  ``random`` and ``nonce`` are injectable, so tests never wait.
- **Errors**: the service's ``{Code, Message, RequestId}`` (HTTP 4xx/5xx, or a 200 whose
  ``Code`` is not ``"200"`` / ``Success`` is false) become the typed errors of
  :mod:`cms_magic.openapi.errors`; a missing permission names the RAM action. No error
  text holds a secret, token, signature or URL.

The synchronous forms run on the library's own event loop
(:mod:`cms_magic.sending._loop`), so they work in a notebook whose loop is running.
"""

from __future__ import annotations

import asyncio
import json
import random as _random
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from types import TracebackType
from typing import Final, Literal, Protocol, runtime_checkable

import httpx
import orjson

from cms_magic._version import __version__
from cms_magic.credentials.refreshing import Triple
from cms_magic.credentials.secret import Secret
from cms_magic.errors import ConfigError
from cms_magic.openapi.errors import (
    OpenApiConnectionError,
    OpenApiError,
    OpenApiServerError,
    OpenApiThrottledError,
    is_throttling_code,
)
from cms_magic.openapi.signing import (
    CredentialsLike,
    StaticCredentials,
    acs3_headers,
    format_date,
    new_nonce,
    percent_encode,
)
from cms_magic.sending.retry import RetryPolicy, backoff, may_retry
from cms_magic.settings import check_count, check_seconds

__all__ = [
    "CMS_VERSION",
    "DEFAULT_MAX_ANSWER_BYTES",
    "DEFAULT_TIMEOUT",
    "Answer",
    "CurrentCredentials",
    "OpenApiClient",
    "acall",
    "call",
    "retry_after_seconds",
]

#: The CloudMonitor OpenAPI version the read-back actions belong to.
CMS_VERSION: Final = "2019-01-01"
#: Seconds for one attempt, connect, request and the whole answer together.
DEFAULT_TIMEOUT: Final = 10.0
#: At most this many connect seconds (within the attempt's deadline).
_CONNECT_TIMEOUT: Final = 5.0
#: An answer is read to at most this many (decoded) bytes; a larger one is an error.
DEFAULT_MAX_ANSWER_BYTES: Final = 16 * 1024 * 1024
#: The SDK's cap on ``x-acs-retry-after`` (milliseconds).
_MAX_RETRY_AFTER_MS: Final = 120_000
_RETRY_STATUSES: Final = frozenset({500, 502, 503, 504})
_EXPIRED_TOKEN: Final = re.compile(r"^InvalidSecurityToken\.Expired", re.IGNORECASE)
_USER_AGENT: Final = f"cms-magic/{__version__} (openapi)"
#: Answers are asked for unencoded (not signed: the HTTP layer's header), so the byte
#: bound is on what arrives and no decoder can expand it.
_IDENTITY: Final = {"accept-encoding": "identity"}

Answer = dict[str, object]
"""A parsed JSON answer: the top-level object."""

Sleep = Callable[[float], Awaitable[None]]


@runtime_checkable
class CurrentCredentials(Protocol):
    """A refreshing source: ``await current()`` gives one whole triple."""

    async def current(self) -> Triple: ...


Credentials = CredentialsLike | CurrentCredentials | Triple
"""What signs: static keys, a refreshing source, or one triple."""


def retry_after_seconds(value: str | None) -> float | None:
    """``x-acs-retry-after`` (a positive integer of milliseconds) in seconds, capped at the
    SDK's 120 s; ``None`` when absent or not a positive integer."""
    if value is None:
        return None
    text = value.strip()
    if not text.isdigit() or int(text) <= 0:
        return None
    return min(int(text), _MAX_RETRY_AFTER_MS) / 1000.0


def _query_string(params: Mapping[str, str]) -> bytes:
    """The URL query, RFC 3986 encoded (space ``%20``): it decodes to exactly what is signed."""
    return "&".join(f"{percent_encode(k)}={percent_encode(v)}" for k, v in params.items()).encode(
        "ascii"
    )


def _params(params: Mapping[str, object] | None) -> dict[str, str]:
    """Parameters as strings; ``None`` values are left out (unset), bools are refused."""
    out: dict[str, str] = {}
    for key, value in (params or {}).items():
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise ConfigError(
                "an OpenAPI parameter must be a str, int or float", option=key, value=value
            )
        out[str(key)] = str(value)
    return out


class _Attempt:
    """What one attempt gave: an answer, or an error with its retry hint."""

    __slots__ = ("answer", "error", "expired_token", "retry_after", "retryable")

    def __init__(
        self,
        answer: Answer | None = None,
        error: OpenApiError | None = None,
        *,
        retryable: bool = False,
        retry_after: float | None = None,
        expired_token: bool = False,
    ) -> None:
        self.answer = answer
        self.error = error
        self.retryable = retryable
        self.retry_after = retry_after
        self.expired_token = expired_token


class OpenApiClient:
    """Calls one OpenAPI endpoint with one set of credentials (see the module).

    ``endpoint`` is the base URL (``https://metrics.cn-hangzhou.aliyuncs.com``, or the
    emulator's ``http://127.0.0.1:port``); its path, if any, is the request path.
    ``async with client:`` keeps one connection pool open for many calls (a paged read;
    nested ``async with`` blocks share it); without it each call opens its own. ``transport`` is handed to httpx (tests give an
    :class:`httpx.MockTransport`).
    """

    def __init__(
        self,
        endpoint: str,
        credentials: Credentials,
        *,
        version: str = CMS_VERSION,
        method: Literal["POST", "GET"] = "POST",
        timeout: float = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        max_answer_bytes: int = DEFAULT_MAX_ANSWER_BYTES,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        random: Callable[[], float] = _random.random,
        nonce: Callable[[], str] = new_nonce,
    ) -> None:
        url = httpx.URL(str(endpoint))
        if url.scheme not in ("http", "https") or not url.host:
            raise ConfigError(
                "must be an http:// or https:// URL with a host",
                option="endpoint",
                value=f"{url.scheme}://{url.host}" if url.host else "<not a URL>",
            )
        if method not in ("POST", "GET"):
            raise ConfigError("must be 'POST' or 'GET'", option="method", value=method)
        self.endpoint = str(url.copy_with(query=None, fragment=None)).rstrip("/")
        self._url = url.copy_with(query=None, fragment=None, path=url.path or "/")
        self.credentials = credentials
        self.version = version
        self.method: Literal["POST", "GET"] = method
        self.timeout = check_seconds(timeout, "timeout")
        self.retry = retry or RetryPolicy()
        self.max_answer_bytes = check_count(max_answer_bytes, "max_answer_bytes")
        self.transport = transport
        self.clock = clock
        self.monotonic = monotonic
        self.sleep = sleep
        self.random = random
        self.nonce = nonce
        self._http: httpx.AsyncClient | None = None
        self._depth = 0

    def __repr__(self) -> str:
        endpoint = getattr(self, "endpoint", None)
        credentials = getattr(self, "credentials", None)
        return f"OpenApiClient(endpoint={endpoint!r}, credentials={credentials!r})"

    # ---- connection pool ---------------------------------------------------------------

    def _new_http(self) -> httpx.AsyncClient:
        timeout = httpx.Timeout(self.timeout, connect=min(_CONNECT_TIMEOUT, self.timeout))
        from cms_magic.sending._transport import ssl_context

        return httpx.AsyncClient(
            transport=self.transport,
            timeout=timeout,
            follow_redirects=False,
            trust_env=False,
            verify=ssl_context(),  # one context for the process, not one per call
        )

    async def __aenter__(self) -> OpenApiClient:
        if self._http is None:
            self._http = self._new_http()
        self._depth += 1
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._depth -= 1
        if self._depth > 0:
            return  # an outer ``async with`` still holds the pool
        http, self._http = self._http, None
        if http is not None:
            await http.aclose()

    # ---- calls -------------------------------------------------------------------------

    def call(self, action: str, params: Mapping[str, object] | None = None) -> Answer:
        """:meth:`acall` from synchronous code (runs on the library's event loop; an
        interrupt while waiting cancels the call)."""
        from cms_magic.sending._loop import in_library_loop, wait_for

        if in_library_loop():
            raise RuntimeError("call() from the library loop would wait on itself; use acall()")
        return wait_for(self.acall(action, params))

    async def acall(self, action: str, params: Mapping[str, object] | None = None) -> Answer:
        """Call ``action`` with ``params`` (``None`` values left out; numbers stringified);
        the answer's JSON object, or a typed :class:`~cms_magic.openapi.errors.OpenApiError`."""
        values = _params(params)
        if self._http is not None:
            return await self._with_retries(self._http, action, values)
        async with self._new_http() as http:
            return await self._with_retries(http, action, values)

    async def _with_retries(
        self, http: httpx.AsyncClient, action: str, params: dict[str, str]
    ) -> Answer:
        started = self.monotonic()
        attempts = 0
        refreshed = False
        while True:
            attempts += 1
            outcome = await self._attempt(http, action, params)
            if outcome.answer is not None:
                return outcome.answer
            error = outcome.error
            assert error is not None  # an attempt gives one or the other
            if outcome.expired_token and not refreshed and hasattr(self.credentials, "current"):
                refresh = getattr(self.credentials, "force_refresh", None)
                if refresh is not None:
                    refreshed = True
                    await refresh()
                    continue
            if not outcome.retryable or not may_retry(
                self.retry, attempts, self.monotonic() - started
            ):
                if isinstance(error, OpenApiThrottledError):
                    error.retry_after = outcome.retry_after
                raise error
            hint = outcome.retry_after  # the service's own wait is kept whole (<= 120 s)
            wait = hint if hint is not None else backoff(self.retry, attempts, None, self.random())
            left = self.retry.max_time - (self.monotonic() - started)
            if wait > left:
                if isinstance(error, OpenApiThrottledError):
                    error.retry_after = outcome.retry_after
                raise error
            await self.sleep(wait)

    async def _signing_keys(self) -> CredentialsLike:
        source = self.credentials
        triple = await source.current() if isinstance(source, CurrentCredentials) else source
        if isinstance(triple, Triple):
            return StaticCredentials(triple.access_key_id, triple.secret, triple.token)
        return triple

    def _secrets(self, keys: CredentialsLike, headers: Mapping[str, str]) -> list[Secret]:
        """What an answer must not echo, kept masked until the scrub."""
        found = [keys.access_key_secret, keys.security_token]
        found += [headers.get("authorization"), headers.get("x-acs-security-token")]
        return [Secret(value) for value in found if value]

    async def _attempt(
        self, http: httpx.AsyncClient, action: str, params: dict[str, str]
    ) -> _Attempt:
        keys = await self._signing_keys()
        query = _query_string(params)
        url = self._url.copy_with(query=query or None)
        host = url.netloc.decode("ascii")
        headers = acs3_headers(
            self.method,
            host,
            url.path,
            params,
            {"accept": "application/json", "user-agent": _USER_AGENT, **_IDENTITY},
            b"",
            keys,
            action=action,
            version=self.version,
            date=format_date(self.clock()),
            nonce=self.nonce(),
        )
        secrets = self._secrets(keys, headers)
        del keys
        try:
            exchange = self._exchange(http, url, headers)
            status, answer_headers, body = await asyncio.wait_for(exchange, self.timeout)
        except (httpx.HTTPError, asyncio.TimeoutError) as exc:
            kind = type(exc).__name__
            del exc
            error = OpenApiConnectionError(kind, "no answer", action=action)
            return _Attempt(error=error, retryable=True)
        except _Unreadable as exc:
            return _Attempt(error=self._malformed(action, str(exc), None))
        return self._judge(action, status, answer_headers, body, secrets)

    async def _exchange(
        self, http: httpx.AsyncClient, url: httpx.URL, headers: dict[str, str]
    ) -> tuple[int, httpx.Headers, bytes]:
        request = http.build_request(self.method, url, headers=headers)
        response = await http.send(request, stream=True)
        try:
            encoding = response.headers.get("content-encoding", "identity").strip().lower()
            if encoding not in ("", "identity"):
                raise _Unreadable(f"answer is encoded ({encoding[:20]}) though identity was asked")
            if response.is_stream_consumed:  # read already (a mock transport's answer)
                chunks = [response.content]
            else:
                chunks = [chunk async for chunk in self._bounded(response)]
            if sum(len(chunk) for chunk in chunks) > self.max_answer_bytes:
                raise _Unreadable("answer too large")
        finally:
            await response.aclose()
        return response.status_code, response.headers, b"".join(chunks)

    async def _bounded(self, response: httpx.Response) -> AsyncIterator[bytes]:
        """The raw body's chunks, stopping past the bound (so a huge answer is not read)."""
        size = 0
        async for chunk in response.aiter_raw():
            size += len(chunk)
            yield chunk
            if size > self.max_answer_bytes:
                return

    def _malformed(self, action: str, what: str, status: int | None) -> OpenApiError:
        limit = f" (at most {self.max_answer_bytes:,} bytes are read)" if "large" in what else ""
        return OpenApiError("MalformedAnswer", what + limit, None, status, action=action)

    def _judge(
        self,
        action: str,
        status: int,
        headers: httpx.Headers,
        body: bytes,
        secrets: Iterable[Secret],
    ) -> _Attempt:
        parsed = _parse(body, headers.get("content-type", ""))
        retry_after = None
        if status >= 400:  # the SDK reads the header on error answers only
            retry_after = retry_after_seconds(headers.get("x-acs-retry-after"))
        fields = _error_fields(parsed)
        if 200 <= status < 300:
            if not isinstance(parsed, dict):
                return _Attempt(
                    error=self._malformed(action, "answer is not a JSON object", status)
                )
            if not _failed(parsed):
                return _Attempt(answer=parsed)
        if fields is None:
            fields = ("", "" if 200 <= status < 300 else f"HTTP {status} without details", None)
        code, message, request_id = fields
        error = OpenApiError.from_answer(
            action=action,
            code=code,
            message=message,
            request_id=request_id,
            http_status=status,
            secrets=[secret.reveal() for secret in secrets],
        )
        throttled = retry_after is not None or is_throttling_code(error.code)
        if throttled and not isinstance(error, OpenApiThrottledError):
            error = OpenApiThrottledError(
                error.code or "Throttling",
                error.message,
                error.request_id,
                status,
                action=action,
            )
        if isinstance(error, OpenApiThrottledError):
            error.retry_after = retry_after
        retryable = throttled or status in _RETRY_STATUSES
        if status in _RETRY_STATUSES and not isinstance(
            error, OpenApiServerError | OpenApiThrottledError
        ):
            error = OpenApiServerError(
                error.code, error.message, error.request_id, status, action=action
            )
        expired = bool(_EXPIRED_TOKEN.match(error.code))
        return _Attempt(
            error=error, retryable=retryable, retry_after=retry_after, expired_token=expired
        )


class _Unreadable(Exception):
    """The answer passed the byte bound, or came encoded."""


def _parse(body: bytes, content_type: str) -> object:
    """The answer's JSON (or, for an XML error, its Code/Message/RequestId); None if neither."""
    text = body.decode("utf-8", "replace")
    if "xml" in content_type.lower() or text.lstrip().startswith("<"):
        found = {
            key: match.group(1)
            for key in ("Code", "Message", "RequestId")
            if (match := re.search(rf"<{key}>(.*?)</{key}>", text, re.DOTALL))
        }
        return found or None
    try:
        return orjson.loads(text)  # a page of 1,000 events: ~4x faster than json
    except orjson.JSONDecodeError:
        pass  # e.g. an integer past 64 bits or a NaN, which json reads
    try:
        return json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: nested past the parser's depth
        return None


def _error_fields(parsed: object) -> tuple[object, object, object] | None:
    """``(Code, Message, RequestId)`` of an answer (the lower-case forms too), or None."""
    if not isinstance(parsed, dict):
        return None
    code = parsed.get("Code", parsed.get("code"))
    message = parsed.get("Message", parsed.get("message"))
    request_id = parsed.get("RequestId", parsed.get("requestId"))
    if code is None and message is None:
        return None
    return code, message, request_id


def _failed(answer: Answer) -> bool:
    """A 200 that is an error: ``Code`` other than ``"200"``, or ``Success`` false."""
    code = answer.get("Code", answer.get("code"))
    if code is not None and str(code) != "200":
        return True
    success = answer.get("Success")
    return success is False or (isinstance(success, str) and success.lower() == "false")


def call(
    action: str,
    params: Mapping[str, object] | None = None,
    *,
    endpoint: str,
    credentials: Credentials,
    version: str = CMS_VERSION,
    method: Literal["POST", "GET"] = "POST",
    timeout: float = DEFAULT_TIMEOUT,
    retry: RetryPolicy | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> Answer:
    """One OpenAPI call from synchronous code (see :class:`OpenApiClient`)."""
    client = OpenApiClient(
        endpoint,
        credentials,
        version=version,
        method=method,
        timeout=timeout,
        retry=retry,
        transport=transport,
    )
    return client.call(action, params)


async def acall(
    action: str,
    params: Mapping[str, object] | None = None,
    *,
    endpoint: str,
    credentials: Credentials,
    version: str = CMS_VERSION,
    method: Literal["POST", "GET"] = "POST",
    timeout: float = DEFAULT_TIMEOUT,
    retry: RetryPolicy | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> Answer:
    """One OpenAPI call from async code (see :class:`OpenApiClient`)."""
    client = OpenApiClient(
        endpoint,
        credentials,
        version=version,
        method=method,
        timeout=timeout,
        retry=retry,
        transport=transport,
    )
    return await client.acall(action, params)
