"""The panel in a real browser: JupyterLab on 127.0.0.1, Debian's Chromium, Playwright.

The notebook opens the panel on the sample data (``cms_magic.sample_frame()``:
1,200 incidents with Chinese text and emoji) on a real region (credentials from
the kernel's environment, with a distinctive secret; a dry run signs with them,
nothing is posted). In the page, the test chooses the local emulator in the
region dropdown, clicks Send, waits until every row was accepted, checks the
emulator holds the events, and takes the clean screenshots at 1,400 and 1,000
px wide (``panel.png`` = ``panel-1400.png``, and ``panel-1000.png``), checking the
layout at both widths (contrast of the selected toggle, disabled buttons that
look disabled, no truncated label, button or placeholder, toggle rows on one
line, tables inside their box, no panel wider than its cell). The Events tab
then reads those events back (name and the sample's week typed in, Read): a
chart of bars and the first 20 events in a table, laid out cleanly
(``panel-events.png``). Then a send the
emulator partly refuses (an error state: ``panel-error.png``), a send it refuses
(the environment's key to the emulator under another name, 403: the outcome next
to Send is one line with its details folded, nothing under Retry failed:
``panel-refused.png``), ``LOCAL`` typed as the custom URL, a send cancelled while
the emulator holds its answers back (shown as cancelled, not as a failure), and a
malformed URL answered with the URL rule; last, the notebook is saved and neither it nor the page holds the secret. Two more cells run
the magic on the same data (a send to the emulator, then a mistyped column: one
line, no traceback) for ``magic.png`` and ``magic-error.png``.

Screenshots go to ``.artifacts/``, or next to ``$CMS_MAGIC_SCREENSHOT``
(``make screenshot``: ``docs/panel.png``, ``docs/panel-1000.png``...).

The recipe and its gotchas are in ``../shared/reference/browser-testing.md``:
wait for the kernel in the status bar before running cells (the kernel-start
race), resolve nothing but loopback in Chromium, allow root, hide the news
toast, throw-away Jupyter directories, shut down through ``/api/shutdown``.

Chromium and the CJK and emoji fonts come from ``tools/install-browser.sh``;
without them the test skips, unless ``CI`` is set, where it fails (a broken CI
image must not pass).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]

CHROMIUM = Path("/usr/lib/chromium/chromium")
REPO = Path(__file__).resolve().parents[2]
# The screenshots go to an ignored folder; `make screenshot` points them at docs/panel.png
# (the README's, 1,400 px wide), with panel-1400.png, panel-1000.png and panel-error.png.
SCREENSHOT = Path(os.environ.get("CMS_MAGIC_SCREENSHOT", str(REPO / ".artifacts" / "panel.png")))
SHOTS = SCREENSHOT.parent
LAYOUT = REPO / ".artifacts" / "layout.json"  # what the layout checks measured
FONTS = ("Noto Sans CJK SC", "Noto Color Emoji")  # fonts-noto-cjk, fonts-noto-color-emoji
WIDE, NARROW = 1400, 1000
KERNEL_NAME = "cms-magic-browser"
KERNEL_DISPLAY = "cms_magic browser test"
KEY_ID = "LTAIbrowserTestKey01"
SECRET = f"cms-browser-secret-{secrets.token_hex(8)}"
ROWS = 1200  # the sample data
REFUSED = "1407 ms"  # in the first row's message only: the emulator refuses it

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-proxy-server",
    # Chromium resolves Google names even with the flags above; map every name to
    # NOTFOUND except loopback (IP literals match the rule too, hence the EXCLUDE).
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost",
]

NOTEBOOK_SOURCE = """\
import json, os
import cms_magic
from cms_magic import emulator

incidents = cms_magic.sample_frame()  # 1,200 rows: Chinese text and emoji
p = cms_magic.panel(incidents)

# A real region first: credentials come from the environment and show masked;
# a dry run signs with them (nothing is posted).
p.region.value = "cn-hangzhou"
assert "environment" in p.credentials_label.value, p.credentials_label.value
p.dry_run()
assert p.wait(30)

# The test chooses the local emulator in the region dropdown in the page, then Send.
p.name_mode.value = "constant"
p.name_value.value = "incident"
p.content_mode.value = "column"
p.content_column.value = "message"
with open(os.environ["CMS_PANEL_STATE"], "w") as f:
    json.dump({"emulator": emulator.embedded().url, "admin_token": emulator.embedded().admin_token}, f)
p
"""


# The magic on the same data, for the docs (docs/magic.png, docs/magic-error.png): a send
# to the emulator, then a mistyped column (last: a failing cell stops Run All).
MAGIC_CELLS = (
    "%load_ext cms_magic\n"
    "%cms_event --df incidents --name incident --content-col message --endpoint local",
    "%cms_event --df incidents --name incident --content-col mesage --endpoint local",
)


def require(what: str, present: bool) -> None:
    """Skip without ``what``, or fail when ``CI`` is set."""
    if present:
        return
    message = f"{what} is missing; run `bash tools/install-browser.sh`"
    if os.environ.get("CI"):
        pytest.fail(f"{message} (CI is set: the browser test must run)")
    pytest.skip(message)


# ----------------------------------------------------------------- process bookkeeping


def _start_time(pid: int) -> str | None:
    """The process's start time (field 22 of /proc/<pid>/stat), None if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rpartition(")")[2].split()[19]


def _children(parent: int) -> list[tuple[int, str]]:
    """(pid, start time) of the live children of ``parent``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if int(fields[1]) == parent:
            found.append((int(entry.name), fields[19]))
    return found


@dataclass
class Lab:
    url: str
    token: str
    root: Path
    state_file: Path
    log: Path
    process: subprocess.Popen[bytes]
    children: list[tuple[int, str]] = field(default_factory=list)

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"token {self.token}"}

    def record_children(self) -> None:
        """Remember the server's children (the kernel), to clean up after a crash."""
        self.children = _children(self.process.pid)

    def log_tail(self) -> str:
        try:
            return self.log.read_text(errors="replace")[-4000:]
        except OSError:
            return "(no log)"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def _write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


def _notebook() -> dict[str, Any]:
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source) for source in (NOTEBOOK_SOURCE, *MAGIC_CELLS)]
    nb.metadata["kernelspec"] = {
        "name": KERNEL_NAME,
        "display_name": KERNEL_DISPLAY,
        "language": "python",
    }
    return dict(nb)


def _fonts_present() -> bool:
    try:
        listed = subprocess.run(
            ["fc-list", ":", "family"], capture_output=True, text=True, timeout=30, check=False
        ).stdout
    except OSError:
        return False
    return all(font in listed for font in FONTS)


@pytest.fixture
def chromium() -> Path:
    """Debian's Chromium, the CJK and emoji fonts, and Playwright, checked first."""
    require(str(CHROMIUM), CHROMIUM.exists())
    require(" and ".join(FONTS), _fonts_present())
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        require("playwright (the test extra)", False)
    return CHROMIUM


@pytest.fixture
def lab(chromium: Path, tmp_path: Path) -> Iterator[Lab]:
    import httpx

    root = tmp_path / "notebooks"
    root.mkdir()
    (root / "panel.ipynb").write_text(json.dumps(_notebook()))
    settings = tmp_path / "lab-settings"
    _write_json(
        settings / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings",
        {"fetchNews": "false", "checkForUpdates": False},
    )
    _write_json(
        settings / "@jupyter-widgets" / "jupyterlab-manager" / "plugin.jupyterlab-settings",
        {"saveState": True},  # so the saved notebook holds the widget state we check
    )
    kernel = tmp_path / "jupyter-path" / "kernels" / KERNEL_NAME / "kernel.json"
    _write_json(
        kernel,
        {
            "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": KERNEL_DISPLAY,
            "language": "python",
        },
    )
    state_file = tmp_path / "state.json"
    env = {
        **os.environ,
        "JUPYTER_CONFIG_DIR": str(tmp_path / "config"),
        "JUPYTER_DATA_DIR": str(tmp_path / "data"),
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
        "JUPYTER_PATH": str(tmp_path / "jupyter-path"),
        "JUPYTER_PLATFORM_DIRS": "1",
        "JUPYTERLAB_SETTINGS_DIR": str(settings),
        "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path / "workspaces"),
        "IPYTHONDIR": str(tmp_path / "ipython"),
        "ALIBABA_CLOUD_ACCESS_KEY_ID": KEY_ID,
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET": SECRET,
        "CMS_PANEL_STATE": str(state_file),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    }
    for name in ("ALIBABA_CLOUD_SECURITY_TOKEN", "ALIBABA_CLOUD_PROFILE"):
        env.pop(name, None)
    port = _free_port()
    token = secrets.token_hex(16)
    log = tmp_path / "jupyter.log"
    command = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        "--ServerApp.allow_root=True",
        f"--ServerApp.root_dir={root}",
        f"--IdentityProvider.token={token}",
        "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--LabApp.extension_manager=readonly",
        "--LabApp.expose_app_in_browser=True",
    ]
    with log.open("wb") as log_file:
        process = subprocess.Popen(
            command, env=env, stdout=log_file, stderr=subprocess.STDOUT, cwd=root
        )
    server = Lab(f"http://127.0.0.1:{port}", token, root, state_file, log, process)
    try:
        deadline = time.monotonic() + 90
        with httpx.Client(trust_env=False, timeout=2) as http:
            while True:
                if process.poll() is not None:
                    pytest.fail(
                        f"jupyter lab exited with {process.returncode}:\n{server.log_tail()}"
                    )
                with contextlib.suppress(httpx.TransportError):
                    if http.get(f"{server.url}/api/status", headers=server.headers()).is_success:
                        break
                if time.monotonic() > deadline:
                    pytest.fail(f"jupyter lab did not answer in 90 s:\n{server.log_tail()}")
                time.sleep(0.2)
        yield server
    finally:
        _stop(server)


def _stop(server: Lab) -> None:
    """/api/shutdown first (it stops the kernels), then the process, then stray children."""
    import httpx

    process = server.process
    if process.poll() is None:
        with contextlib.suppress(httpx.HTTPError):
            httpx.post(
                f"{server.url}/api/shutdown", headers=server.headers(), trust_env=False, timeout=5
            )
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
    for pid, started in server.children:
        if _start_time(pid) == started:  # still the process we saw, not a reused pid
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


# ----------------------------------------------------------------- layout checks in the page

# Every layout problem of the visible panel, as readable lines (an empty list: none).
LAYOUT_PROBLEMS = """() => {
  const panel = document.querySelector('.cms-panel');
  const problems = [];
  const shown = e => e.getClientRects().length > 0 && getComputedStyle(e).visibility !== 'hidden';
  const text = e => (e.textContent || '').trim().replace(/\\s+/g, ' ').slice(0, 60);
  // labels and buttons show their whole text (no ellipsis, no clipping)
  for (const e of panel.querySelectorAll('.widget-label, button, .widget-html-content b')) {
    if (!shown(e) || !text(e)) continue;
    if (e.scrollWidth > e.clientWidth + 1) {
      problems.push(`truncated "${text(e)}": ${e.scrollWidth} > ${e.clientWidth} px`);
    }
  }
  // placeholders fit their field
  const ctx = document.createElement('canvas').getContext('2d');
  for (const input of panel.querySelectorAll('input[placeholder], textarea[placeholder]')) {
    if (!shown(input) || !input.placeholder || input.value) continue;
    const s = getComputedStyle(input);
    ctx.font = `${s.fontStyle} ${s.fontWeight} ${s.fontSize} ${s.fontFamily}`;
    const needs = ctx.measureText(input.placeholder).width;
    const room = input.clientWidth - parseFloat(s.paddingLeft) - parseFloat(s.paddingRight);
    if (needs > room + 1) {
      problems.push(`placeholder cut "${input.placeholder}": ${needs.toFixed(0)} > ${room} px`);
    }
  }
  // each toggle row (label, toggle, field) stays on one line
  for (const toggle of panel.querySelectorAll('.widget-toggle-buttons')) {
    if (!shown(toggle)) continue;
    const row = toggle.closest('.widget-hbox') || toggle;
    const parts = [...row.querySelectorAll('button, input, select, .widget-label')].filter(shown);
    const tops = parts.map(e => e.getBoundingClientRect().top);
    const bottoms = parts.map(e => e.getBoundingClientRect().bottom);
    if (Math.min(...bottoms) <= Math.max(...tops)) {
      problems.push(`toggle row wraps: "${text(row)}"`);
    }
    if (row.scrollWidth > row.clientWidth + 1) {
      problems.push(`toggle row overflows: "${text(row)}" ${row.scrollWidth} > ${row.clientWidth}`);
    }
  }
  // tables fit, or scroll inside their own box; the panel never scrolls sideways
  for (const box of panel.querySelectorAll('.cms-table')) {
    if (!shown(box)) continue;
    const table = box.querySelector('table');
    if (table && table.getBoundingClientRect().width > box.clientWidth + 1
        && getComputedStyle(box).overflowX !== 'auto') {
      problems.push(`table wider than its box without a scroll bar: ${text(box)}`);
    }
  }
  const output = panel.closest('.jp-OutputArea-output') || panel.parentElement;
  for (const e of [panel, output, ...panel.querySelectorAll('.widget-box, .widget-tab')]) {
    if (!shown(e)) continue;
    if (e.scrollWidth > e.clientWidth + 1) {
      problems.push(`wider than its box: ${e.className.split(' ').filter(c => c.startsWith('cms-') || c.startsWith('widget-') || c.startsWith('jp-')).join('.')} ${e.scrollWidth} > ${e.clientWidth}`);
    }
  }
  return problems;
}"""

# Colours of the toggles and buttons, for contrast and disabled checks.
STYLES = """() => {
  const rgb = c => (c.match(/[\\d.]+/g) || []).slice(0, 3).map(Number);
  const style = e => {
    const s = getComputedStyle(e);
    return {background: rgb(s.backgroundColor), color: rgb(s.color), opacity: Number(s.opacity),
            cursor: s.cursor, text: e.textContent.trim()};
  };
  const panel = document.querySelector('.cms-panel');
  const toggles = [...panel.querySelectorAll('.cms-content-mode button')];
  return {
    selected: toggles.filter(b => b.classList.contains('mod-active')).map(style),
    unselected: toggles.filter(b => !b.classList.contains('mod-active')).map(style),
    cancel: style(panel.querySelector('button.cms-cancel')),
    send: style(panel.querySelector('button.cms-send')),
    width: panel.getBoundingClientRect().width,
  };
}"""


def _luminance(rgb: list[float]) -> float:
    def channel(value: float) -> float:
        c = value / 255
        return c / 12.92 if c <= 0.03928 else float(((c + 0.055) / 1.055) ** 2.4)

    r, g, b = (channel(v) for v in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(one: list[float], other: list[float]) -> float:
    """WCAG 2 contrast ratio of two sRGB colours (1 to 21)."""
    high, low = sorted((_luminance(one), _luminance(other)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def _grey(rgb: list[float]) -> bool:
    return max(rgb) - min(rgb) <= 24


def _at_width(page: Any, width: int) -> None:
    """Resize the page and wait until JupyterLab has laid out the panel again."""
    page.set_viewport_size({"width": width, "height": 1900})
    page.wait_for_function("(w) => window.innerWidth === w", arg=width)
    # Lumino lays out on the next animation frames after the resize event.
    page.evaluate(
        "() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => r())))"
    )


def _check_layout(page: Any, width: int, measured: dict[str, Any]) -> None:
    _at_width(page, width)
    measured[f"problems_{width}"] = page.evaluate(LAYOUT_PROBLEMS)
    measured[f"styles_{width}"] = page.evaluate(STYLES)


def _shot(page: Any, name: str) -> Path:
    path = SHOTS / name
    path.parent.mkdir(parents=True, exist_ok=True)
    page.locator(".cms-panel").screenshot(path=str(path))
    return path


def _read_back(page: Any, measured: dict[str, Any]) -> None:
    """Open the Events tab, read the sample's week of incidents, check what shows."""
    from playwright.sync_api import expect

    page.locator(".cms-tabs > .lm-TabBar .lm-TabBar-tab").filter(
        has_text=re.compile("^Events$")
    ).click()
    expect(page.locator(".cms-read-source")).to_contain_text("the local emulator")
    for css, value in (
        ("cms-read-name", "incident"),
        ("cms-read-since", "2026-11-19"),  # the sample's times: 2026-11-20 to 11-25
        ("cms-read-until", "2026-11-26"),
    ):
        field = page.locator(f".{css} input")
        field.fill(value)
        field.press("Enter")  # continuous_update=False: synced on Enter
    page.locator("button.cms-read").click()
    status = page.locator(".cms-read-status")
    expect(status).to_contain_text(f"{ROWS:,} events from", timeout=60_000)
    expect(status).to_contain_text("the first 20 below")
    chart = page.locator(".cms-read-chart svg")
    expect(chart).to_be_visible()
    measured["events_bars"] = chart.locator("rect.bar").count()
    table = page.locator(".cms-read-table table")
    expect(table).to_be_visible()
    expect(table.locator("tbody tr")).to_have_count(20)
    expect(page.locator(".cms-read-table")).to_contain_text(f"first 20 of {ROWS:,} events")
    measured["problems_events"] = page.evaluate(LAYOUT_PROBLEMS)


# ----------------------------------------------------------------- the test


def test_send_from_the_panel_in_jupyterlab(chromium: Path, lab: Lab) -> None:
    import httpx
    from playwright.sync_api import expect, sync_playwright

    measured: dict[str, Any] = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(chromium), args=CHROMIUM_ARGS, headless=True
        )
        try:
            page = browser.new_page(viewport={"width": WIDE, "height": 1900})
            page.goto(f"{lab.url}/lab/tree/panel.ipynb?token={lab.token}")

            # The kernel-start race: the toolbar says idle before the kernel exists.
            # Wait for the status bar to name our kernel as idle.
            page.wait_for_function(
                """(name) => [...document.querySelectorAll('.jp-StatusBar-TextItem')]
                    .map(e => e.textContent.trim())
                    .some(t => !t.startsWith('No Kernel') && t.startsWith(name)
                               && t.endsWith('| Idle'))""",
                arg=KERNEL_DISPLAY,
                timeout=90_000,
            )
            lab.record_children()
            page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")

            send = page.locator("button.cms-send")
            cancel = page.locator("button.cms-cancel")
            retry = page.locator("button.cms-retry")
            expect(send).to_be_visible(timeout=90_000)
            summary = page.locator(".cms-summary")
            expect(summary).to_contain_text("dry run: 1,200/1,200 events would be sent")
            url = page.locator(".cms-url")
            credentials = page.locator(".cms-credentials")
            expect(url).to_contain_text("region cn-hangzhou")
            expect(credentials).to_contain_text("LTAI****ey01")  # from the environment
            expect(page.locator(".cms-counts")).to_contain_text("1,200 rows")

            # The magic's cells ran after the panel's: one send, one mistake (one line).
            cells = page.locator(".jp-CodeCell")
            magic, mistake = cells.nth(1), cells.nth(2)
            expect(magic.locator(".jp-OutputArea")).to_contain_text(
                f"{ROWS:,}/{ROWS:,} events accepted", timeout=60_000
            )
            expect(mistake.locator(".jp-OutputArea")).to_contain_text("UsageError", timeout=30_000)
            expect(mistake.locator(".jp-OutputArea")).to_contain_text("mesage")
            expect(mistake.locator(".jp-OutputArea")).not_to_contain_text("Traceback")
            magic.screenshot(path=str(SHOTS / "magic.png"))
            mistake.screenshot(path=str(SHOTS / "magic-error.png"))
            state = json.loads(lab.state_file.read_text())
            admin = {"x-emulator-admin-token": state["admin_token"]}
            httpx.post(
                f"{state['emulator']}/_emulator/reset", headers=admin, trust_env=False
            ).raise_for_status()

            status = page.locator(".cms-status")

            def tab(title: str) -> Any:
                """The panel's own tab called ``title`` (not the results' tabs)."""
                return page.locator(".cms-tabs > .lm-TabBar .lm-TabBar-tab").filter(
                    has_text=re.compile(f"^{title}$")
                )

            def faults(chosen: dict[str, Any]) -> None:
                """Set the emulator's faults (an empty dict clears them)."""
                httpx.post(
                    f"{state['emulator']}/_emulator/faults",
                    headers=admin,
                    json=chosen,
                    trust_env=False,
                ).raise_for_status()

            # The clean state: the local emulator chosen in the region dropdown.
            page.locator(".cms-region select").select_option(
                label="local emulator (127.0.0.1, demo key)"
            )
            expect(url).to_contain_text("the local emulator")
            expect(url).to_contain_text("nothing leaves this machine")
            expect(credentials).to_contain_text("LTAI****Demo")
            expect(send).to_be_enabled()

            send.click()
            expect(summary).to_contain_text(f"{ROWS:,}/{ROWS:,} events accepted", timeout=60_000)
            expect(page.locator(".cms-results")).to_contain_text(f"Events ({ROWS:,})")
            expect(page.locator(".cms-results")).to_contain_text("Failed rows (0)")
            expect(send).to_be_enabled()
            expect(cancel).to_be_disabled()

            # The emulator (in the kernel) holds every row.
            stored = httpx.get(
                f"{state['emulator']}/_emulator/events", headers=admin, trust_env=False
            ).json()
            assert len(stored) == ROWS
            assert {event["name"] for event in stored} == {"incident"}
            assert REFUSED in stored[0]["content"]
            assert any("推荐引擎" in event["content"] for event in stored)

            # The clean screenshots, and the layout at both widths.
            _check_layout(page, WIDE, measured)
            _shot(page, f"panel-{WIDE}.png")
            _shot(page, SCREENSHOT.name)
            _check_layout(page, NARROW, measured)
            _shot(page, f"panel-{NARROW}.png")

            # The Events tab reads back what the emulator holds: a chart and a table.
            _at_width(page, WIDE)
            _read_back(page, measured)
            _shot(page, "panel-events.png")
            tab("Send").click()
            expect(send).to_be_visible()
            _at_width(page, NARROW)

            # An error state: the emulator refuses the first row (its batch is a 400; the
            # client splits the batch and resends, so one row ends rejected).
            faults({"poison_marker": REFUSED})
            send.click()
            expect(summary).to_contain_text(f"1,199/{ROWS:,} events accepted", timeout=60_000)
            expect(summary).to_contain_text("1 rejected")
            expect(page.locator(".cms-results")).to_contain_text("Failed rows (1)")
            measured[f"problems_error_{NARROW}"] = page.evaluate(LAYOUT_PROBLEMS)
            # Whether a 400 is worth retrying is the panel's call; its longest label
            # ("Retry failed (1,200)") must fit the button, whatever the state.
            measured["retry_label"] = retry.evaluate(
                """b => { const t = [...b.childNodes].find(n => n.nodeType === 3);
                          const before = t.textContent; t.textContent = 'Retry failed (1,200)';
                          const fits = [b.scrollWidth, b.clientWidth];
                          t.textContent = before; return fits; }"""
            )
            _at_width(page, WIDE)
            _shot(page, "panel-error.png")
            faults({})

            # A refused send: the emulator under another name (localhost) is a custom URL,
            # so the environment's key goes with it; the emulator refuses it (403). The
            # outcome is next to Send: one line, details folded.
            custom = page.locator(".cms-custom-endpoint input")
            custom.fill(state["emulator"].replace("127.0.0.1", "localhost"))
            custom.press("Enter")  # continuous_update=False: synced on Enter
            expect(credentials).to_contain_text("LTAI****ey01")
            send.click()
            outcome = status.locator(".cms-outcome")
            expect(outcome).to_contain_text("stopped", timeout=60_000)
            expect(outcome).to_have_class(re.compile(r"\bcms-bad\b"))
            expect(status.locator("details.cms-details")).to_have_count(1)
            assert outcome.evaluate("e => e.getClientRects().length") == 1  # one line
            expect(page.locator(".cms-error")).to_be_hidden()  # not under Retry failed
            _shot(page, "panel-refused.png")

            # 'local' in any case is the emulator, typed as the custom URL too
            custom.fill("LOCAL")
            custom.press("Enter")
            expect(url).to_contain_text("the local emulator")
            expect(credentials).to_contain_text("LTAI****Demo")
            expect(send).to_be_enabled()

            # Cancel shows as cancelled (asked for: not a failure); answers held back
            # 1.5 s each keep the send running until the click.
            faults({"delay": 1.0, "delay_seconds": 1.5})
            send.click()
            expect(cancel).to_be_enabled(timeout=30_000)
            cancel.click()
            expect(outcome).to_contain_text("cancelled", timeout=60_000)
            expect(outcome).not_to_have_class(re.compile(r"\bcms-bad\b"))
            expect(summary.locator(".cms-bad")).to_have_count(0)
            expect(page.locator(".cms-progress .progress-bar-danger")).to_have_count(0)
            faults({})
            expect(send).to_be_enabled(timeout=30_000)

            # a malformed URL is answered with the URL rule, never the list of regions
            custom.fill("ftp://127.0.0.1/x")
            custom.press("Enter")
            expect(url).to_contain_text(
                "Custom URL 'ftp://127.0.0.1/x': endpoint URL must start with http:// or https://"
            )
            expect(url).not_to_contain_text("valid region ids")

            page.evaluate("() => window.jupyterapp.commands.execute('docmanager:save')")
            assert SECRET not in page.content()
        finally:
            browser.close()
            LAYOUT.parent.mkdir(parents=True, exist_ok=True)
            LAYOUT.write_text(json.dumps(measured, indent=1))

    saved = (lab.root / "panel.ipynb").read_text()
    assert SECRET not in saved
    notebook = json.loads(saved)
    widget_state = json.dumps(notebook["metadata"]["widgets"])
    assert "cancelled" in widget_state  # the latest send's outcome is saved with the notebook
    assert "LTAI****Demo" in widget_state
    assert SCREENSHOT.stat().st_size > 10_000

    # What shows, measured at both widths (problems listed in .artifacts/layout.json).
    for width in (WIDE, NARROW):
        assert measured[f"problems_{width}"] == [], width
        styles = measured[f"styles_{width}"]
        (selected,) = styles["selected"]
        for other in styles["unselected"]:
            # the selected toggle stands out (WCAG non-text contrast: 3)
            assert contrast(selected["background"], other["background"]) >= 3, styles
        assert contrast(selected["background"], selected["color"]) >= 4.5, styles
        # a disabled button looks disabled: grey, faded, not clickable-looking
        disabled = styles["cancel"]
        assert _grey(disabled["background"]), disabled
        assert disabled["cursor"] == "not-allowed", disabled
        assert not _grey(styles["send"]["background"]), styles["send"]
    assert measured[f"problems_error_{NARROW}"] == []
    assert measured["problems_events"] == []
    assert measured["events_bars"] > 1
    needs, has = measured["retry_label"]
    assert needs <= has, measured["retry_label"]
