"""Secret-leak audit of the core: one distinctive secret through every path, zero occurrences.

Covered here: DEBUG logs, exception messages and formatted tracebacks, reprs and
strs, result frames and HTML, dry-run previews, the command line's output, the
emulator's answers and logs. The magic, the panel (with its saved widget state)
and executed notebooks run the same canary in test_magic.py, test_widget.py and
test_notebooks.py.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import traceback
from pathlib import Path

import httpx
import pandas as pd
import pytest

import cms_magic
from cms_magic.credentials.static import Credentials, resolve_credentials
from cms_magic.emulator import ADMIN_TOKEN_HEADER, Emulator, Faults, serve
from cms_magic.sending.client import Client

SECRET = "SECRET-AUDIT-CANARY-9d2f7c"
TOKEN = "STS-TOKEN-AUDIT-CANARY-41ab"
KEY_ID = "LTAI5tAuditCanary0000abcd"


class Sink:
    """Collects every text the paths produce, and counts the canaries in it."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    def add(self, *items: object) -> None:
        for item in items:
            self.texts.append(item if isinstance(item, str) else repr(item))
            self.texts.append(str(item))

    def leaks(self) -> int:
        return sum(t.count(SECRET) + t.count(TOKEN) for t in self.texts)


def frame(n: int = 250) -> pd.DataFrame:
    return pd.DataFrame({"name": "audit", "content": [f"row {i}" for i in range(n)]})


def test_no_secret_in_any_core_output(caplog: pytest.LogCaptureFixture, tmp_path: Path) -> None:
    sink = Sink()
    creds = Credentials(KEY_ID, SECRET, security_token=TOKEN, source="audit")
    wrong = Credentials(KEY_ID, SECRET + "-wrong")
    caplog.set_level(logging.DEBUG)
    logging.getLogger("httpx").setLevel(logging.DEBUG)
    logging.getLogger("httpcore").setLevel(logging.DEBUG)
    with serve(credentials=creds, qps=0) as server:
        client = Client(server.url, credentials=creds, qps=0)
        ok = client.send(frame(), content_col="content")
        assert ok.ok
        dry = client.send(frame(), content_col="content", dry_run=True)
        refused = Client(server.url, credentials=wrong, qps=0).send(frame(), content_col="content")
        assert refused.error is not None
        server.emulator.set_faults(Faults(seed=1, error_503=0.3, reset_after=0.1, malformed=0.1))
        faulty = client.send(frame(2_000), content_col="content")
        job = client.send(frame(), content_col="content", background=True)
        job.wait(30)
        for result in (ok, dry, refused, faulty, job.result()):
            sink.add(result, result.summary(), result._repr_html_(), result.error, result.preview)
            sink.add(result.events.to_string(), result.requests.to_string(), result.failed())
        sink.add(job, client, client.auth, creds, wrong, server, server.emulator)
        sink.add(json.dumps(server.requests()), json.dumps(server.events()))
        answer = httpx.get(
            server.url + "/_emulator/requests", headers={ADMIN_TOKEN_HEADER: server.admin_token}
        )
        assert answer.status_code == 200  # the log over HTTP is audited too
        sink.add(answer.text)
    # Exceptions: a refused key as an error, malformed credential files, bad arguments.
    errors: list[BaseException] = []
    for attempt in (
        lambda: Credentials(KEY_ID, ""),
        lambda: resolve_credentials(KEY_ID, None),
        lambda: cms_magic.send(frame(1), credentials=creds),
        lambda: Client("not a url", credentials=creds),
    ):
        try:
            attempt()
        except Exception as exc:
            errors.append(exc)
    config = tmp_path / ".aliyun" / "config.json"
    config.parent.mkdir()
    good = json.dumps(
        {
            "profiles": [
                {
                    "name": "default",
                    "mode": "AK",
                    "access_key_id": KEY_ID,
                    "access_key_secret": SECRET,
                }
            ]
        }
    )
    config.write_text(good[:-3])  # cut short: malformed JSON that holds the secret
    try:
        resolve_credentials(env={}, home=tmp_path)
    except Exception as exc:
        errors.append(exc)
    assert len(errors) == 5
    for exc in errors:
        sink.add(exc, "".join(traceback.format_exception(exc)))
    sink.add("\n".join(r.getMessage() for r in caplog.records))
    sink.add("\n".join(str(r.args) for r in caplog.records))
    assert len(caplog.records) > 100  # the DEBUG logs of httpx, httpcore and cms_magic
    assert sum(len(t) for t in sink.texts) > 100_000
    control = Sink()
    control.add(creds.access_key_secret)
    assert control.leaks() == 2  # the audit would see a leak
    assert sink.leaks() == 0


def test_no_secret_in_the_command_line_output(tmp_path: Path) -> None:
    creds = Credentials(KEY_ID, SECRET)
    path = tmp_path / "rows.csv"
    frame(30).to_csv(path, index=False)
    with serve(credentials=creds, qps=0) as server:
        env = {
            "ALIBABA_CLOUD_ACCESS_KEY_ID": KEY_ID,
            "ALIBABA_CLOUD_ACCESS_KEY_SECRET": SECRET,
            "PATH": "/usr/bin:/bin",
            "HOME": str(tmp_path),
        }
        runs = [
            [str(path), "--endpoint", server.url, "--content-col", "content"],
            [str(path), "--endpoint", server.url, "--content-col", "content", "--dry-run"],
            [str(path), "--endpoint", server.url, "--content-col", "nope"],
        ]
        outputs = []
        for args in runs:
            done = subprocess.run(
                [sys.executable, "-m", "cms_magic", "send", *args],
                env=env,
                capture_output=True,
                text=True,
                check=False,
            )
            outputs.append(done.stdout + done.stderr)
    assert "30/30 events accepted" in outputs[0]
    assert sum(o.count(SECRET) for o in outputs) == 0


def test_no_secret_in_emulator_answers_to_bad_signatures() -> None:
    emulator = Emulator(Credentials(KEY_ID, SECRET), qps=0)
    client = Client(
        "http://127.0.0.1:9",
        credentials=Credentials(KEY_ID, SECRET + "x"),
        qps=0,
        transport=httpx.MockTransport(emulator.handle_request),
    )
    result = client.send(frame(5), content_col="content")
    answers = json.dumps(emulator.requests())
    assert result.error is not None
    assert "string to sign" in answers  # the emulator explains, as the service does
    assert SECRET not in answers + str(result.error) + result.summary()
