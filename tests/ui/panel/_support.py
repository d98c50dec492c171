"""What the panel tests share: a recording comm, sample frames, a gated upload server.

ipywidgets 8 runs without a kernel: widgets get a no-op comm. A recording comm
(the ``comm`` package's documented hook) captures every message the widgets
would send, so the tests can check a secret never leaves the kernel.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import comm
import ipywidgets as w
import pandas as pd

from cms_magic.credentials.static import Credentials
from cms_magic.errors import CredentialsError

SECRET = "panel-test-secret-7f3a9c1e5b"  # distinctive, so a leak is easy to spot
KEY_ID = "LTAIpanelTestKey0042"


class RecordingComm(comm.DummyComm):
    """A comm that keeps every message a widget publishes."""

    sent: ClassVar[list[str]] = []

    def publish_msg(
        self,
        msg_type: str,
        data: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
        buffers: list[bytes] | None = None,
        **keys: Any,
    ) -> None:
        RecordingComm.sent.append(json.dumps([msg_type, data, metadata], default=str))


def frame(n: int, marker: str = "row") -> pd.DataFrame:
    return pd.DataFrame(  # type: ignore[no-any-return]  # pandas-stubs: Any here
        {
            "name": [f"ev{i % 3}" for i in range(n)],
            "message": [f"{marker}-{i}" for i in range(n)],
            "group_id": [i % 5 for i in range(n)],
        }
    )


def no_credentials() -> Credentials:
    raise CredentialsError("no Alibaba Cloud credentials found. Looked in:\n  - nowhere (test)")


def env_credentials() -> Credentials:
    return Credentials(KEY_ID, SECRET, source="environment")


def widget_state() -> str:
    """Every widget's state as the notebook would save it."""
    return json.dumps(w.Widget.get_manager_state(drop_defaults=False), default=str)


class GatedServer(ThreadingHTTPServer):
    """Answers every upload with HTTP 200 ``code "200"``, but only once ``gate`` is set."""

    daemon_threads = True

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.events = 0
        self.lock = threading.Lock()
        self.arrived = threading.Semaphore(0)
        super().__init__(("127.0.0.1", 0), _GatedHandler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _GatedHandler(BaseHTTPRequestHandler):
    server: GatedServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.arrived.release()
        self.server.gate.wait(10)
        with self.server.lock:
            self.server.events += len(json.loads(body))
        answer = b'{"code":"200","msg":"","requestId":"gated"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)
