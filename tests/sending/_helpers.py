"""What the sending tests share: a client over a MockTransport that never waits, a frame,
and a scripted handler."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

import httpx
import pandas as pd

from cms_magic.emulator import Emulator, demo_credentials
from cms_magic.sending.client import Client

DEMO = demo_credentials()


def no_sleep_client(handler: Callable[[httpx.Request], httpx.Response], **kw: Any) -> Client:
    """A client over a MockTransport that never really waits (sleeps are recorded)."""
    sleeps: list[float] = kw.pop("sleeps", [])

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        await asyncio.sleep(0)

    kw.setdefault("qps", 0)
    kw.setdefault("credentials", DEMO)
    return Client(
        "http://127.0.0.1:9",
        transport=httpx.MockTransport(handler),
        sleep=sleep,
        random=lambda: 0.5,
        source_ip="10.0.0.1",
        **kw,
    )


def frame(n: int, marker: str = "row") -> pd.DataFrame:
    return pd.DataFrame(
        {"name": [f"ev{i % 7}" for i in range(n)], "content": [f"{marker}-{i}" for i in range(n)]}
    )


class Script:
    """A handler that answers from a script first, then passes to the emulator."""

    def __init__(self, emulator: Emulator, script: list[Any]) -> None:
        self.emulator = emulator
        self.script = list(script)
        self.dates: list[str] = []
        self.lock = threading.Lock()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        with self.lock:
            self.dates.append(request.headers["Date"])
            step = self.script.pop(0) if self.script else None
        if isinstance(step, Exception):
            raise step
        if isinstance(step, httpx.Response):
            return step
        return self.emulator.handle_request(request)
