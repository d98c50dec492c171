"""A minimal ASGI app around :class:`cms_magic.emulator.Emulator`, for the loopback benchmarks.

Run it in its own process, so the server's CPU is not the client's::

    BENCH_EMULATOR_QPS=0 .venv/bin/python -m uvicorn benchmarks.asgi_emulator:app \\
        --host 127.0.0.1 --port 8765 --log-level warning

Every request goes through the emulator's full check list (headers, Content-MD5,
Date, signature, quota, body validation), exactly as with the in-package
server. Only the storage differs: accepted events are *counted*, not kept, so a
run of millions of events does not grow the server's memory.

Admin endpoints (not part of the service):

- ``GET /_emulator/count``: ``{"events": accepted events, "requests": requests
  handled, "by_status": {"200": n, "403": m, ...}}``, cumulative since start or
  the last reset;
- ``POST /_emulator/reset``: zero the counters and refill the quota.

``BENCH_EMULATOR_QPS`` sets the per-AccessKeyId quota (default 0: off).
"""

from __future__ import annotations

import json
import os
import threading
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from cms_magic.emulator import Emulator
from cms_magic.emulator.store import MemoryStore

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class CountingStore(MemoryStore):
    """A store that counts what it is given and keeps nothing.

    The emulator hands it every request's record and accepted events (see
    :class:`cms_magic.emulator.store.Store`); this one tallies the events and
    the answers' statuses, so memory stays flat however long the run.
    """

    def __init__(self) -> None:
        super().__init__()
        self._count_lock = threading.Lock()
        self.accepted_events = 0
        self.by_status: Counter[int] = Counter()

    def add(self, events: Sequence[Mapping[str, Any]], *, request: Mapping[str, Any]) -> None:
        with self._count_lock:
            self.by_status[request["status"]] += 1
            self.accepted_events += len(events)

    def count(self) -> int:
        with self._count_lock:
            return self.accepted_events

    def clear(self) -> None:
        with self._count_lock:
            self.accepted_events = 0
            self.by_status.clear()

    def counts(self) -> dict[str, Any]:
        with self._count_lock:
            return {
                "events": self.accepted_events,
                "requests": sum(self.by_status.values()),
                "by_status": {str(k): v for k, v in sorted(self.by_status.items())},
            }


class CountingEmulator(Emulator):
    """The emulator with every check, its accepted events counted instead of stored."""

    def __init__(self, **kwargs: Any) -> None:
        self.counter = CountingStore()
        super().__init__(store=self.counter, **kwargs)

    def counts(self) -> dict[str, Any]:
        return self.counter.counts()

    def reset_counts(self) -> None:
        """Zero the counters and refill the quota."""
        self.reset()


emulator = CountingEmulator(qps=float(os.environ.get("BENCH_EMULATOR_QPS", "0")))


async def _read_body(receive: Receive) -> bytes:
    parts: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        parts.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(parts)


async def _respond(
    send: Send, status: int, headers: Mapping[str, str] | list[tuple[str, str]], body: bytes
) -> None:
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in pairs]
    raw.append((b"content-length", str(len(body)).encode("ascii")))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """The ASGI entry point."""
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    if scope["type"] != "http":
        return
    body = await _read_body(receive)
    path: str = scope["path"]
    method: str = scope["method"]
    json_headers = [("content-type", "application/json")]
    if path == "/_emulator/count" and method == "GET":
        await _respond(send, 200, json_headers, json.dumps(emulator.counts()).encode())
        return
    if path == "/_emulator/reset" and method == "POST":
        emulator.reset_counts()
        await _respond(send, 200, json_headers, b'{"ok":true}')
        return
    raw_path: bytes = scope.get("raw_path") or path.encode("utf-8")
    target = raw_path.decode("latin-1")
    if scope.get("query_string"):
        target += "?" + scope["query_string"].decode("latin-1")
    headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
    answer = emulator.handle(method, target, headers, body)
    await _respond(send, answer.status, answer.headers, answer.body)
