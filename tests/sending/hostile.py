"""A hostile upload server of our own: it verifies nothing, stores what it reads, misbehaves.

:class:`HostileServer` is a small asyncio HTTP/1.1 server on 127.0.0.1, run in a
thread with its own event loop (``with HostileServer("gzip_bomb") as server:``).
Each request it reads completely (head and ``Content-Length`` body) is parsed as
the JSON array of events the upload API takes; then the server answers in the
manner of its **mode** (:data:`MODES`):

=============================== =========================================================
mode                            stores? what it answers
=============================== =========================================================
``ok``                          yes  200 ``{"code":"200"}``
``trickle_status``              yes  a 200 whose status line comes one byte per ``interval``
``trickle_body``                yes  a 200 whose chunked body comes one byte per ``interval``
``huge_body``                   yes  declares a 2 GiB body, streams until the client hangs
                                     up or ``huge_cap`` bytes are sent, then closes
``gzip_bomb``                   yes  a 200, ``Content-Encoding: gzip``, a small gzip that
                                     inflates to ``bomb_bytes`` (a valid JSON answer after
                                     that much whitespace)
``echo_headers``                no   403 whose msg holds every request header as received
``store_then_500/502/504``      yes  the 5xx (a gateway that timed out after the upstream
                                     stored)
``close_after_headers``         yes  a 200 status line and headers, then closes
``http_401``                    no   401 ``{"code":"401"}``
``http_403_signature``          no   403 like the service's signature refusal: the msg holds
                                     the server's string to sign, security token included
``http_403_throttling_empty_msg`` no 403 ``{"code":"Throttling.User","msg":""}``
``http_413``                    no   413 when the body exceeds ``max_body`` bytes; a smaller
                                     body is stored and answered 200
``http_429_plain``              no   429 with a plain-text body
``retry_after_negative``        no   429 and 503 in turn (JSON), with ``Retry-After: -5``
``mixed``                       -    one of the above per attempt, drawn from ``seed``, the
                                     body and how often the body was seen (so the draw does
                                     not depend on the order concurrent requests arrive in)
=============================== =========================================================

"Stores" means the events are kept (:meth:`HostileServer.stored`) before the
answer: an answer that does not store is one that proves nothing was stored.

``fail_first=K``: each distinct body is answered in the mode its first ``K``
times, then as ``ok`` (counted per body, not per request, so that a retry is
what recovers whatever order concurrent batches arrive in).

Every response is logged (:meth:`HostileServer.log`): the mode used, the status
sent, how many events were stored, the bytes sent, how long the server held the
answer and whether the client hung up first. Everything is bounded: header and
body sizes, every wait, the bytes of a huge body, the number of requests, and the
server's lifetime (it stops itself after ``lifetime`` seconds).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import random
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache
from typing import Any, Final

__all__ = ["MODES", "HostileServer", "Response", "StoredEvent", "hostile_server"]

MODES: Final = (
    "ok",
    "trickle_status",
    "trickle_body",
    "huge_body",
    "gzip_bomb",
    "echo_headers",
    "store_then_500",
    "store_then_502",
    "store_then_504",
    "close_after_headers",
    "http_401",
    "http_403_signature",
    "http_403_throttling_empty_msg",
    "http_413",
    "http_429_plain",
    "retry_after_negative",
    "mixed",
)

#: The modes whose answer comes after the events were stored.
STORING_MODES: Final = frozenset(
    {
        "ok",
        "trickle_status",
        "trickle_body",
        "huge_body",
        "gzip_bomb",
        "store_then_500",
        "store_then_502",
        "store_then_504",
        "close_after_headers",
    }
)

_MAX_HEAD_BYTES: Final = 64 * 1024
_MAX_BODY_BYTES: Final = 4 * 1024 * 1024
_MAX_REQUESTS: Final = 5_000
_IDLE_SECONDS: Final = 10.0
_OK_BODY: Final = b'{"code":"200","msg":""}'
_REASONS: Final = {
    200: "OK",
    401: "Unauthorized",
    403: "Forbidden",
    413: "Payload Too Large",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """One event the server kept, with the number of the request that carried it."""

    request: int
    event: Any


@dataclass(slots=True)
class Response:
    """What the server did with one request."""

    request: int  # from 1, in the order the requests were read completely
    mode: str  # the mode actually used (``ok`` once ``fail_first`` is spent; drawn for mixed)
    status: int | None  # the status sent (None: no status line finished)
    stored: int  # events stored for this request
    headers: dict[str, str]  # the request's headers, names lower-cased
    body_sha1: str
    body_bytes: int
    received_at: float  # time.monotonic() when the request was read completely
    sent_bytes: int = 0  # bytes of the answer written
    held: float = 0.0  # seconds from reading the request to the end of the answer
    client_hung_up: bool = False  # the client closed before the server finished the answer
    ended: bool = False  # the server is done with this answer (the fields above are final)


@dataclass(slots=True)
class _Config:
    mode: str = "ok"
    fail_first: int | None = None
    seed: int = 0
    pool: tuple[str, ...] = ()


@cache
def gzip_bomb(inflated: int) -> bytes:
    """A gzip that inflates to ``inflated`` bytes of whitespace and then a valid JSON answer."""
    step = 1 << 20
    spaces = b" " * step
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)  # wbits 31: a gzip wrapper
    parts: list[bytes] = []
    left = inflated
    while left > 0:
        chunk = spaces if left >= step else spaces[:left]
        parts.append(compressor.compress(chunk))
        left -= len(chunk)
    parts.append(compressor.compress(_OK_BODY))
    parts.append(compressor.flush())
    return b"".join(parts)


class HostileServer:
    """The hostile upload server (see the module's docstring for the modes).

    ``interval``: seconds between trickled bytes. ``huge_cap``: the most bytes of a
    huge body. ``bomb_bytes``: what the gzip inflates to. ``max_body``: the bytes
    above which ``http_413`` refuses. ``lifetime``: seconds after which the server
    stops itself. ``mixed_pool``: the modes ``mixed`` draws from (default: all others).
    """

    def __init__(
        self,
        mode: str = "ok",
        *,
        fail_first: int | None = None,
        seed: int = 0,
        interval: float = 0.2,
        huge_cap: int = 8 * 1024 * 1024,
        bomb_bytes: int = 200 * 1024 * 1024,
        max_body: int = 2048,
        lifetime: float = 120.0,
        mixed_pool: tuple[str, ...] | None = None,
    ) -> None:
        self.interval = interval
        self.huge_cap = huge_cap
        self.bomb_bytes = bomb_bytes
        self.max_body = max_body
        self.lifetime = lifetime
        self._config = _Config()
        self._lock = threading.Lock()
        self._stored: list[StoredEvent] = []
        self._log: list[Response] = []
        self._seen: dict[str, int] = {}
        self._requests = 0
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._failure: BaseException | None = None
        self.port = 0
        self.set_mode(mode, fail_first=fail_first, seed=seed, mixed_pool=mixed_pool)

    # ------------------------------------------------------------------ control

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        """True while the server's thread serves (False once stopped, or after ``lifetime``)."""
        return self._thread is not None and self._thread.is_alive()

    def set_mode(
        self,
        mode: str,
        *,
        fail_first: int | None = None,
        seed: int = 0,
        mixed_pool: tuple[str, ...] | None = None,
    ) -> None:
        """Answer from now on in ``mode`` (the per-body ``fail_first`` counts start again)."""
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}: one of {', '.join(MODES)}")
        pool = tuple(m for m in MODES if m != "mixed") if mixed_pool is None else mixed_pool
        unknown = [m for m in pool if m not in MODES or m == "mixed"]
        if unknown:
            raise ValueError(f"mixed_pool: unknown modes {unknown}")
        with self._lock:
            self._config = _Config(mode, fail_first, seed, pool)
            self._seen.clear()

    def stored(self) -> list[StoredEvent]:
        """The events stored so far, in order."""
        with self._lock:
            return list(self._stored)

    def log(self) -> list[Response]:
        """What was answered so far, one entry per request read completely."""
        with self._lock:
            return list(self._log)

    def wait_idle(self, timeout: float = 3.0) -> bool:
        """Wait (polling, at most ``timeout`` s) until every answer begun has ended, so that
        a client's hang-up is in the log; True if it came to that."""
        give_up = time.monotonic() + timeout
        while True:
            with self._lock:
                busy = any(not r.ended for r in self._log)
            if not busy or not self.running:
                return not busy
            if time.monotonic() > give_up:
                return False
            threading.Event().wait(0.005)

    def start(self) -> HostileServer:
        if self._thread is not None:
            raise RuntimeError("the server is already started")
        self._thread = threading.Thread(target=self._run, name="hostile-server", daemon=True)
        self._thread.start()
        if not self._ready.wait(10) or self._failure is not None:
            self.stop()
            raise RuntimeError(f"the hostile server did not start: {self._failure!r}")
        return self

    def stop(self) -> None:
        """Stop serving (connections are closed) and join the thread (bounded)."""
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None:
            with contextlib.suppress(RuntimeError):  # the loop already ended
                loop.call_soon_threadsafe(stop.set)
        if self._thread is not None:
            self._thread.join(10)
            if self._thread.is_alive():
                raise RuntimeError("the hostile server's thread did not end within 10 s")

    def __enter__(self) -> HostileServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ the loop

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported by start(); the thread must not die silently
            self._failure = exc
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        handlers: set[asyncio.Task[None]] = set()

        async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            assert task is not None
            handlers.add(task)
            try:
                await self._connection(reader, writer)
            except (ConnectionError, asyncio.IncompleteReadError, TimeoutError):
                pass
            finally:
                handlers.discard(task)
                writer.close()
                with contextlib.suppress(Exception):
                    await writer.wait_closed()

        server = await asyncio.start_server(on_connect, "127.0.0.1", 0, limit=_MAX_HEAD_BYTES)
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), self.lifetime)
        server.close()
        for task in list(handlers):
            task.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)
        await server.wait_closed()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), _IDLE_SECONDS)
            except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
                return
            lines = head.decode("latin-1").split("\r\n")
            raw_headers: list[tuple[str, str]] = []
            for line in lines[1:]:
                if ":" in line:
                    name, _, value = line.partition(":")
                    raw_headers.append((name.strip(), value.strip()))
            headers = {name.lower(): value for name, value in raw_headers}
            try:
                length = int(headers.get("content-length", "0"))
            except ValueError:
                return
            if not 0 <= length <= _MAX_BODY_BYTES:
                return
            body = await asyncio.wait_for(reader.readexactly(length), _IDLE_SECONDS)
            keep_open = await self._answer(reader, writer, lines[0], raw_headers, headers, body)
            if not keep_open:
                return

    def _choose(self, body_sha1: str) -> tuple[int, str] | None:
        """The request's number and the mode to answer it in (None: over the request cap)."""
        with self._lock:
            if self._requests >= _MAX_REQUESTS:
                return None
            self._requests += 1
            number = self._requests
            config = self._config
            seen = self._seen.get(body_sha1, 0)
            self._seen[body_sha1] = seen + 1
        if config.fail_first is not None and seen >= config.fail_first:
            return number, "ok"
        mode = config.mode
        if mode == "mixed":
            mode = random.Random(f"{config.seed}:{body_sha1}:{seen}").choice(config.pool)
        return number, mode

    async def _answer(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        request_line: str,
        raw_headers: list[tuple[str, str]],
        headers: dict[str, str],
        body: bytes,
    ) -> bool:
        """Answer one request; True to keep the connection open for the next."""
        digest = hashlib.sha1(body).hexdigest()
        chosen = self._choose(digest)
        if chosen is None:
            return False
        number, mode = chosen
        if mode == "http_413" and len(body) <= self.max_body:
            mode = "ok"
        stored = 0
        if mode in STORING_MODES:
            stored = self._store(number, body)
        entry = Response(
            request=number,
            mode=mode,
            status=None,
            stored=stored,
            headers=headers,
            body_sha1=digest,
            body_bytes=len(body),
            received_at=time.monotonic(),
        )
        with self._lock:
            self._log.append(entry)
        began = time.monotonic()
        try:
            keep_open = await self._respond(
                reader, writer, mode, number, request_line, raw_headers, entry
            )
        except (ConnectionError, OSError):
            entry.client_hung_up = True
            keep_open = False
        entry.held = time.monotonic() - began
        entry.ended = True
        return keep_open

    def _store(self, number: int, body: bytes) -> int:
        try:
            events = json.loads(body)
        except ValueError:
            return 0
        if not isinstance(events, list):
            return 0
        with self._lock:
            self._stored.extend(StoredEvent(number, event) for event in events)
        return len(events)

    # ------------------------------------------------------------------ the modes

    async def _respond(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        mode: str,
        number: int,
        request_line: str,
        raw_headers: list[tuple[str, str]],
        entry: Response,
    ) -> bool:
        async def send(data: bytes) -> None:
            writer.write(data)
            await writer.drain()
            entry.sent_bytes += len(data)

        async def send_simple(
            status: int,
            payload: bytes,
            extra: tuple[tuple[str, str], ...] = (),
            ctype: str = "application/json",
        ) -> bool:
            await send(
                _head(
                    status, [("Content-Type", ctype), ("Content-Length", str(len(payload))), *extra]
                )
                + payload
            )
            entry.status = status
            return True

        def answer(code: str, msg: str) -> bytes:
            return json.dumps({"code": code, "msg": msg, "requestId": f"hostile-{number}"}).encode()

        if mode == "ok":
            return await send_simple(200, answer("200", ""))
        if mode == "trickle_status":
            return await self._until_hang_up(reader, entry, self._trickle_status(send, entry))
        if mode == "trickle_body":
            return await self._until_hang_up(reader, entry, self._trickle_body(send, entry))
        if mode == "huge_body":
            await self._until_hang_up(reader, entry, self._huge_body(send, entry))
            return False
        if mode == "gzip_bomb":
            bomb = gzip_bomb(self.bomb_bytes)
            await send(
                _head(
                    200,
                    [
                        ("Content-Type", "application/json"),
                        ("Content-Encoding", "gzip"),
                        ("Content-Length", str(len(bomb))),
                    ],
                )
            )
            entry.status = 200
            await send(bomb)
            return True
        if mode == "echo_headers":
            echoed = "; ".join(f"{name}: {value}" for name, value in raw_headers)
            msg = f"InvalidAuthorization: the request as received: {request_line}; {echoed}"
            return await send_simple(403, answer("403", msg))
        if mode == "http_403_signature":
            return await send_simple(
                403, answer("403", _signature_refusal(request_line, raw_headers))
            )
        if mode == "http_403_throttling_empty_msg":
            return await send_simple(
                403, json.dumps({"code": "Throttling.User", "msg": ""}).encode()
            )
        if mode.startswith("store_then_"):
            status = int(mode.rsplit("_", 1)[1])
            if status == 500:
                return await send_simple(status, answer("500", "InternalError: please retry"))
            page = f"<html><body><h1>{status} {_REASONS[status]}</h1></body></html>".encode()
            return await send_simple(status, page, ctype="text/html")
        if mode == "close_after_headers":
            await send(
                _head(
                    200,
                    [("Content-Type", "application/json"), ("Content-Length", str(len(_OK_BODY)))],
                )
            )
            entry.status = 200
            return False
        if mode == "http_401":
            return await send_simple(401, answer("401", "Unauthorized"))
        if mode == "http_413":
            return await send_simple(413, answer("413", "Request Entity Too Large"))
        if mode == "http_429_plain":
            return await send_simple(429, b"Too Many Requests\n", ctype="text/plain")
        if mode == "retry_after_negative":
            status = 429 if number % 2 else 503
            return await send_simple(
                status, answer(str(status), _REASONS[status]), (("Retry-After", "-5"),)
            )
        raise AssertionError(f"no behaviour for mode {mode!r}")

    async def _until_hang_up(
        self, reader: asyncio.StreamReader, entry: Response, answer: Any
    ) -> bool:
        """Run ``answer`` (a coroutine) until it ends or the client hangs up, whichever
        comes first; True when the answer ended and the connection may serve again."""
        writing = asyncio.ensure_future(answer)
        hang_up = asyncio.ensure_future(reader.read(1))
        try:
            await asyncio.wait({writing, hang_up}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (writing, hang_up):
                task.cancel()
            await asyncio.gather(writing, hang_up, return_exceptions=True)
        if not writing.cancelled() and writing.exception() is None:
            return True
        if not writing.cancelled() and isinstance(writing.exception(), (ConnectionError, OSError)):
            entry.client_hung_up = True
            return False
        if hang_up.done() and not hang_up.cancelled():
            entry.client_hung_up = True
        return False

    async def _trickle_status(self, send: Callable[[bytes], Any], entry: Response) -> None:
        line = b"HTTP/1.1 200 OK\r\n"
        for i in range(len(line)):
            await send(line[i : i + 1])
            await asyncio.sleep(self.interval)
        entry.status = 200
        await send(
            f"Content-Type: application/json\r\nContent-Length: {len(_OK_BODY)}\r\n\r\n".encode()
            + _OK_BODY
        )

    async def _trickle_body(self, send: Callable[[bytes], Any], entry: Response) -> None:
        await send(
            _head(200, [("Content-Type", "application/json"), ("Transfer-Encoding", "chunked")])
        )
        entry.status = 200
        for i in range(len(_OK_BODY)):
            await asyncio.sleep(self.interval)
            await send(b"1\r\n" + _OK_BODY[i : i + 1] + b"\r\n")
        await send(b"0\r\n\r\n")

    async def _huge_body(self, send: Callable[[bytes], Any], entry: Response) -> None:
        await send(
            _head(200, [("Content-Type", "application/json"), ("Content-Length", str(2**31))])
            + b'{"code":"200","msg":"'
        )
        entry.status = 200
        chunk = b" " * (64 * 1024)
        while entry.sent_bytes < self.huge_cap:
            await send(chunk)


def _head(status: int, headers: list[tuple[str, str]]) -> bytes:
    lines = [f"HTTP/1.1 {status} {_REASONS[status]}", *(f"{n}: {v}" for n, v in headers)]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _signature_refusal(request_line: str, raw_headers: list[tuple[str, str]]) -> str:
    """The service's kind of signature 403: its string to sign, x-cms headers and all."""
    fields = {name.lower(): value for name, value in raw_headers}
    canonical = "\n".join(
        f"{name}:{fields[name]}" for name in sorted(fields) if name.startswith(("x-cms", "x-acs"))
    )
    path = request_line.split(" ")[1] if " " in request_line else "/"
    sign_string = "\n".join(
        [
            request_line.split(" ", maxsplit=1)[0],
            fields.get("content-md5", ""),
            fields.get("content-type", ""),
            fields.get("date", ""),
            canonical,
            path,
        ]
    )
    return (
        "SignatureDoesNotMatch: the request signature does not match the one the server "
        f"computed; the server's string to sign is {sign_string!r}"
    )


@contextlib.contextmanager
def hostile_server(mode: str = "ok", **options: Any) -> Iterator[HostileServer]:
    """``with hostile_server("trickle_body") as server:`` a started :class:`HostileServer`."""
    server = HostileServer(mode, **options)
    with server:
        yield server
