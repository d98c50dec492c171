"""The notebooks of ``notebooks/`` and the quick start runner (``make demo``).

Every notebook runs headless, top to bottom, with nbclient in a ``python3`` kernel
that is this interpreter, against the local emulator; a cell error fails the
test, and the cells that matter are checked for what they show. The kernel's
environment holds a distinctive canary AccessKey pair, and the executed notebook
(outputs and saved widget state) must not contain it anywhere.

The committed notebooks are checked as files: no outputs, the ``python3``
kernelspec, no credential, and exactly what ``notebooks/_build.py`` generates.

Jupyter and IPython read only throw-away directories here (``JUPYTER_PATH``,
``JUPYTER_DATA_DIR``, ``JUPYTER_CONFIG_DIR``, ``JUPYTER_RUNTIME_DIR``,
``IPYTHONDIR``), so the machine's own configuration and kernels play no part.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from cms_magic import quickstart

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
NAMES = [
    "01-quickstart.ipynb",
    "02-bulk-report.ipynb",
    "03-explore-regions.ipynb",
    "04-cell-output-events.ipynb",
    "05-roles-and-read-back.ipynb",
]

# A canary pair, shaped like real credentials, in the kernel's environment.
CANARY_ID = "LTAI5tCanaryQ7wXk2Pz9Nb3"
CANARY_SECRET = "CanarySecret4f8B2d6H1j9K3m5N7p"

ENV_CLEARED = (
    "CMS_MAGIC_ENDPOINT",
    "ALIBABA_CLOUD_REGION_ID",
    "ALIBABA_CLOUD_PROFILE",
    "ALIBABA_CLOUD_SECURITY_TOKEN",
    "ALIBABA_CLOUD_CREDENTIALS_FILE",
)


def isolated_environment(base: Path) -> dict[str, str]:
    """Jupyter and IPython directories under ``base``, and the canary credentials."""
    env = {
        "JUPYTER_PATH": str(base / "jupyter-path"),
        "JUPYTER_DATA_DIR": str(base / "jupyter-data"),
        "JUPYTER_CONFIG_DIR": str(base / "jupyter-config"),
        "JUPYTER_RUNTIME_DIR": str(base / "jupyter-runtime"),
        "JUPYTER_PLATFORM_DIRS": "1",
        "IPYTHONDIR": str(base / "ipython"),
        "ALIBABA_CLOUD_ACCESS_KEY_ID": CANARY_ID,
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET": CANARY_SECRET,
    }
    # A ``python3`` kernelspec that runs this interpreter, first on JUPYTER_PATH.
    spec = base / "jupyter-path" / "kernels" / "python3"
    spec.mkdir(parents=True, exist_ok=True)
    kernel = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
    }
    (spec / "kernel.json").write_text(json.dumps(kernel), encoding="utf-8")
    return env


@pytest.fixture(scope="module")
def jupyter_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """This process's environment, isolated as the module doc says; the directory used."""
    base = tmp_path_factory.mktemp("jupyter")
    with pytest.MonkeyPatch.context() as patch:
        for name, value in isolated_environment(base).items():
            patch.setenv(name, value)
        for name in ENV_CLEARED:
            patch.delenv(name, raising=False)
        yield base


def read(name: str) -> Any:
    return nbformat.read(str(NOTEBOOKS / name), as_version=4)


def cell(nb: Any, cell_id: str) -> Any:
    found = [c for c in nb.cells if c.get("id") == cell_id]
    assert len(found) == 1, f"no single cell with id {cell_id!r}"
    return found[0]


def printed(nb: Any, cell_id: str) -> str:
    """What a cell printed (stdout and stderr), in order."""
    return "".join(o["text"] for o in cell(nb, cell_id).outputs if o["output_type"] == "stream")


def shown(nb: Any, cell_id: str, mime: str = "text/plain") -> list[str]:
    """A cell's displayed values (execute_result and display_data) in one MIME type."""
    return [
        str(o["data"][mime])
        for o in cell(nb, cell_id).outputs
        if o["output_type"] in ("execute_result", "display_data") and mime in o["data"]
    ]


def said(nb: Any, cell_id: str) -> str:
    """What a cell printed and the plain text of what it displayed (a finished progress bar's
    plain-text form is the send's summary line)."""
    return printed(nb, cell_id) + "".join(shown(nb, cell_id))


def widget_states(nb: Any) -> list[dict[str, Any]]:
    """The saved state of every widget model (``store_widget_state=True``)."""
    saved = nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    return [model["state"] for model in saved.values()]


# ----------------------------------------------------------------- what each notebook shows


def check_quickstart(nb: Any) -> None:
    assert "3/3 events accepted" in said(nb, "send")
    assert "credentials: LTAI****Demo from cms_magic emulator demo credentials" in printed(
        nb, "real-cloud"
    )
    assert printed(nb, "summary").startswith("3/3 events accepted in ")
    (frame,) = shown(nb, "summary")
    assert frame.count("accepted") == 3
    (received,) = shown(nb, "received")
    assert "缓存命中率下降到 71%" in received
    assert shown(nb, "panel", "application/vnd.jupyter.widget-view+json")
    assert printed(nb, "panel-dry-run").strip() == "dry run: 5/5 events would be sent"
    summaries = [
        s["value"] for s in widget_states(nb) if "cms-summary" in s.get("_dom_classes", ())
    ]
    assert len(summaries) == 1
    assert "dry run: 5/5 events would be sent" in summaries[0]


def check_bulk(nb: Any) -> None:
    assert "100,000 alerts" in printed(nb, "data")
    assert "99,988 events; 12 rows cannot be sent as they are" in printed(nb, "mapping")
    quota = printed(nb, "quota")
    assert "99,988 events in 1,000 requests" in quota
    assert "at 20 requests per second: 50 s at least" in quota
    assert "sending 100,000 events in the background -> job" in printed(nb, "send")
    outcomes = printed(nb, "outcomes")
    found = re.search(r"(\d+) rejected, [\d,]+ not sent, [\d,]+ unknown ->", outcomes)
    assert found, outcomes
    # the 12 empty messages, and the <script> rows whose (bisected) request was not a 503
    assert 12 <= int(found.group(1)) <= 17, outcomes
    assert re.search(r"accepted in [\d.]+ s; 17 rejected, [\d,]+ unknown ->", printed(nb, "retry"))
    twice = r"after retry\(include_unknown=True\): [1-9][\d,]* events are stored twice"
    assert re.search(twice, printed(nb, "unknown"))
    assert "100,000 of 100,000 alerts are in CloudMonitor" in printed(nb, "fix-send")
    # the background send showed a progress bar (nbclient saves a widget's state as of
    # the end of its cell: later updates, from the send's thread, reach a live frontend)
    assert shown(nb, "send", "application/vnd.jupyter.widget-view+json")
    assert "<SendResult " in shown(nb, "wait")[0]


def check_regions(nb: Any) -> None:
    assert "17 regions: cn-hangzhou, " in printed(nb, "catalog-api")
    assert "http://metrichub-eu-central-1.aliyun.com" in printed(nb, "endpoints")
    assert "unknown region 'cn-hanzhou'; valid region ids: cn-hangzhou" in printed(nb, "typo")
    lines = printed(nb, "click").splitlines()
    assert lines[0].startswith("local emulator: reachable in ")
    assert lines[1].startswith("closed port: unreachable, TCP: connection refused")
    assert all("DNS: not looked up (USE_REAL_CLOUD = False)" in line for line in lines[2:])
    assert len(lines) == 6
    probe_tables = [
        s["value"] for s in widget_states(nb) if "cms-probe-results" in s.get("_dom_classes", ())
    ]
    assert len(probe_tables) == 1
    assert "connection refused" in probe_tables[0]
    assert printed(nb, "choose").strip() == "http://metrichub-eu-central-1.aliyun.com"


def check_cell_output(nb: Any) -> None:
    health = said(nb, "health")
    assert "event gateway (the local emulator): HTTP 200" in health
    assert "1/1 event accepted" in health
    assert printed(nb, "tests-check").rstrip().endswith("PASSED (2 tests)")
    assert "1/1 event accepted" in said(nb, "raw")
    assert "3/3 events accepted" in said(nb, "json")
    dry_run = said(nb, "dry-run")
    assert "dry run: 1/1 event would be sent" in dry_run
    assert "authorization: LTAI****Demo:<signature>" in dry_run
    assert "release checkout 2.15.1: configuration change only" in dry_run
    (received,) = shown(nb, "received")
    assert "backup_failed" in received


def check_roles(nb: Any) -> None:
    whoami = printed(nb, "role")
    assert "credentials: STS.****" in whoami or "credentials: AccessKey STS.****" in whoami
    assert "ram_role_arn" in whoami
    assert "acs:ram::1234567890123456:role/cms-writer" in whoami
    assert "with an STS token, expires " in whoami
    assert "(in 15 min)" in whoami
    assert "3/3 events accepted" in said(nb, "send-cell")
    assert "3 deploy events in the last hour" in printed(nb, "read")
    (frame,) = shown(nb, "read")
    assert "payments: rolled back to v1.9.9" in frame
    assert shown(nb, "count") == ["3"]


CHECKS: dict[str, Callable[[Any], None]] = {
    "01-quickstart.ipynb": check_quickstart,
    "02-bulk-report.ipynb": check_bulk,
    "03-explore-regions.ipynb": check_regions,
    "04-cell-output-events.ipynb": check_cell_output,
    "05-roles-and-read-back.ipynb": check_roles,
}


@pytest.mark.timeout(180)
@pytest.mark.parametrize("name", NAMES)
def test_notebook_runs_headless_shows_what_it_says_and_leaks_no_secret(
    name: str, jupyter_env: Path, tmp_path: Path
) -> None:
    nb = read(name)
    client = nbclient.NotebookClient(
        nb,
        kernel_name="python3",
        timeout=150,
        store_widget_state=True,
        resources={"metadata": {"path": str(NOTEBOOKS)}},
    )
    client.execute()  # a cell error raises CellExecutionError, with the cell and traceback

    for code in (c for c in nb.cells if c.cell_type == "code"):
        for output in code.outputs:
            assert output["output_type"] != "error", (code.id, output)
            # no warning, traceback or UsageError went to stderr
            assert output.get("name") != "stderr", (code.id, output["text"])
    CHECKS[name](nb)

    executed = tmp_path / name
    nbformat.write(nb, str(executed))
    saved = executed.read_text(encoding="utf-8")
    assert "application/vnd.jupyter.widget-state+json" in saved
    assert CANARY_SECRET not in saved
    assert CANARY_ID not in saved
    assert CANARY_SECRET.lower() not in saved.lower()


def test_checks_cover_every_notebook() -> None:
    assert sorted(CHECKS) == NAMES
    assert sorted(p.name for p in NOTEBOOKS.glob("*.ipynb")) == NAMES


# ----------------------------------------------------------------- the committed files


@pytest.mark.parametrize("name", NAMES)
def test_committed_notebook_has_no_outputs_and_the_python3_kernel(name: str) -> None:
    nb = read(name)
    nbformat.validate(nb)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    assert nb.metadata["kernelspec"]["language"] == "python"
    assert "widgets" not in nb.metadata
    for code in (c for c in nb.cells if c.cell_type == "code"):
        assert code.outputs == [], code.id
        assert code.execution_count is None, code.id
    assert all("attachments" not in c for c in nb.cells)


_KEY_ID = re.compile(r"(?<![A-Za-z0-9])(?:LTAI[A-Za-z0-9]{8,}|STS\.[A-Za-z0-9]{10,})")
_SECRET_LIKE = re.compile(r"(?<![A-Za-z0-9])[A-Za-z0-9]{30}(?![A-Za-z0-9])")
_ASSIGNED = re.compile(r"(?i)(access_?key_?(id|secret)|security_?token)\s*=\s*['\"]")


@pytest.mark.parametrize("name", NAMES)
def test_committed_notebook_holds_no_credential(name: str) -> None:
    text = (NOTEBOOKS / name).read_text(encoding="utf-8")
    assert not _KEY_ID.findall(text)
    secret_like = [
        token
        for token in _SECRET_LIKE.findall(text)
        if any(c.isupper() for c in token)
        and any(c.islower() for c in token)
        and any(c.isdigit() for c in token)
    ]
    assert not secret_like
    assert not _ASSIGNED.search(text)


@pytest.mark.parametrize("name", NAMES)
def test_one_marked_switch_cell_inert_by_default(name: str) -> None:
    nb = read(name)
    switch = cell(nb, "real-cloud")
    assert switch.source.startswith("# >>> SWITCH TO THE REAL CLOUD")
    assert re.search(r"^USE_REAL_CLOUD = False$", switch.source, re.MULTILINE)
    sources = [c.source for c in nb.cells if c.cell_type == "code"]
    assert sum(len(re.findall(r"^\s*USE_REAL_CLOUD\s*=", s, re.MULTILINE)) for s in sources) == 1
    # the markdown right before it says what it does
    index = nb.cells.index(switch)
    assert nb.cells[index - 1].cell_type == "markdown"
    assert "only cell to change" in nb.cells[index - 1].source
    # no magic line picks a target of its own: the switch cell decides
    magic_lines = [
        line
        for s in sources
        for line in s.splitlines()
        if line.startswith(("%cms_event", "%%cms_event"))
    ]
    assert not [line for line in magic_lines if re.search(r"--(endpoint|region)\b", line)]


def test_every_code_cell_follows_an_explanation() -> None:
    for name in NAMES:
        nb = read(name)
        assert nb.cells[0].cell_type == "markdown"
        assert nb.cells[0].source.startswith("# ")
        assert sum(c.cell_type == "markdown" for c in nb.cells) >= len(nb.cells) // 3, name


def test_notebooks_are_what_the_generator_makes() -> None:
    done = subprocess.run(
        [sys.executable, str(NOTEBOOKS / "_build.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr


# ----------------------------------------------------------------- python -m cms_magic.quickstart


def test_quickstart_runner_prints_the_summary_and_the_first_rows(tmp_path: Path) -> None:
    env = {**os.environ, **isolated_environment(tmp_path)}
    for name in ENV_CLEARED:
        env.pop(name, None)
    # a python3 kernelspec of another, broken Python: the runner must not pick it
    (tmp_path / "jupyter-path" / "kernels" / "python3" / "kernel.json").write_text(
        json.dumps({"argv": ["/nonexistent/python", "-f", "{connection_file}"], "language": "py"}),
        encoding="utf-8",
    )
    done = subprocess.run(
        [sys.executable, "-m", "cms_magic.quickstart"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert f"kernel: {sys.executable}; target: the local emulator on 127.0.0.1" in out
    assert "\nresults summary: 3/3 events accepted in " in out
    rows = out.split("first rows of the result frame (result.events):\n", 1)[1].splitlines()
    # The frame is wider than the kernel's 80 columns: its first block ends with "\\".
    assert rows[0].split()[:5] == ["status", "reason", "batch", "attempts", "request_id"]
    first = [row.split()[:2] for row in rows[1:4]]
    assert first == [["0", "accepted"], ["1", "accepted"], ["4", "accepted"]]
    assert CANARY_SECRET not in out + done.stderr
    assert "Traceback" not in done.stderr


def test_quickstart_runner_refuses_a_notebook_switched_to_the_real_cloud(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    nb = read("01-quickstart.ipynb")
    switch = cell(nb, "real-cloud")
    switch.source = switch.source.replace("USE_REAL_CLOUD = False", "USE_REAL_CLOUD = True")
    path = tmp_path / "switched.ipynb"
    nbformat.write(nb, str(path))
    assert quickstart.main(["--notebook", str(path)]) == 2
    err = capsys.readouterr().err
    assert "sets USE_REAL_CLOUD = True" in err
    assert "reports to the local emulator only" in err


def test_quickstart_runner_names_the_failing_cell(
    jupyter_env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("x = 1"),
        nbformat.v4.new_code_cell("assert x == 2, 'x is 1'"),
    ]
    nb.cells[1].id = "check-x"
    path = tmp_path / "failing.ipynb"
    nbformat.write(nb, str(path))
    output = tmp_path / "out" / "executed.ipynb"
    assert quickstart.main(["--notebook", str(path), "--output", str(output)]) == 1
    err = capsys.readouterr().err
    assert "the quick start FAILED in cell 2 (id 'check-x'):" in err
    assert "    assert x == 2, 'x is 1'" in err
    assert "AssertionError: x is 1" in err
    assert output.is_file()  # the executed notebook, with the error, to look at


def test_quickstart_runner_needs_a_summary_cell(
    jupyter_env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("print('hello')")]
    path = tmp_path / "other.ipynb"
    nbformat.write(nb, str(path))
    assert quickstart.main(["--notebook", str(path)]) == 1
    assert "no cell with id 'summary'" in capsys.readouterr().err


def test_quickstart_runner_says_when_the_notebook_is_missing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert quickstart.main(["--notebook", str(tmp_path / "nope.ipynb")]) == 2
    assert "nope.ipynb: no such file" in capsys.readouterr().err

    package = tmp_path / "site-packages" / "cms_magic"
    package.mkdir(parents=True)
    with pytest.raises(quickstart.QuickstartError) as caught:
        quickstart.find_notebook(cwd=tmp_path, package_dir=package)
    message = str(caught.value)
    assert "the quick start notebook (01-quickstart.ipynb) is not here" in message
    assert str(tmp_path / "notebooks" / "01-quickstart.ipynb") in message
    assert "run this from a clone (`make demo`), or give its path with --notebook PATH" in message


def test_quickstart_runner_finds_the_notebook(tmp_path: Path) -> None:
    # from this checkout
    assert quickstart.find_notebook() == NOTEBOOKS / "01-quickstart.ipynb"
    # an installed package: the current directory's notebooks/ first, then a shipped copy
    package = tmp_path / "site-packages" / "cms_magic"
    (package / "notebooks").mkdir(parents=True)
    shipped = package / "notebooks" / "01-quickstart.ipynb"
    shipped.write_text("{}", encoding="utf-8")
    elsewhere = tmp_path / "work"
    elsewhere.mkdir()
    assert quickstart.find_notebook(cwd=elsewhere, package_dir=package) == shipped
    (elsewhere / "notebooks").mkdir()
    here = elsewhere / "notebooks" / "01-quickstart.ipynb"
    here.write_text("{}", encoding="utf-8")
    assert quickstart.find_notebook(cwd=elsewhere, package_dir=package) == here
