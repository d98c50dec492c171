"""``make demo``: run the quick start notebook headless, against the local emulator.

``python -m cms_magic.quickstart [--notebook PATH]`` executes
``notebooks/01-quickstart.ipynb`` with nbclient, in a kernel that runs this very
interpreter (whatever kernels the machine's Jupyter knows), then prints the
results summary and the first rows of the result frame. It exits 0 when every
cell ran (the notebook's own asserts included), 1 when a cell failed, and 2 when
it could not start (no notebook, nbclient or ipykernel missing, or the notebook
switched to the real cloud).

Where the notebook is found, first match wins: ``--notebook PATH``; the
``notebooks/`` folder of the checkout this package runs from (a clone, or an
editable install); ``notebooks/`` under the current directory; a copy shipped
inside the package (``cms_magic/notebooks/``), when the wheel carries one.

The notebook's ``real-cloud`` cell must keep ``USE_REAL_CLOUD = False``: this
runner reports to the emulator on 127.0.0.1 only, and contacts nothing else.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any, TextIO

from cms_magic.errors import QuickstartError

__all__ = ["QUICKSTART", "QuickstartError", "execute_notebook", "find_notebook", "main"]

#: The quick start notebook's file name.
QUICKSTART = "01-quickstart.ipynb"

#: Id of the cell whose outputs are the summary line and the result frame.
SUMMARY_CELL = "summary"
#: Id of the cell that chooses between the emulator and the real cloud.
SWITCH_CELL = "real-cloud"

_SWITCHED_ON = re.compile(r"^\s*USE_REAL_CLOUD\s*=\s*True\b", re.MULTILINE)
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_FIRST_ROWS = 5


def find_notebook(
    given: str | Path | None = None,
    *,
    cwd: Path | None = None,
    package_dir: Path | None = None,
) -> Path:
    """The notebook to run: ``given``, else the first quick start found (see the module doc).

    Raises :class:`QuickstartError` with the places looked at when there is none.
    """
    if given is not None:
        path = Path(given).expanduser()
        if not path.is_file():
            raise QuickstartError(f"--notebook {given}: no such file")
        return path
    package = package_dir if package_dir is not None else Path(__file__).resolve().parent
    here = cwd if cwd is not None else Path.cwd()
    candidates = [
        package.parent / "notebooks" / QUICKSTART,  # a checkout
        here / "notebooks" / QUICKSTART,
    ]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    shipped = _shipped_copy() if package_dir is None else package / "notebooks" / QUICKSTART
    if shipped is not None and shipped.is_file():
        return shipped
    looked = "\n".join(f"  - {c}" for c in [*candidates, package / "notebooks" / QUICKSTART])
    raise QuickstartError(
        f"the quick start notebook ({QUICKSTART}) is not here. Looked in:\n{looked}\n"
        "It is in the notebooks/ folder of the cms_magic repository: run this from a clone "
        "(`make demo`), or give its path with --notebook PATH."
    )


def _shipped_copy() -> Path | None:
    """The copy inside the installed package, if the wheel carries one."""
    try:
        entry = resources.files("cms_magic").joinpath(f"notebooks/{QUICKSTART}")
    except (ModuleNotFoundError, OSError):  # pragma: no cover - the package is importable
        return None
    return Path(str(entry)) if entry.is_file() else None


def _kernel_manager() -> Any:
    """A kernel manager for ``python3`` that runs this interpreter (``sys.executable``).

    No kernelspec is looked up (``kernel_dirs=[]``): the native kernel of this
    environment is used, so a ``python3`` kernelspec elsewhere on the machine, for
    another Python without cms_magic, cannot be picked by mistake.
    """
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import AsyncKernelManager

    manager = AsyncKernelManager(
        kernel_name="python3",
        kernel_spec_manager=KernelSpecManager(kernel_dirs=[], ensure_native_kernel=True),
    )
    if manager.has_trait("transport_encryption"):  # newer jupyter_client: CurveZMQ if it can
        manager.transport_encryption = "auto"
    return manager


def execute_notebook(
    nb: Any,
    *,
    cwd: str | Path,
    timeout: float = 300,
    store_widget_state: bool = False,
) -> Any:
    """Run every cell of ``nb`` (an nbformat notebook, changed in place) and return it.

    The kernel runs this interpreter, in ``cwd``, with this process's environment.
    A failing cell raises nbclient's ``CellExecutionError`` after its error output
    was recorded in ``nb``.
    """
    from nbclient import NotebookClient

    client = NotebookClient(
        nb,
        km=_kernel_manager(),
        timeout=int(timeout),
        store_widget_state=store_widget_state,
        resources={"metadata": {"path": str(cwd)}},
    )
    # the kernel manager is ours, so nbclient would leave the kernel running: cleanup_kc
    client.execute(cwd=str(cwd), cleanup_kc=True)
    return nb


def _cell(nb: Any, cell_id: str) -> Any | None:
    for cell in nb.cells:
        if cell.get("id") == cell_id:
            return cell
    return None


def _text_outputs(cell: Any) -> tuple[str, str]:
    """A code cell's printed text and the text/plain of its value."""
    printed: list[str] = []
    value = ""
    for output in cell.get("outputs", []):
        if output.get("output_type") == "stream":
            printed.append(str(output.get("text", "")))
        elif output.get("output_type") == "execute_result":
            value = str(output.get("data", {}).get("text/plain", ""))
    return "".join(printed), value


def _first_error(nb: Any) -> tuple[int, Any, Any] | None:
    """(index, cell, error output) of the first cell that failed."""
    for index, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                return index, cell, output
    return None


def _first_rows(text: str, rows: int) -> str:
    """The header and the first ``rows`` rows of a DataFrame's text form."""
    lines = text.rstrip("\n").splitlines()
    shown = lines[: rows + 1]
    if len(lines) > len(shown) and not lines[-1].startswith("["):
        shown.append("...")
    return "\n".join(shown)


def _source_head(cell: Any, lines: int = 3) -> str:
    source = str(cell.get("source", "")).splitlines()
    head = "\n".join(f"    {line}" for line in source[:lines])
    return head + ("\n    ..." if len(source) > lines else "")


def run(
    notebook: Path,
    *,
    timeout: float,
    output: Path | None,
    out: TextIO,
    err: TextIO,
) -> int:
    """Run the quick start notebook and report; the exit status."""
    try:
        import nbformat as _nbformat
        from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError
    except ModuleNotFoundError as exc:
        print(
            f"the quick start runner needs nbclient, nbformat and ipykernel ({exc.name} is "
            "missing): pip install nbclient nbformat ipykernel",
            file=err,
        )
        return 2
    try:
        import ipykernel  # noqa: F401 - the kernel this runner starts
    except ModuleNotFoundError:
        print("the quick start runner needs ipykernel: pip install ipykernel", file=err)
        return 2

    nbformat: Any = _nbformat  # partly annotated: used through Any
    nb = nbformat.read(str(notebook), as_version=4)
    switch = _cell(nb, SWITCH_CELL)
    if switch is not None and _SWITCHED_ON.search(str(switch.get("source", ""))):
        print(
            f"{notebook}: its {SWITCH_CELL!r} cell sets USE_REAL_CLOUD = True; the quick start "
            "runner reports to the local emulator only. Set it back to False, or run the "
            "notebook in Jupyter to send to the real cloud.",
            file=err,
        )
        return 2

    print(f"cms_magic quick start: running {notebook} headless", file=out)
    print(f"  kernel: {sys.executable}; target: the local emulator on 127.0.0.1", file=out)
    out.flush()
    began = time.perf_counter()
    try:
        execute_notebook(nb, cwd=notebook.resolve().parent, timeout=timeout)
    except (CellExecutionError, CellTimeoutError, DeadKernelError) as exc:
        _save(nb, output, nbformat)
        failed = _first_error(nb)
        if failed is None:
            message = _ANSI.sub("", str(exc)).strip().splitlines()
            print(
                f"the quick start FAILED: {message[-1] if message else type(exc).__name__}",
                file=err,
            )
            return 1
        index, cell, error = failed
        print(
            f"the quick start FAILED in cell {index + 1} (id {cell.get('id')!r}):\n"
            f"{_source_head(cell)}\n{error.get('ename')}: {error.get('evalue')}",
            file=err,
        )
        return 1
    elapsed = time.perf_counter() - began
    _save(nb, output, nbformat)

    code_cells = sum(cell.get("cell_type") == "code" for cell in nb.cells)
    print(f"  {code_cells} code cells ran in {elapsed:.1f} s", file=out)
    summary = _cell(nb, SUMMARY_CELL)
    if summary is None:
        print(f"{notebook}: no cell with id {SUMMARY_CELL!r} to report from", file=err)
        return 1
    printed, frame = _text_outputs(summary)
    if not printed.strip() or not frame.strip():
        print(f"{notebook}: the {SUMMARY_CELL!r} cell printed no summary or no frame", file=err)
        return 1
    print(f"\nresults summary: {printed.strip()}", file=out)
    print(
        f"\nfirst rows of the result frame (result.events):\n{_first_rows(frame, _FIRST_ROWS)}",
        file=out,
    )
    if output is not None:
        print(f"\nthe executed notebook: {output}", file=out)
    return 0


def _save(nb: Any, output: Path | None, nbformat: Any) -> None:
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, str(output))


def main(
    argv: Sequence[str] | None = None, *, out: TextIO | None = None, err: TextIO | None = None
) -> int:
    """``python -m cms_magic.quickstart``: the exit status. Output goes to ``out`` and
    ``err`` (default: standard output and standard error)."""
    out = out if out is not None else sys.stdout
    err = err if err is not None else sys.stderr
    parser = argparse.ArgumentParser(
        prog="python -m cms_magic.quickstart",
        description=(
            "Run the quick start notebook headless against the local emulator and print "
            "the results summary and the first rows of the result frame."
        ),
    )
    parser.add_argument(
        "--notebook", metavar="PATH", help=f"the notebook to run (default: notebooks/{QUICKSTART})"
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=300,
        metavar="SECONDS",
        help="longest time one cell may take (default: %(default)g)",
    )
    parser.add_argument(
        "--output", metavar="PATH", help="also save the executed notebook (with its outputs) here"
    )
    args = parser.parse_args(argv)
    if not args.timeout > 0:
        parser.error(f"--timeout must be > 0 seconds, got {args.timeout:g}")
    try:
        notebook = find_notebook(args.notebook)
    except QuickstartError as exc:
        print(f"error: {exc}", file=err)
        return 2
    output = Path(args.output) if args.output else None
    return run(notebook, timeout=args.timeout, output=output, out=out, err=err)


if __name__ == "__main__":
    raise SystemExit(main())
