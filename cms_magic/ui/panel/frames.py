"""Which DataFrames the panel offers: those of the user namespace, and the one passed in."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["ARGUMENT", "FramePicker"]

#: The picker's key for ``panel(df)``'s df when no name in the namespace holds it
#: (never an identifier, so it cannot clash with one).
ARGUMENT: Final = "(argument)"


def _ipython_namespace() -> Mapping[str, Any]:
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython is a dependency
        return {}
    shell = get_ipython()
    return shell.user_ns if shell is not None else {}


class FramePicker:
    """The DataFrames to choose from: ``df`` (if given) and the public names of
    ``namespace`` (default: the IPython user namespace, when there is one) that hold one."""

    def __init__(self, df: pd.DataFrame | None, namespace: Mapping[str, Any] | None) -> None:
        self.df = df
        self._namespace = namespace
        self.frames: dict[str, pd.DataFrame] = {}

    def namespace(self) -> Mapping[str, Any]:
        return self._namespace if self._namespace is not None else _ipython_namespace()

    def discover(self) -> list[tuple[str, str]]:
        """Look again; the picker's (label, key) options."""
        import pandas as pd

        found: dict[str, pd.DataFrame] = {
            name: value
            for name, value in self.namespace().items()
            if not name.startswith("_") and isinstance(value, pd.DataFrame)
        }
        if self.df is not None and not any(f is self.df for f in found.values()):
            found = {ARGUMENT: self.df, **found}
        self.frames = found
        return [
            (
                f"{'the DataFrame passed in' if key == ARGUMENT else key} "
                f"({len(frame):,} rows × {frame.shape[1]} columns)",
                key,
            )
            for key, frame in found.items()
        ]

    def default(self, previous: str | None) -> str | None:
        """The key to choose after :meth:`discover`: the previous choice if still there,
        else the frame passed in, else the first found."""
        if previous in self.frames:
            return previous
        if self.df is not None:
            return next(k for k, f in self.frames.items() if f is self.df)
        return next(iter(self.frames), None)

    def get(self, key: str | None) -> pd.DataFrame | None:
        """The frame under ``key`` now (a name may have been rebound since the last look)."""
        import pandas as pd

        if key is None:
            return None
        if key == ARGUMENT:
            return self.df
        current = self.namespace().get(key)
        if isinstance(current, pd.DataFrame):
            return current
        return self.frames.get(key)
