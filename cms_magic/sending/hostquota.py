"""One quota for every process of the user on this machine: a key's bucket in a locked file.

Two notebooks and a cron job sending with one AccessKey share the account's quota;
each process's own :class:`~cms_magic.sending.quota.SharedBucket` cannot see the
others. :class:`HostBucket` keeps the key's bucket in a small file instead, so that
together they stay at the rate:

- **where**: ``$CMS_MAGIC_QUOTA_DIR`` if set, else ``$XDG_RUNTIME_DIR/cms_magic/quota``
  (a per-user tmpfs), else ``~/.cache/cms_magic/quota`` (made with mode 0700); the
  file is named by a hash of the quota key and the host name, never the key itself;
- **what**: GCRA, the token bucket as one number: the *theoretical arrival time*
  (TAT) of the next free slot, in ``CLOCK_MONOTONIC`` seconds (one clock for every
  process of a Linux machine; a different boot id starts afresh). Taking a slot is one
  read-modify-write of a few bytes under ``fcntl.flock`` (and a thread lock: flock does
  not exclude threads sharing one file description): the slot is at
  ``max(TAT, now)``, the TAT moves one interval on, and the caller waits until its slot;
- **rates**: a process reserving at a lower rate (a lower ``qps``, or its adaptive rate
  after a throttled answer) writes its interval with a ``hold`` time, and for as long
  as it keeps reserving every process spaces its slots by that longer interval: the
  host goes at the lowest rate among the sends using it, as the process bucket does
  among its leases.

A file that cannot be opened, locked, read or written makes the bucket fall back to
the process's own bucket (its inherited :class:`SharedBucket` state) with one
warning; a record that does not parse (a torn or foreign file) is logged once and
started afresh (the worst case is one extra slot). Without ``fcntl`` or off Linux the
bucket is the process's, with a note in the log. Never a crash, never a silent
over-rate.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import os
import socket
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from cms_magic import _state
from cms_magic.protocol import DEFAULT_QPS
from cms_magic.sending.buckets import SharedBucket

try:
    import fcntl
except ImportError:  # pragma: no cover - not on Linux
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "ENV_DIR",
    "HOLD",
    "HostBucket",
    "Slot",
    "gcra",
    "host_quota",
    "quota_dir",
    "quota_file_name",
]

log = logging.getLogger(__name__)

#: The environment variable that names the directory of the quota files.
ENV_DIR: Final = "CMS_MAGIC_QUOTA_DIR"
#: Seconds a lower rate written by one user keeps applying to the others after its last slot.
HOLD: Final = 2.0
#: Seconds: a TAT further ahead than this is a stale clock, started afresh.
MAX_AHEAD: Final = 86_400.0
_MAGIC: Final = "cms_magic-gcra/1"
_MAX_RECORD: Final = 512


@dataclass(frozen=True)
class Slot:
    """The shared state of one key: the next free slot (``tat``), and the slowest recent
    user's interval (``slow`` seconds between slots) and until when it holds."""

    tat: float
    slow: float
    until: float


def gcra(state: Slot | None, now: float, interval: float, hold: float = HOLD) -> tuple[float, Slot]:
    """Take one slot: return the seconds to wait and the new state (pure).

    ``state`` None (a new file) starts with a free slot now. A caller's ``interval``
    (``1 / rate``) spaces the slots unless a longer one, written by another caller
    within ``hold`` seconds, still holds.

    >>> delay, state = gcra(None, 100.0, 0.05)
    >>> delay, round(gcra(state, 100.0, 0.05)[0], 9)
    (0.0, 0.05)
    """
    if state is None or not state.tat - now <= MAX_AHEAD:
        state = Slot(now, interval, now + hold)
    if state.until <= now or interval >= state.slow:
        slow, until = interval, now + hold
    else:
        slow, until = state.slow, state.until
    start = max(state.tat, now)
    return start - now, Slot(start + slow, slow, until)


class _Corrupt(Exception):
    pass


def _boot_id() -> str:
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as handle:
            text = handle.read().strip()
    except OSError:
        return "-"
    return text if text and " " not in text else "-"


_BOOT: Final = _boot_id()


def encode(state: Slot, boot: str = _BOOT) -> bytes:
    """The file's record of ``state`` (one line, a few dozen bytes)."""
    return f"{_MAGIC} {boot} {state.tat!r} {state.slow!r} {state.until!r}\n".encode("ascii")


def decode(raw: bytes, boot: str = _BOOT) -> Slot | None:
    """The state in a record; None for an empty file or one of another boot. Raises
    :class:`_Corrupt` for anything else that is not a record."""
    if not raw:
        return None
    try:
        magic, their_boot, *numbers = raw.decode("ascii").split()
        tat, slow, until = (float(n) for n in numbers)
    except (UnicodeDecodeError, ValueError):
        raise _Corrupt from None
    if magic != _MAGIC or not all(map(math.isfinite, (tat, slow, until))) or not slow > 0:
        raise _Corrupt
    if their_boot != boot:
        return None
    return Slot(tat, slow, until)


def quota_dir(environ: Mapping[str, str] | None = None) -> Path:
    """Where the quota files are: ``$CMS_MAGIC_QUOTA_DIR``, else
    ``$XDG_RUNTIME_DIR/cms_magic/quota``, else ``~/.cache/cms_magic/quota``."""
    env = os.environ if environ is None else environ
    given = env.get(ENV_DIR)
    if given:
        return Path(given).expanduser()
    runtime = env.get("XDG_RUNTIME_DIR")
    if runtime and os.path.isdir(runtime):
        return Path(runtime) / "cms_magic" / "quota"
    return Path.home() / ".cache" / "cms_magic" / "quota"


def quota_file_name(key: str, host: str | None = None) -> str:
    """The file name of a quota key's bucket on ``host`` (this machine's name by default):
    a hash, never the key. The host is in it because a home directory shared by several
    machines (NFS) must not join their buckets: their monotonic clocks differ."""
    machine = socket.gethostname() if host is None else host
    material = b"\0".join([b"cms_magic quota", key.encode("utf-8"), machine.encode("utf-8")])
    return f"{hashlib.sha256(material).hexdigest()[:32]}.quota"


class _Fd:
    """The bucket file's descriptor, opened again in a forked child (a descriptor shared
    with the parent would share its flock, so they would not exclude each other)."""

    __slots__ = ("fd", "pid")

    def __init__(self) -> None:
        self.fd: int | None = None
        self.pid = 0

    def get(self, path: Path) -> int:
        pid = os.getpid()
        if self.fd is not None and self.pid == pid:
            return self.fd
        if self.fd is not None:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = None
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOFOLLOW", 0)
        self.fd = os.open(path, flags, 0o600)
        self.pid = pid
        return self.fd

    def close(self) -> None:
        if self.fd is not None and self.pid == os.getpid():
            with contextlib.suppress(OSError):
                os.close(self.fd)
        self.fd = None

    def __del__(self) -> None:
        self.close()


class HostBucket(SharedBucket):
    """A key's bucket shared by every process of the user on this machine (see the module).

    Same interface as :class:`SharedBucket` (``reserve()``, ``rate``, ``lease(qps)``,
    ``on_answer(throttled)``), so a run takes either. ``directory`` defaults to
    :func:`quota_dir`; ``clock`` must be one clock for every process (``time.monotonic``,
    ``CLOCK_MONOTONIC``, is); ``hold`` as :func:`gcra`.

    ``try_acquire`` (the emulator's side) stays this process's.
    """

    __slots__ = ("_fd", "_file_lock", "_repaired", "fallback_reason", "hold", "path")

    def __init__(
        self,
        key: str,
        rate: float = DEFAULT_QPS,
        *,
        directory: Path | str | None = None,
        clock: Callable[[], float] = time.monotonic,
        adaptive: bool = True,
        hold: float = HOLD,
    ) -> None:
        super().__init__(rate, clock=clock, adaptive=adaptive)
        base = quota_dir() if directory is None else Path(directory)
        #: The bucket's file (named by a hash of the key).
        self.path = base / quota_file_name(key)
        self.hold = float(hold)
        self._fd = _Fd()
        self._file_lock = threading.Lock()
        self._repaired = False
        #: Why the bucket is this process's only (None while it is host-wide).
        self.fallback_reason: str | None = None
        if fcntl is None or not sys.platform.startswith("linux"):
            self.fallback_reason = "no fcntl.flock or CLOCK_MONOTONIC shared by processes here"
            log.info(
                "the quota is shared by the sends of this process only (%s)", self.fallback_reason
            )

    def __repr__(self) -> str:
        where = "process" if self.fallback_reason else str(self.path)
        return f"HostBucket(rate={self.rate:g}, file={where!r})"

    @property
    def host_wide(self) -> bool:
        """True while the bucket is the file's (False: fell back to this process's)."""
        return self.fallback_reason is None

    def reserve(self) -> float:
        """Take the next slot of the key's host-wide bucket; the seconds to wait for it."""
        if self.fallback_reason is not None:
            return super().reserve()
        interval = 1.0 / self._sync_rate()
        try:
            with self._file_lock:
                delay = self._reserve_in_file(interval)
        except OSError as exc:
            self._fall_back(f"{type(exc).__name__}: {exc.strerror or exc}")
            return super().reserve()
        return delay

    def _reserve_in_file(self, interval: float) -> float:
        assert fcntl is not None
        fd = self._fd.get(self.path)
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            raw = os.pread(fd, _MAX_RECORD, 0)
            try:
                state = decode(raw)
            except _Corrupt:
                state = None
                if not self._repaired:
                    self._repaired = True
                    log.warning("the quota file %s held no valid record: started afresh", self.path)
            delay, new = gcra(state, self.clock(), interval, self.hold)
            data = encode(new)
            os.pwrite(fd, data, 0)
            if len(raw) > len(data):
                os.ftruncate(fd, len(data))
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
        return delay

    def _fall_back(self, reason: str) -> None:
        with self._file_lock:
            if self.fallback_reason is not None:
                return
            self.fallback_reason = reason
            self._fd.close()
        log.warning(
            "the quota file %s cannot be used (%s): this process's sends share the quota "
            "among themselves only, and may exceed it together with other processes",
            self.path,
            reason,
        )

    def close(self) -> None:
        """Close the file (the next reserve opens it again)."""
        with self._file_lock:
            self._fd.close()


_host_quotas: _state.Registry[tuple[str, str], HostBucket] = _state.registry("host quotas")


def host_quota(key: str, qps: float = DEFAULT_QPS) -> HostBucket:
    """The host-wide bucket of one quota key (one per key and directory in a process,
    forgotten by ``_state.reset()``). Asking with another ``qps`` when no send holds a
    lease sets its rate, as :func:`~cms_magic.sending.quota.shared_quota`."""
    directory = quota_dir()
    bucket = _host_quotas.get_or_create(
        (str(directory), key), lambda: HostBucket(key, qps, directory=directory)
    )
    bucket.ask(qps)
    return bucket
