"""``cms-event send``: check everything, read the file, send, say what happened.

The order is the user's: every error a command line can make (a flag, the
target, the credentials, the file, the mapping against the file's columns) is
found and said, in the flags' words, before anything says "sending" or a byte
leaves. Then the send runs as a job of the core
(:meth:`cms_magic.Client.send` with ``background=True``) while this thread
waits with SIGINT and SIGTERM handled: the first signal cancels the job (the
requests in flight get the core's grace), a second one aborts them; either way
the partial result is kept, the ``--failed-out`` file is written, one line
says how to resume, and the exit status is 130 (SIGINT) or 143 (SIGTERM).
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from cms_magic.errors import ConfigError, Subject
from cms_magic.settings import check_count
from cms_magic.ui.cli.bar import RowBar
from cms_magic.ui.cli.tables import (
    check_writable,
    failed_rows,
    read_table,
    strip_outcome,
    write_table,
)
from cms_magic.ui.options import MAPPING_OPTIONS, OPTIONS, SEND_OPTIONS, flag_subject

if TYPE_CHECKING:
    import pandas as pd

    from cms_magic.results import SendJob, SendResult

__all__ = ["cli_subject", "run_send"]

_CREDENTIAL_FIELDS = {
    "access_key_id": "ALIBABA_CLOUD_ACCESS_KEY_ID",
    "access_key_secret": "ALIBABA_CLOUD_ACCESS_KEY_SECRET",
    "security_token": "ALIBABA_CLOUD_SECURITY_TOKEN",
}

#: The command line's own arguments that errors name (not in the options table).
_PATHS = {"file": "file", "failed_out": "--failed-out", "output": "--output"}

#: The signals a send stops for, and the exit status each gives.
_EXIT_STATUS = {signal.SIGINT: 130, signal.SIGTERM: 143}


def _rows(count: int) -> str:
    return f"{count:,} row{'' if count == 1 else 's'}"


def err(text: str) -> None:
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


def out(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def cli_subject(profile: str | None) -> Subject:
    """The flags' words for an error's subject; a credential field is named where the
    command line takes it from: its environment variable, or the ``--profile``."""

    def subject(name: str, value: object) -> str:
        if name in _PATHS:  # a path is shown whole, never cut
            return f"{_PATHS[name]} {value!r}" if isinstance(value, str) else _PATHS[name]
        variable = _CREDENTIAL_FIELDS.get(name)
        if variable is None:
            return flag_subject(name, value)
        if profile is None and (
            os.environ.get(_CREDENTIAL_FIELDS["access_key_id"], "").strip()
            or os.environ.get(_CREDENTIAL_FIELDS["access_key_secret"], "").strip()
        ):
            return variable
        chosen = profile or os.environ.get("ALIBABA_CLOUD_PROFILE") or "default"
        return f"{name} of the credentials profile {chosen!r} (--profile)"

    return subject


class _Signals:
    """SIGINT and SIGTERM while a send runs: noted, acted on by the waiting thread."""

    def __init__(self) -> None:
        self.received: list[int] = []

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        self.received.append(signum)

    @contextmanager
    def installed(self) -> Iterator[_Signals]:
        """Handle the signals meanwhile (only the main thread can; elsewhere, as they were)."""
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        previous = {s: signal.signal(s, self) for s in _EXIT_STATUS}
        try:
            yield self
        finally:
            for s, handler in previous.items():
                signal.signal(s, signal.SIG_DFL if handler is None else handler)


def _wait(job: SendJob, signals: _Signals) -> SendResult:
    """The job's result; the first signal cancels it, a second aborts its requests."""
    acted = 0
    while not job.wait(0.1):
        if len(signals.received) > acted:
            acted = len(signals.received)
            if acted == 1:
                job.cancel()
            else:
                job.abort()
    return job.result()


def _options_given(args: argparse.Namespace) -> list[str]:
    words: list[str] = []
    for found in OPTIONS:
        value = getattr(args, found.name, None)
        if value is None or value is False:
            continue
        words.append(found.flag)
        if found.kind is not bool:
            words.append(shlex.quote(str(value)))
    return words


def _next_step(args: argparse.Namespace, result: SendResult, not_accepted: int) -> str:
    """Where the rows not accepted are, and the command that sends them again."""
    if args.failed_out is None:
        return "keep them with --failed-out FILE"
    step = f"{_rows(not_accepted)} not accepted in {args.failed_out}"
    counts = result.counts()
    journal = _journal_path(args)
    if journal is not None and (counts["not_sent"] or counts["unknown"]):
        # Journaled: the same command resumes (the journal knows what was delivered).
        source, path = shlex.quote(str(args.file)), shlex.quote(str(args.failed_out))
        command = ["cms-event", "send", source, *_options_given(args), "--failed-out", path]
        if counts["unknown"] and not args.confirm:
            command.append("--confirm")  # look the unknown rows up before resending them
        return step + f"; resume: {' '.join(command)}"
    if counts["not_sent"] or counts["unknown"]:
        path = shlex.quote(str(args.failed_out))
        command = ["cms-event", "send", path, *_options_given(args), "--failed-out", path]
        step += f"; resume: {' '.join(command)}"
        if counts["unknown"]:
            step += " (its unknown rows may be stored already: sending them may duplicate)"
    return step


def _preview(result: SendResult) -> None:
    preview = result.preview
    if not preview:
        return
    out(f"dry run: the first request would be {preview['method']} {preview['url']}")
    for name, value in preview["headers"].items():
        out(f"  {name}: {value}")
    body = str(preview["body_preview"])
    head = body if len(body) <= 300 else body[:300] + "..."
    out(f"  body ({preview['body_bytes']:,} bytes): {head}")


def _journal_path(args: argparse.Namespace) -> Path | None:
    """The journal of this send: --journal FILE; else FILE.journal next to --failed-out
    FILE; none for a dry run, with --no-journal, or without either file."""
    if args.dry_run or args.no_journal:
        if args.journal is not None and args.no_journal:
            raise ConfigError("cannot go with --no-journal", option="journal", value=args.journal)
        return None
    if args.journal is not None:
        return Path(args.journal)
    if args.failed_out is not None:
        return Path(f"{args.failed_out}.journal")
    if args.confirm:
        raise ConfigError(
            "needs a journal (--journal FILE, or --failed-out FILE): it confirms the rows a "
            "journal has in flight",
            option="confirm",
        )
    return None


def _journal_note(args: argparse.Namespace, journal: Path | None) -> str:
    if journal is not None:
        return (
            f"cms-event: journal {journal}: if this send stops, run the same command again "
            "to resume it"
        )
    why = "--no-journal" if args.no_journal else "no --journal FILE or --failed-out FILE"
    return f"cms-event: not journaled ({why}): a crash would forget what was delivered"


def run_send(args: argparse.Namespace) -> int:
    """``cms-event send``; returns the exit status (errors are raised for :func:`main`)."""
    import cms_magic
    from cms_magic.targets import resolve_target

    target = resolve_target(
        args.endpoint,
        region=args.region,
        internal=args.internal,
        credentials_given=args.profile is not None,
    )
    sending = {
        o.name: o.default if getattr(args, o.name) is None else getattr(args, o.name)
        for o in SEND_OPTIONS
    }
    retries = check_count(sending.pop("max_retries"), "max_retries", minimum=0)
    client = cms_magic.Client(
        target,
        profile=args.profile,
        retry=cms_magic.RetryPolicy(max_attempts=retries + 1),
        **sending,
    )
    if args.failed_out is not None:
        check_writable(args.failed_out)
    frame, was_failed_out = strip_outcome(read_table(args.file))
    mapping = {o.name: getattr(args, o.name) for o in MAPPING_OPTIONS}
    mapping = {k: v for k, v in mapping.items() if v is not None}
    bar = None if args.quiet else RowBar(len(frame))
    journal = _journal_path(args)
    signals = _Signals()
    with signals.installed():
        # Raises for a mapping that does not fit the file's columns, before any request.
        job = client.send(
            frame,
            dry_run=args.dry_run,
            background=True,
            progress=bar,
            journal=journal,
            confirm=bool(args.confirm),
            **mapping,
        )
        rows = _rows(len(frame))
        if was_failed_out:
            err(
                f"cms-event: {args.file} is a --failed-out file: its status and reason "
                "columns are not sent"
            )
        if args.dry_run:
            err(f"cms-event: dry run of {rows} for {target.label}: nothing is sent")
        else:
            err(f"cms-event: sending {rows} to {target.label}: {target.where}")
            err(_journal_note(args, journal))
        if bar is not None:
            bar.show()
        result = _wait(job, signals)
        if bar is not None:
            bar.close(interrupted=bool(signals.received))
        # Still handled: a signal now leaves the file whole (it is written in a moment).
        return _report(args, result, frame, signals.received[0] if signals.received else None)


def _report(
    args: argparse.Namespace, result: SendResult, frame: pd.DataFrame, signum: int | None
) -> int:
    failed = result.failed_mask()
    not_accepted = int(failed.sum())
    if args.dry_run:
        _preview(result)
    if not_accepted:
        reasons = result.failed_events()["reason"].value_counts().head(5)
        for reason, count in reasons.items():
            err(f"  {count:,} x {reason}")
    if args.failed_out is not None:  # always: an old file's rows must not be sent again
        try:
            write_table(failed_rows(result, frame), args.failed_out)
        except OSError as exc:
            out(result.summary(None, interrupted=signum is not None))
            err(
                f"cms-event: error: --failed-out {str(args.failed_out)!r}: cannot be written "
                f"({exc.strerror or type(exc).__name__}); {_rows(not_accepted)} not accepted "
                "not kept"
            )
            return 2
    step = _next_step(args, result, not_accepted)
    out(result.summary(None, next_step=step, interrupted=signum is not None))
    if signum is not None:
        return _EXIT_STATUS[signal.Signals(signum)]
    if args.dry_run:
        return 0 if result.counts()["rejected"] == 0 else 1
    return 0 if result.ok else 1
