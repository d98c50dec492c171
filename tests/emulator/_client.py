"""Requests as the package's client signs them, for the emulator's tests.

Every request is signed by the real :class:`~cms_magic.signing.CmsAuth` at a
fixed time (:data:`NOW`, the shared ``FakeClock``'s start), so a test changes
one thing about an otherwise valid request and sees the emulator's answer.
"""

from __future__ import annotations

import re
from typing import Any

import httpx

from cms_magic.credentials.static import Credentials
from cms_magic.emulator import Emulator, EmulatorResponse, demo_credentials
from cms_magic.protocol import UPLOAD_PATH
from cms_magic.signing import CmsAuth
from tests.conftest import FakeClock

NOW = FakeClock().now  # 1_700_000_000.0: Tue, 14 Nov 2023 22:13:20 GMT
SOURCE_IP = "192.0.2.1"
GOOD_BODY = b'[{"name":"Event_0","content":"123,abc","groupId":100}]'
GOOD_EVENT = {"name": "Event_0", "content": "123,abc", "groupId": 100}
REQUEST_ID = re.compile(r"^[0-9A-F]{8}-[0-9A-F]{4}-4[0-9A-F]{3}-[89AB][0-9A-F]{3}-[0-9A-F]{12}$")

Pairs = list[tuple[str, str]]


def make_emulator(**kwargs: Any) -> Emulator:
    """An emulator whose clocks stand still unless the test passes its own."""
    kwargs.setdefault("clock", FakeClock(NOW))
    kwargs.setdefault("monotonic", FakeClock(0.0))
    return Emulator(**kwargs)


def signed(
    body: bytes,
    *,
    credentials: Credentials | None = None,
    at: float = NOW,
    headers: dict[str, str] | None = None,
) -> Pairs:
    """The headers CmsAuth sends for ``body``, as (name, value) pairs."""
    creds = credentials or demo_credentials()
    request = httpx.Request(
        "POST", f"http://emulator.test{UPLOAD_PATH}", content=body, headers=headers
    )
    CmsAuth.from_credentials(creds, source_ip=SOURCE_IP, clock=lambda: at).sign(request)
    return request.headers.multi_items()


def replaced(pairs: Pairs, name: str, value: str | None) -> Pairs:
    """``pairs`` with header ``name`` set to ``value`` (dropped when ``None``)."""
    kept = [(n, v) for n, v in pairs if n.lower() != name.lower()]
    return kept if value is None else [*kept, (name, value)]


def post(emu: Emulator, body: bytes, pairs: Pairs | None = None) -> EmulatorResponse:
    """``body`` uploaded with ``pairs`` (default: signed as the client would)."""
    return emu.handle("POST", UPLOAD_PATH, signed(body) if pairs is None else pairs, body)


def mock_client(
    emu: Emulator, credentials: Credentials | None = None, *, at: float = NOW
) -> httpx.Client:
    """An httpx client signing with ``credentials`` at ``at``, answered in-process by ``emu``."""
    auth = CmsAuth.from_credentials(
        credentials or demo_credentials(), source_ip=SOURCE_IP, clock=lambda: at
    )
    return httpx.Client(
        transport=httpx.MockTransport(emu.handle_request),
        auth=auth,
        base_url="http://emulator.test",
    )


def upload(client: httpx.Client, body: bytes) -> httpx.Response:
    return client.post(UPLOAD_PATH, content=body)


def event_body_of_exactly(size: int) -> bytes:
    """A one-event body of exactly ``size`` bytes."""
    head, tail = b'[{"name":"big","content":"', b'"}]'
    return head + b"x" * (size - len(head) - len(tail)) + tail
