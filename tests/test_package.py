"""The public surface: sorted and complete `__all__`, a light import, a core free of the skins'
libraries, and no import cycle."""

from __future__ import annotations

import ast
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import cms_magic

PACKAGE = Path(cms_magic.__file__).parent


def test_all_is_sorted_and_every_name_resolves() -> None:
    names = list(cms_magic.__all__)
    constants = [n for n in names if n.isupper()]
    assert names == constants + sorted(n for n in names if not n.isupper())
    for name in names:
        assert getattr(cms_magic, name) is not None, name


def test_dir_lists_the_public_names() -> None:
    assert set(cms_magic.__all__) <= set(dir(cms_magic))


def test_unknown_attribute_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no_such_thing"):
        cms_magic.no_such_thing  # type: ignore[attr-defined]  # noqa: B018


def _modules_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", code + "\nimport sys; print('\\n'.join(sys.modules))"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return set(out.split())


def _all_modules() -> list[str]:
    walked = pkgutil.walk_packages([str(PACKAGE)], prefix="cms_magic.")
    return sorted(["cms_magic", *(i.name for i in walked if not i.name.endswith("__main__"))])


def _core_modules() -> list[str]:
    """Every module but the skins (``cms_magic.ui``) and the notebook runner."""
    skins = ("cms_magic.ui", "cms_magic.quickstart")
    return [m for m in _all_modules() if not m.startswith(skins)]


def test_import_is_light() -> None:
    loaded = _modules_after("import cms_magic")
    heavy = {"pandas", "numpy", "IPython", "ipywidgets", "httpx", "tqdm", "tenacity"}
    assert not heavy & {m.split(".")[0] for m in loaded}


def test_the_core_imports_no_ipython_ipywidgets_or_tqdm() -> None:
    core = _core_modules()
    assert "cms_magic.sending.client" in core  # the walk found the package's modules
    loaded = _modules_after("\n".join(f"import {m}" for m in core))
    roots = {m.split(".")[0] for m in loaded}
    assert not {"IPython", "ipywidgets", "tqdm"} & roots


_SKIN_LIBRARIES = ("IPython", "ipywidgets", "tqdm")


def _module_path(module: str) -> Path:
    relative = Path(*module.split(".")[1:])
    package = PACKAGE / relative / "__init__.py"
    return package if package.is_file() else (PACKAGE / relative).with_suffix(".py")


def test_no_core_module_imports_a_skin_library_anywhere() -> None:
    """Not even lazily, inside a function: the renderers that need them live in ``ui``."""
    found: list[str] = []
    for module in _core_modules():
        path = _module_path(module)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names = [node.module]
            found += [
                f"{module}:{node.lineno} imports {name}"
                for name in names
                if name.split(".")[0] in _SKIN_LIBRARIES
            ]
    assert "cms_magic.progress" in _core_modules()
    assert not found, found


def _imports_of(path: Path, module: str) -> set[str]:
    """Every cms_magic module that ``module`` imports, at any depth (also under TYPE_CHECKING
    and inside functions)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[: len(parts) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return {name for name in found if name.startswith("cms_magic")}


def _import_graph() -> dict[str, set[str]]:
    modules = set(_all_modules())
    graph: dict[str, set[str]] = {}
    for info in pkgutil.walk_packages([str(PACKAGE)], prefix="cms_magic."):
        if info.name.endswith("__main__"):
            continue
        spec = info.module_finder.find_spec(info.name.rpartition(".")[2], None)  # type: ignore[call-arg]
        assert spec is not None
        assert spec.origin is not None
        graph[info.name] = {m for m in _imports_of(Path(spec.origin), info.name) if m in modules}
    # A package's __init__ importing its own children is the package, not a cycle.
    for name, targets in graph.items():
        graph[name] = {t for t in targets if t != name and not name.startswith(t + ".")}
    return graph


def test_there_is_no_import_cycle() -> None:
    graph = _import_graph()
    assert "cms_magic.protocol" in graph["cms_magic.sending.client"]
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                cycle = [*stack[stack.index(target) :], target]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if target not in state:
                visit(target)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)


def test_the_core_never_imports_the_skins() -> None:
    graph = _import_graph()
    for module in _core_modules():
        if module == "cms_magic":
            continue  # load_ipython_extension imports the magic lazily, by design
        skins = {t for t in graph.get(module, ()) if t.startswith("cms_magic.ui")}
        assert not skins, f"{module} imports {sorted(skins)}"


def test_regions_module_is_callable_and_lists_the_catalog() -> None:
    listed = cms_magic.regions()  # type: ignore[operator]
    assert len(listed) == 17
    assert cms_magic.endpoint("ap-south-1", internal=True).endswith("aliyuncs.com")
