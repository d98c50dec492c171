"""One library-owned asyncio event loop, running in a daemon thread.

A notebook kernel already runs an event loop in its main thread, where
``asyncio.run`` and ``run_until_complete`` fail ("event loop is already
running"). cms_magic never touches that loop: every send runs as a coroutine
on this private loop, and callers wait on a ``concurrent.futures.Future``
(synchronous API) or wrap it for their own loop (``await client.asend(...)``).
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["in_library_loop", "library_loop", "run_in_background", "wait_for"]

T = TypeVar("T")

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None
_thread: threading.Thread | None = None


def library_loop() -> asyncio.AbstractEventLoop:
    """The shared loop, started on first use."""
    global _loop, _thread
    with _lock:
        if _loop is not None and _thread is not None and _thread.is_alive():
            return _loop
        loop = asyncio.new_event_loop()
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(loop)
            loop.call_soon(ready.set)
            loop.run_forever()

        thread = threading.Thread(target=run, name="cms_magic-loop", daemon=True)
        thread.start()
        ready.wait()
        _loop, _thread = loop, thread
        return loop


def run_in_background(coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
    """Schedule ``coro`` on the library loop; the returned future is thread-safe."""
    return asyncio.run_coroutine_threadsafe(coro, library_loop())


def wait_for(coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
    """Run ``coro`` on the library loop and wait for it from this (another) thread; a
    wait that ends early (Ctrl-C, ``timeout``: ``TimeoutError``) cancels it."""
    if in_library_loop():
        coro.close()
        raise RuntimeError("waiting on the library loop from itself would hang; await it")
    future = run_in_background(coro)
    try:
        return future.result(timeout)
    except BaseException:
        future.cancel()
        raise


def in_library_loop() -> bool:
    """True when called from the library loop's own thread."""
    return _thread is not None and threading.current_thread() is _thread


@atexit.register
def _shutdown() -> None:
    loop, thread = _loop, _thread
    if loop is not None and thread is not None and thread.is_alive():
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=2)
        if not thread.is_alive():
            loop.close()
