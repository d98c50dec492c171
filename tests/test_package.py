"""The public surface: sorted and complete `__all__`, a light import, core free of IPython."""

from __future__ import annotations

import subprocess
import sys

import pytest

import cms_magic


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


def test_import_is_light() -> None:
    loaded = _modules_after("import cms_magic")
    heavy = {"pandas", "numpy", "IPython", "ipywidgets", "httpx", "tqdm", "tenacity"}
    assert not heavy & {m.split(".")[0] for m in loaded}


def test_the_core_imports_no_ipython_or_ipywidgets() -> None:
    core = [
        "batching",
        "credentials",
        "emulator",
        "errors",
        "events",
        "limits",
        "ratelimit",
        "regions",
        "results",
        "samples",
        "sender",
        "signing",
    ]
    loaded = _modules_after("\n".join(f"import cms_magic.{m}" for m in core))
    roots = {m.split(".")[0] for m in loaded}
    assert "IPython" not in roots
    assert "ipywidgets" not in roots


def test_regions_module_is_callable_and_lists_the_catalog() -> None:
    listed = cms_magic.regions()  # type: ignore[operator]
    assert len(listed) == 17
    assert cms_magic.endpoint("ap-south-1", internal=True).endswith("aliyuncs.com")
