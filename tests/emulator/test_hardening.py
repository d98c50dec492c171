"""Emulator hardening: loopback by default, constant-time signature comparison."""

from __future__ import annotations

import hmac
import inspect

import httpx
import pytest

from cms_magic.emulator import Emulator, demo_credentials, serve, validation
from cms_magic.signing import CmsAuth


def test_served_on_loopback_by_default() -> None:
    assert inspect.signature(serve).parameters["host"].default == "127.0.0.1"
    with serve() as server:
        assert server.url.startswith("http://127.0.0.1:")


def test_signatures_are_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[object, object]] = []
    real = hmac.compare_digest

    def spy(a: str | bytes, b: str | bytes) -> bool:
        calls.append((a, b))
        return real(a, b)  # type: ignore[arg-type]

    monkeypatch.setattr(validation.hmac, "compare_digest", spy)  # type: ignore[attr-defined]
    creds = demo_credentials()
    emulator = Emulator(qps=0)
    auth = CmsAuth(creds.access_key_id, creds.access_key_secret, source_ip="10.0.0.1")
    with httpx.Client(transport=httpx.MockTransport(emulator.handle_request), auth=auth) as client:
        ok = client.post(
            "http://127.0.0.1/event/custom/upload", content=b'[{"name":"a","content":"b"}]'
        )
    assert ok.status_code == 200
    assert len(calls) == 1
    sent = ok.request.headers["Authorization"].split(":", 1)[1]
    assert sent in {c.decode() if isinstance(c, bytes) else c for c in calls[0]}
