"""The Binder environment (``binder/``): what mybinder.org builds and opens.

repo2docker installs ``binder/requirements.txt`` into its base environment
(which brings Jupyter: JupyterLab, ipykernel, nbclient), runs ``binder/postBuild``
from the repository root, and starts Jupyter through ``binder/start``. The slow
test does the same in a fresh virtual environment, from the ``binder/`` files
alone, then runs the quick start notebook in it with that environment's kernel.
The other tests check the files themselves.
"""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BINDER = ROOT / "binder"

# What repo2docker's base environment provides and this test must stand in for:
# a Jupyter kernel and a notebook runner (Binder's JupyterLab is not needed headless).
BASE_ENVIRONMENT = ["ipykernel", "nbclient"]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*")


def requirement_lines() -> list[str]:
    lines = (BINDER / "requirements.txt").read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def normalised(requirement: str) -> str:
    """``Name>=1.0`` -> ``name>=1.0`` (PEP 503 name, no spaces)."""
    name = _NAME.match(requirement)
    assert name, requirement
    canonical = re.sub(r"[-_.]+", "-", name.group(0)).lower()
    return canonical + requirement[name.end() :].replace(" ", "")


def test_requirements_are_the_package_dependencies() -> None:
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert sorted(map(normalised, requirement_lines())) == sorted(
        map(normalised, project["dependencies"])
    )


def test_requirements_hold_no_local_reference() -> None:
    # repo2docker installs a requirements file without local paths before it copies
    # the repository, in a layer it reuses while the file does not change; the
    # package itself is installed by postBuild
    for line in requirement_lines():
        assert not line.startswith(("-", ".", "/", "file:")), line
        assert "@" not in line, line


def test_runtime_is_a_python_the_package_supports() -> None:
    runtime = (BINDER / "runtime.txt").read_text(encoding="utf-8").strip()
    found = re.fullmatch(r"python-3\.(\d+)", runtime)
    assert found, runtime
    assert int(found.group(1)) >= 10  # requires-python >= 3.10


@pytest.mark.parametrize("name", ["postBuild", "start"])
def test_scripts_are_executable_bash(name: str) -> None:
    script = BINDER / name
    assert script.stat().st_mode & stat.S_IXUSR
    text = script.read_text(encoding="utf-8")
    assert text.startswith("#!/bin/bash\n")
    subprocess.run(["bash", "-n", str(script)], check=True)


def test_start_makes_the_emulator_the_default_target() -> None:
    env = {k: v for k, v in os.environ.items() if k != "CMS_MAGIC_ENDPOINT"}
    shown = subprocess.run(
        [str(BINDER / "start"), "sh", "-c", 'printf %s "$CMS_MAGIC_ENDPOINT"'],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert shown == "local"
    env["CMS_MAGIC_ENDPOINT"] = "https://gateway.example:8443"
    kept = subprocess.run(
        [str(BINDER / "start"), "sh", "-c", 'printf %s "$CMS_MAGIC_ENDPOINT"'],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert kept == "https://gateway.example:8443"


def run(command: list[str], *, cwd: Path, env: dict[str, str], timeout: float = 600) -> str:
    """Run a build step; its output, or a failure that shows the end of it."""
    done = subprocess.run(
        command,
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        tail = (done.stdout + done.stderr)[-4000:]
        pytest.fail(f"{' '.join(command)} exited {done.returncode}:\n{tail}")
    return done.stdout


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_binder_environment_builds_and_runs_the_quick_start(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    bin_dir = venv / "bin"
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "CMS_MAGIC_ENDPOINT")
        and not k.startswith(("ALIBABA_CLOUD_", "JUPYTER", "IPYTHON"))
    }
    env["PATH"] = os.pathsep.join([str(bin_dir), env.get("PATH", "")])
    for name, sub in {
        "JUPYTER_PATH": "jupyter-path",
        "JUPYTER_DATA_DIR": "jupyter-data",
        "JUPYTER_CONFIG_DIR": "jupyter-config",
        "JUPYTER_RUNTIME_DIR": "jupyter-runtime",
        "IPYTHONDIR": "ipython",
    }.items():
        env[name] = str(tmp_path / sub)
    env["JUPYTER_PLATFORM_DIRS"] = "1"
    python = str(bin_dir / "python")
    pip = [python, "-m", "pip", "install", "--disable-pip-version-check", "--quiet"]

    # what repo2docker does, in order
    run([sys.executable, "-m", "venv", str(venv)], cwd=tmp_path, env=env)
    run([*pip, *BASE_ENVIRONMENT], cwd=tmp_path, env=env)
    run([*pip, "-r", "binder/requirements.txt"], cwd=ROOT, env=env)
    built = run([str(BINDER / "postBuild")], cwd=ROOT, env=env)
    assert "cms_magic " in built
    assert "installed; open notebooks/01-quickstart.ipynb" in built

    # the package is installed in the new environment (not read from this checkout)
    where = run(
        [python, "-c", "import cms_magic; print(cms_magic.__file__)"], cwd=tmp_path, env=env
    )
    assert Path(where.strip()).is_relative_to(venv)

    # the session starts through binder/start, and opens the quick start
    notebook = ROOT / "notebooks" / "01-quickstart.ipynb"
    out = run(
        [str(BINDER / "start"), python, "-m", "cms_magic.quickstart", "--notebook", str(notebook)],
        cwd=tmp_path,
        env=env,
        timeout=300,
    )
    assert f"kernel: {python}; target: the local emulator on 127.0.0.1" in out
    assert "\nresults summary: 3/3 events accepted in " in out
    assert "first rows of the result frame (result.events):" in out
