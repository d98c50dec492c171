"""The panel's background work: threads that run through its error wrapper, and waiting.

Sends, retries and probes run in daemon threads so the kernel stays free; each
thread's target is wrapped by the panel (an exception shows in the panel), and
:meth:`Workers.wait` joins them all, which is how tests and scripts wait for a
result to be shown (never a sleep).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

__all__ = ["Workers"]


class Workers:
    """Starts wrapped daemon threads and waits for them."""

    def __init__(self, wrap: Callable[[Callable[..., object]], Callable[..., None]]) -> None:
        self._wrap = wrap
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def start(self, target: Callable[..., object], *args: Any) -> None:
        thread = threading.Thread(
            target=self._wrap(target), args=args, name="cms_magic panel", daemon=True
        )
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive()]
            self._threads.append(thread)
        thread.start()

    def wait(self, timeout: float | None = None) -> bool:
        """Join every thread started so far; True if all have ended (False: timed out)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            thread.join(remaining)
        return not any(t.is_alive() for t in threads)
