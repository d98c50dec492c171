"""What the command line's tests share: a clean environment, a file of rows, a run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from cms_magic.emulator import EmulatorServer

CLOUD_VARIABLES = (
    "ALIBABA_CLOUD_ACCESS_KEY_ID",
    "ALIBABA_CLOUD_ACCESS_KEY_SECRET",
    "ALIBABA_CLOUD_SECURITY_TOKEN",
    "ALIBABA_CLOUD_PROFILE",
    "ALIBABA_CLOUD_CREDENTIALS_FILE",
    "ALIBABA_CLOUD_REGION_ID",
    "CMS_MAGIC_ENDPOINT",
)


def nothing_configured(monkeypatch: pytest.MonkeyPatch, home: Path) -> None:
    """No cloud credentials, no target in the environment, an empty HOME."""
    for var in CLOUD_VARIABLES:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(home))


def rows_file(tmp_path: Path, rows: int = 1, name: str = "rows.csv") -> Path:
    """``rows`` rows with columns name and content (``row 0``, ``row 1``...)."""
    path = tmp_path / name
    frame = pd.DataFrame({"name": ["a"] * rows, "content": [f"row {i}" for i in range(rows)]})
    frame.to_csv(path, index=False)
    return path


def environment_for(server: EmulatorServer, home: Path) -> dict[str, str]:
    """A child process's environment: the server's key, nothing else configured."""
    env = {k: v for k, v in os.environ.items() if k not in CLOUD_VARIABLES}
    env["HOME"] = str(home)
    env["ALIBABA_CLOUD_ACCESS_KEY_ID"] = server.credentials.access_key_id
    env["ALIBABA_CLOUD_ACCESS_KEY_SECRET"] = server.credentials.access_key_secret.reveal()
    return env


def cms_event(*arguments: str) -> list[str]:
    """The command line ``cms-event ARGUMENTS`` as this interpreter runs it."""
    return [sys.executable, "-m", "cms_magic", *arguments]


def run(arguments: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cms_event(*arguments), capture_output=True, text=True, env=env, check=False, timeout=60
    )


class RefusingOpenApi:
    """A loopback HTTP server that answers every request with one OpenAPI error
    (``{Code, Message, RequestId}`` and ``status``): what the emulator never says, such as
    a missing RAM permission. ``with RefusingOpenApi("NoPermission", 403) as url: ...``."""

    def __init__(self, code: str, status: int, message: str = "you are not authorized") -> None:
        import json
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        body = json.dumps({"Code": code, "Message": message, "RequestId": "REQ-1"}).encode()

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = _answer
            do_POST = _answer

            def log_message(self, *args: object) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> str:
        self._thread.start()
        return self.url

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
