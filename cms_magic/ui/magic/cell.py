"""Running a ``%%cms_event`` cell as Python and capturing what it printed.

The cell runs in the user's namespace the way IPython runs any cell (its input
transformers, its AST transformers, its compiler flags), except that the last
expression is evaluated rather than displayed: its value is what the magic
sends. Everything the cell writes to stdout or stderr is still shown, and a copy
is kept, interleaved, as the content of an event when the cell ends with no value.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TextIO, cast

from IPython.core.error import UsageError

__all__ = ["CellOutcome", "run_cell", "tee_output"]


class _Tee:
    """A text stream that writes to ``target`` and keeps a copy in ``sink``."""

    def __init__(self, target: TextIO, sink: list[str]) -> None:
        self._target = target
        self._sink = sink

    def write(self, text: str) -> int:
        self._sink.append(text)
        return self._target.write(text)

    def writelines(self, lines: Sequence[str]) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        self._target.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._target, name)


@contextmanager
def tee_output(sink: list[str]) -> Iterator[None]:
    """Show stdout and stderr as usual and keep a copy of both, interleaved, in ``sink``."""
    stdout, stderr = sys.stdout, sys.stderr
    sys.stdout = cast(TextIO, _Tee(stdout, sink))
    sys.stderr = cast(TextIO, _Tee(stderr, sink))
    try:
        yield
    finally:
        sys.stdout, sys.stderr = stdout, stderr


@dataclass(frozen=True)
class CellOutcome:
    """What a cell left: its last expression's value (None if none, or ended with ``;``)
    and everything it printed."""

    value: Any
    printed: str


def run_cell(shell: Any, cell: str) -> CellOutcome:
    """Run ``cell`` in the user namespace of ``shell``; a user error is ``UsageError``.

    A ``SyntaxError`` says how to send the text as it is (``--raw``); an exception
    raised by the cell shows its own traceback (without the magic's frames) and
    becomes ``UsageError`` saying nothing was sent.
    """
    try:
        transformed = shell.transform_cell(cell)
        filename = shell.compile.cache(transformed, shell.execution_count, raw_code=cell)
        tree = shell.compile.ast_parse(transformed, filename=filename)
    except SyntaxError as exc:
        raise UsageError(
            f"the cell is not valid Python ({exc.msg}, line {exc.lineno}); to send its text "
            "as it is, add --raw"
        ) from None
    module = shell.transform_ast(tree)
    assert isinstance(module, ast.Module)
    last: ast.expr | None = None
    semicolon = False
    final = module.body[-1] if module.body else None
    if isinstance(final, ast.Expr):
        module.body.pop()
        last = final.value
        semicolon = shell.displayhook.semicolon_at_end_of_expression(transformed)
    flags = shell.compile.flags & ~ast.PyCF_ONLY_AST
    printed: list[str] = []
    value: Any = None
    with tee_output(printed):
        try:
            code = compile(module, filename, "exec", flags=flags, dont_inherit=True)
            exec(code, shell.user_global_ns, shell.user_ns)  # noqa: S102 - the user's cell
            if last is not None:
                expression = ast.Expression(last)
                code = compile(expression, filename, "eval", flags=flags, dont_inherit=True)
                value = eval(code, shell.user_global_ns, shell.user_ns)  # noqa: S307
        except Exception as exc:
            kind, error, trace = sys.exc_info()
            shell.showtraceback((kind, error, trace.tb_next if trace else None))
            raise UsageError(
                f"the cell raised {type(exc).__name__} (above); nothing was sent"
            ) from None
    return CellOutcome(None if semicolon else value, "".join(printed))
