"""What the magic's tests share: running a cell as a user would and reading what it showed.

Every test loads the extension into a fresh shell and runs cells as a user
would (``shell.run_cell("%%cms_event ...")``), capturing what the cell shows
with IPython's own ``capture_output``. The environment is isolated (conftest):
a temporary HOME (no ``~/.aliyun``), no Alibaba Cloud variables unless a test
sets them.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from typing import Any, cast

from IPython.core.error import UsageError
from IPython.core.interactiveshell import ExecutionResult, InteractiveShell
from IPython.utils.capture import capture_output

from cms_magic.ui.magic.magics import CmsMagic

ENV_VARS = (
    "ALIBABA_CLOUD_ACCESS_KEY_ID",
    "ALIBABA_CLOUD_ACCESS_KEY_SECRET",
    "ALIBABA_CLOUD_SECURITY_TOKEN",
    "ALIBABA_CLOUD_PROFILE",
    "ALIBABA_CLOUD_CREDENTIALS_FILE",
    "ALIBABA_CLOUD_REGION_ID",
    "CMS_MAGIC_ENDPOINT",
)
#: A secret that must never show anywhere.
CANARY = "SECRET-LEAK-CANARY-7f3a9"
CANARY_ID = "LTAIcanaryKeyId0001"


@dataclass
class Ran:
    """What one cell did: IPython's result, and everything it showed."""

    result: ExecutionResult
    stdout: str
    stderr: str
    outputs: list[dict[str, Any]]
    #: Updates of earlier displays by display id (the finished bar's summary text).
    updates: list[dict[str, Any]]

    @property
    def value(self) -> Any:
        """The cell's displayed value."""
        return cast(Any, self.result).result

    @property
    def error(self) -> BaseException | None:
        return self.result.error_in_exec or self.result.error_before_exec

    @property
    def shown(self) -> str:
        displays = [*self.outputs, *self.updates]
        rich = "\n".join(str(value) for data in displays for value in data.values())
        return "\n".join([self.stdout, self.stderr, rich])


def run(ip: Any, cell: str) -> Ran:
    with capture_output() as captured:
        result = ip.run_cell(cell)
    outputs = [dict(out.data) for out in captured.outputs if not out.update]
    updates = [dict(out.data) for out in captured.outputs if out.update]
    return Ran(result, captured.stdout, captured.stderr, outputs, updates)


def magic(ip: InteractiveShell) -> CmsMagic:
    found = ip.magics_manager.registry["CmsMagic"]
    assert isinstance(found, CmsMagic)
    return found


def assert_usage_error(ran: Ran, *needles: str) -> str:
    """Exactly UsageError, one line on stderr, no traceback; returns the message."""
    assert type(ran.error) is UsageError, (ran.error, ran.stdout, ran.stderr)
    assert "Traceback" not in ran.shown
    lines = [line for line in ran.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, ran.stderr
    assert lines[0].startswith("UsageError: ")
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def shown_text(value: str) -> str:
    """The text a status widget shows (a ``Label``'s value, or an ``HTML``'s without tags)."""
    return html.unescape(re.sub(r"<[^>]*>", "", value))
