"""Secret-leak audit: one distinctive AccessKey secret and one STS token through every
path, zero occurrences of either.

Covered here: DEBUG logs (the ``cms_magic`` logger, httpx and httpcore), exception
messages and tracebacks rendered with every frame's locals and every chained
exception, reprs and strs, summaries, row reasons, result frames and HTML, dry-run
previews, the command line's output, the emulator's answers and logs; a server that
echoes every request header (the token and Authorization included) into its
answer; the panel's widget state after sends with typed-in and with STS
credentials; and a notebook saved after a magic send, a panel send and a verbose
traceback, executed headless.
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import threading
import traceback
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import ipywidgets as w
import pandas as pd
import pytest

import cms_magic
from cms_magic.credentials.static import Credentials, resolve_credentials
from cms_magic.emulator import ADMIN_TOKEN_HEADER, Emulator, Faults, serve
from cms_magic.sending.client import Client
from cms_magic.ui.panel.panel import PUBLIC, Panel
from tests.credentials.test_locals import caught, renderings

SECRET = "SECRET-AUDIT-CANARY-9d2f7c"
TOKEN = "STS-TOKEN-AUDIT-CANARY-41ab"
KEY_ID = "LTAI5tAuditCanary0000abcd"
STS = Credentials(KEY_ID, SECRET, security_token=TOKEN, source="audit")
ENV_SECRET = "ALIBABA_CLOUD_ACCESS_KEY_SECRET"
ENV_TOKEN = "ALIBABA_CLOUD_SECURITY_TOKEN"


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

    def leaking(self) -> list[str]:
        """The texts that leak, cut around the first canary (for the assertion message)."""
        out = []
        for text in self.texts:
            at = min((i for i in (text.find(SECRET), text.find(TOKEN)) if i >= 0), default=-1)
            if at >= 0:
                out.append(text[max(0, at - 300) : at + 100])
        return out


def frame(n: int = 250) -> pd.DataFrame:
    return pd.DataFrame(  # type: ignore[no-any-return]  # pandas-stubs: Any here
        {"name": "audit", "content": [f"row {i}" for i in range(n)]}
    )


def sts_profile() -> dict[str, str]:
    return {
        "name": "default",
        "mode": "StsToken",
        "access_key_id": KEY_ID,
        "access_key_secret": SECRET,
        "sts_token": TOKEN,
    }


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def _cli_cut_short(home: Path) -> object:
    write(home / "a" / ".aliyun" / "config.json", json.dumps({"profiles": [sts_profile()]})[:-3])
    return resolve_credentials(env={}, home=home / "a")


def ini_sts() -> str:
    return (
        f"[default]\ntype = sts\naccess_key_id = {KEY_ID}\naccess_key_secret = {SECRET}\n"
        f"security_token = {TOKEN}\n"
    )


def _ini_twice(home: Path) -> object:
    write(home / "b" / ".alibabacloud" / "credentials.ini", ini_sts() * 2)
    return resolve_credentials(env={}, home=home / "b")


#: Calls that fail, each a function of a scratch directory only (so the frames a rendering
#: with locals shows are the library's): bad arguments, half an STS triple, malformed files.
ATTEMPTS: list[Callable[[Path], object]] = [
    lambda home: Credentials(KEY_ID, ""),
    lambda home: Credentials(KEY_ID, SECRET + "\x07", TOKEN),
    lambda home: resolve_credentials(KEY_ID, None),
    lambda home: resolve_credentials(None, SECRET, TOKEN, env={}, home=home),
    lambda home: resolve_credentials(env={ENV_SECRET: SECRET, ENV_TOKEN: TOKEN}, home=home),
    _cli_cut_short,
    _ini_twice,
]
#: Calls that fail while a Client is being built.
CLIENT_ATTEMPTS: list[Callable[[Path], object]] = [
    lambda home: cms_magic.send(frame(1), credentials=STS),
    lambda home: Client("not a url", credentials=STS),
]


def test_no_secret_in_any_core_output(caplog: pytest.LogCaptureFixture, tmp_path: Path) -> None:
    sink = Sink()
    creds = Credentials(KEY_ID, SECRET, security_token=TOKEN, source="audit")
    wrong = Credentials(KEY_ID, SECRET + "-wrong")
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="cms_magic")
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
            sink.add(result.events.to_csv(), result.requests.to_csv())  # every row's reason
        sink.add(job, client, client.auth, creds, wrong, server, server.emulator)
        sink.add(json.dumps(server.requests()), json.dumps(server.events()))
        answer = httpx.get(
            server.url + "/_emulator/requests", headers={ADMIN_TOKEN_HEADER: server.admin_token}
        )
        assert answer.status_code == 200  # the log over HTTP is audited too
        sink.add(answer.text)
    # Exceptions: a refused key as an error, malformed credential files, bad arguments; each
    # rendered with its frames' locals and chained exceptions.
    errors = [caught(attempt, tmp_path) for attempt in ATTEMPTS]
    errors.append(caught(lambda _home: refused.raise_for_error(), tmp_path))
    assert len(errors) == len(ATTEMPTS) + 1
    for exc in errors:
        sink.add(exc, "".join(traceback.format_exception(exc)), renderings(exc))
    # A half-built Client's repr fails (see the xfail below): rendered by the tolerant tools.
    for attempt in CLIENT_ATTEMPTS:
        exc = caught(attempt, tmp_path)
        sink.add(exc, "".join(traceback.format_exception(exc)))
        sink.add(renderings(exc, tolerate_failing_repr=True))
    sink.add("\n".join(r.getMessage() for r in caplog.records))
    sink.add("\n".join(str(r.args) for r in caplog.records))
    assert len(caplog.records) > 100  # the DEBUG logs of httpx, httpcore and cms_magic
    assert any(r.name.startswith("cms_magic") for r in caplog.records)
    assert sum(len(t) for t in sink.texts) > 100_000
    control = Sink()
    control.add(creds.access_key_secret.reveal(), creds.security_token)
    assert control.leaks() == 2  # the audit would see the text, not the masked token
    assert sink.leaks() == 0, sink.leaking()


def test_a_client_that_fails_to_build_renders_with_locals(tmp_path: Path) -> None:
    exc = caught(lambda _home: Client("not a url", credentials=STS), tmp_path)
    rendered = traceback.TracebackException.from_exception(exc, capture_locals=True)
    assert "not a url" in "".join(rendered.format())


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


# ----------------------------------------------------------------- a server that echoes


def echoed(headers: httpx.Headers | Any) -> str:
    """Every request header as a hostile server may echo it: lines, JSON, the token alone."""
    pairs = [(str(k), str(v)) for k, v in headers.items()]
    token = {k.lower(): v for k, v in pairs}.get("x-cms-security-token", "")
    lines = "\n".join(f"{k}: {v}" for k, v in pairs)
    return f"your request:\n{lines}\n{json.dumps(dict(pairs))}\ntoken was {token} ({token!r})"


def test_no_secret_from_a_server_that_echoes_every_header(
    caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    caplog.set_level(logging.DEBUG, logger="cms_magic")
    authorizations: list[str] = []

    def answer(status: int, code: str) -> Callable[[httpx.Request], httpx.Response]:
        def handler(request: httpx.Request) -> httpx.Response:
            authorizations.append(request.headers["authorization"])
            assert request.headers["x-cms-security-token"] == TOKEN  # the token went out
            return httpx.Response(status, json={"code": code, "msg": echoed(request.headers)})

        return handler

    sink = Sink()
    results = []
    for status, code in ((403, "SignatureDoesNotMatch"), (400, "InvalidParameter")):
        client = Client(
            "http://127.0.0.1:9",
            credentials=STS,
            qps=0,
            transport=httpx.MockTransport(answer(status, code)),
        )
        result = client.send(frame(6), content_col="content")
        results.append(result)
        sink.add(result, result.summary(), result._repr_html_(), result.error, client)
        sink.add(result.events.to_csv(), result.requests.to_csv(), result.failed().to_csv())
        if result.error is not None:
            error = caught(lambda _home: results[-1].raise_for_error(), tmp_path)
            sink.add(error, "".join(traceback.format_exception(error)), renderings(error))
    assert results[0].error is not None  # refused credentials stop the send
    assert results[1].counts().get("rejected") == 6  # every row, with the server's reason
    sink.add("\n".join(r.getMessage() for r in caplog.records))
    assert any(r.name.startswith("cms_magic") for r in caplog.records)
    signatures = {a.partition(":")[2] for a in authorizations}
    assert len(signatures) > 2
    seen = "\n".join(sink.texts)
    assert "<redacted>" in seen  # the echo was read, and scrubbed
    assert sink.leaks() == 0, sink.leaking()
    assert [s for s in signatures if s in seen] == []


class EchoServer(ThreadingHTTPServer):
    """Answers every request with a 403 whose msg echoes every request header."""

    daemon_threads = True

    def __init__(self) -> None:
        self.requests = 0
        super().__init__(("127.0.0.1", 0), _EchoHandler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _EchoHandler(BaseHTTPRequestHandler):
    server: EchoServer

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", "0")))
        self.server.requests += 1
        body = json.dumps({"code": "SignatureDoesNotMatch", "msg": echoed(self.headers)})
        data = body.encode()
        self.send_response(403)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def echo_server() -> Iterator[EchoServer]:
    server = EchoServer()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def widgets_of(root: Any) -> list[Any]:
    """``root`` and every widget under it (children, and widgets held in its state)."""
    found: list[Any] = []
    todo = [root]
    while todo:
        widget = todo.pop()
        if any(widget is f for f in found):
            continue
        found.append(widget)
        for name in widget.keys:
            value = getattr(widget, name)
            values = value if isinstance(value, list | tuple) else [value]
            todo += [v for v in values if isinstance(v, w.Widget)]
    return found


def test_no_secret_in_the_panels_widget_state_after_sends_to_an_echoing_server(
    echo_server: EchoServer, tmp_path: Path
) -> None:
    from tests.ui.panel._support import no_credentials

    sink = Sink()
    typed = Panel(frame(5), namespace={}, credentials_resolver=no_credentials, region=PUBLIC)
    sts = Panel(frame(5), namespace={}, credentials_resolver=lambda: STS, region=PUBLIC)
    typed.custom_endpoint.value = echo_server.url
    sts.custom_endpoint.value = echo_server.url
    assert typed.credentials_entry.layout.display == ""  # asks for a key
    typed.key_id.set_state({"value": KEY_ID})  # as a browser sends them
    typed.secret.set_state({"value": SECRET})
    assert typed.entry.typed is not None
    for panel in (typed, sts):
        panel.send_button.click()
        assert panel.wait(30)
        assert panel.result is not None
        assert panel.result.error is not None  # the echoing 403
        every = widgets_of(panel.widget)
        assert len(every) > 30
        sink.add(*(json.dumps(x.get_state(), default=str) for x in every))
        sink.add(panel, panel.result, panel.result.summary(), panel.result._repr_html_())
        sink.add(repr(vars(panel.entry)), panel.result.events.to_csv())
        if panel.last_error is not None:
            sink.add(renderings(panel.last_error))
    sink.add(json.dumps(w.Widget.get_manager_state(drop_defaults=False), default=str))
    assert echo_server.requests >= 2
    assert "<redacted>" in "".join(sink.texts)
    assert sink.leaks() == 0, sink.leaking()
    assert SECRET not in "".join(sink.texts)


@pytest.fixture
def kernel_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A kernelspec for this interpreter under a throw-away JUPYTER_PATH (as test_panel.py's),
    with STS credentials in the kernel's environment; the kernel's name."""
    spec = tmp_path / "jupyter" / "kernels" / "cms-magic-audit"
    spec.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    kernel = {"argv": argv, "display_name": "cms_magic audit", "language": "python"}
    (spec / "kernel.json").write_text(json.dumps(kernel))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "runtime"))
    monkeypatch.setenv("JUPYTER_PLATFORM_DIRS", "1")
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", KEY_ID)
    monkeypatch.setenv(ENV_SECRET, SECRET)
    monkeypatch.setenv(ENV_TOKEN, TOKEN)
    return "cms-magic-audit"


AUDIT_CELLS = [
    """\
%load_ext cms_magic
import cms_magic, pandas as pd
from cms_magic.ui.panel.panel import PUBLIC
df = pd.DataFrame({"name": ["audit"] * 5, "content": [f"row {i}" for i in range(5)]})""",
    "%cms_event r --df df --name-col name --content-col content --endpoint {url}\n"
    "print(r.summary())\nr",
    """\
p = cms_magic.panel(df, region=PUBLIC)
p.custom_endpoint.value = "{url}"
p.send_button.click()
assert p.wait(60)
print(p.result.summary())
p""",
    "%xmode Verbose",
    "r.raise_for_error()",
    "cms_magic.resolve_credentials(profile='nowhere')",
]


@pytest.mark.timeout(180)
def test_no_secret_in_a_saved_notebook_after_sends_to_an_echoing_server(
    kernel_env: str, echo_server: EchoServer, tmp_path: Path
) -> None:
    nbclient = pytest.importorskip("nbclient")
    nbformat = pytest.importorskip("nbformat")
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(source.replace("{url}", echo_server.url))
        for source in AUDIT_CELLS
    ]
    for raising in nb.cells[4:]:  # the verbose tracebacks are outputs, not failures
        raising.metadata["tags"] = ["raises-exception"]
    client = nbclient.NotebookClient(
        nb, kernel_name=kernel_env, store_widget_state=True, timeout=120
    )
    client.execute(cwd=os.getcwd())
    errors = [o for c in nb.cells[4:] for o in c.outputs if o["output_type"] == "error"]
    assert [e["ename"] for e in errors] == ["AuthError", "CredentialsError"]
    verbose = re.sub(r"\x1b\[[0-9;]*m", "", "".join(errors[1]["traceback"]))
    assert "chosen = " in verbose  # %xmode Verbose showed the frames' variables
    assert echo_server.requests >= 2  # the magic's send and the panel's
    path = tmp_path / "audited.ipynb"
    nbformat.write(nb, str(path))
    saved = path.read_text(encoding="utf-8")
    assert "application/vnd.jupyter.widget-state+json" in saved
    assert "redacted" in saved  # the echoes were saved, scrubbed
    assert saved.count(SECRET) + saved.count(TOKEN) == 0
    assert json.dumps(TOKEN)[1:-1] not in saved
