"""Send events: rows -> events -> batches -> signed requests -> a :class:`SendResult`.

:func:`send` (and :class:`Client`, which keeps settings between sends) is the
one entry point the magic, the panel and the command line call.

How a send runs:

- The target comes from :mod:`cms_magic.targets`: a region id, ``public``, a
  URL, or ``local`` (any case: the embedded emulator with its demo key); with
  nothing given, what the environment configures (else the local emulator).
- It runs on one library-owned event loop in a daemon thread (see
  :mod:`cms_magic.sending._loop`), so it works the same in a script, in a notebook
  whose loop is already running, and from ``async`` code
  (``await client.asend(...)``).
- Input is converted and batched a chunk of rows at a time (``chunk_rows``) in
  a worker thread, through a bounded queue, so memory stays flat whatever the
  size of the frame (:mod:`cms_magic.sending.run`).
- A few workers post batches concurrently over one keep-alive connection
  pool, each request first taking a slot from the quota of its AccessKey (or of
  its role, for refreshing credentials): by default host-wide
  (:mod:`~cms_magic.sending.hostquota`: every process of this user on this machine
  with the same key shares the account's 20 requests per second), ``quota="process"``
  for this process only, ``quota="redis://host:port/db"`` across machines
  (:mod:`~cms_magic.sending.redisquota`). Throttled answers lower the rate and it
  probes back up (:mod:`~cms_magic.sending.adaptive`); a throttled request is
  retried for as long as the retry policy's time allows, never counted as an attempt.
- Each attempt is signed again (fresh Date). Retried, with exponential backoff
  and full jitter, bounded in attempts and time, honouring ``Retry-After``
  (:mod:`cms_magic.sending.retry`): connection failures before the request went
  out, HTTP 500/502/503/504, and throttling. Not retried
  (:mod:`cms_magic.sending.answers`): a 403 for the credentials (the whole send
  stops, the rows not yet sent stay ``not_sent``, and ``result.error`` is an
  :class:`~cms_magic.errors.AuthError`), and a 400 (the batch is bisected to find
  the offending events, :mod:`cms_magic.sending.bisection`). A timeout after the
  request was sent leaves its rows ``unknown`` unless ``retry_ambiguous=True``,
  since a retry may duplicate them.
- Every attempt has one total deadline, ``timeout`` seconds for connect, write
  and read together (the body included), so a server trickling its answer cannot
  hold a send. An answer is read to at most 64 KiB and never decoded (the request
  asks for ``Accept-Encoding: identity``); a larger or encoded one is a malformed
  answer: its rows are ``unknown`` (:mod:`cms_magic.sending._transport`).
- Cancel (``SendJob.cancel()``, the panel's Cancel, or Ctrl-C in a foreground
  send) stops at the next batch boundary and keeps a partial result that
  ``retry()`` can finish (``cms_magic.last_result()`` holds it after an
  interrupt; :mod:`cms_magic.sending.jobs`). ``SendJob.cancel()`` gives requests
  in flight 1.5 s (``jobs.CANCEL_GRACE``) to finish, then abandons them (their
  rows ``unknown``). Cancelling ``await client.asend(...)`` aborts at once; the
  partial result is also the ``CancelledError``'s ``result``.

Names kept importable from here for the skins: ``Progress`` (lives in
:mod:`cms_magic.progress`), ``SendJob`` (:mod:`cms_magic.results`),
``RetryPolicy`` (:mod:`~cms_magic.sending.retry`), ``last_result``
(:mod:`~cms_magic.sending.jobs`), ``Verdict`` and ``classify``
(:mod:`~cms_magic.sending.answers`), ``shared_quota`` (:mod:`~cms_magic.sending.quota`).
"""

from __future__ import annotations

import asyncio
import os
import random as _random
import time
from collections.abc import Callable, Sequence
from datetime import tzinfo
from typing import TYPE_CHECKING, Any, Literal, overload

import httpx
import numpy as np

from cms_magic.errors import InternalError
from cms_magic.progress import Progress, ProgressCallback, progress_callback
from cms_magic.protocol import DEFAULT_QPS, MAX_BODY_BYTES, MAX_EVENTS_PER_REQUEST
from cms_magic.results import SendJob, SendResult
from cms_magic.sending.answers import Verdict, classify
from cms_magic.sending.delivery import RunConfig, Sleep, masked_authorization
from cms_magic.sending.inputs import check_mapping
from cms_magic.sending.jobs import (
    await_run,
    last_result,
    merge,
    merged_job,
    run_foreground,
    start_background,
)
from cms_magic.sending.keys import AnyCredentials, Keys, quota_key
from cms_magic.sending.quota import TokenBucket, quota_factory, shared_quota
from cms_magic.sending.resume import check_journal_path, confirm_in_flight
from cms_magic.sending.retry import RetryPolicy
from cms_magic.sending.run import Run
from cms_magic.settings import (
    DEFAULT_CHUNK_ROWS,
    DEFAULT_CONCURRENCY,
    DEFAULT_MAX_BISECT_REQUESTS,
    DEFAULT_TIMEOUT,
    check_concurrency,
    check_count,
    check_qps,
    check_seconds,
)
from cms_magic.signing import CmsAuth
from cms_magic.targets import Target, resolve_target

if TYPE_CHECKING:
    import pandas as pd

    from cms_magic.confirm import Lookup
    from cms_magic.sending.journal_store import JournalTarget

__all__ = [
    "Client",
    "Progress",
    "ProgressCallback",
    "RetryPolicy",
    "SendJob",
    "SendResult",
    "Verdict",
    "classify",
    "last_result",
    "masked_authorization",
    "send",
    "shared_quota",
]


class Client:
    """Settings for sending to one target with one credential; reusable and thread-safe.

    ``endpoint`` is what :func:`cms_magic.targets.resolve_target` reads: a region
    id (``internal=True`` for the region's internal endpoint), ``public``, an
    explicit URL, or ``local`` for the embedded emulator (which takes its demo
    key); ``None`` means what the environment configures. A :class:`Target` is
    used as is. ``credentials`` default to the target's (``profile`` picks one).
    The quota ``qps`` is shared by every send with the same key: on this machine by
    default (``quota="host"``), in this process (``"process"``), or through Redis
    (``"redis://host:port/db"``); ``qps=0`` or ``quota="off"`` turns the client-side
    limit off; a :class:`~cms_magic.sending.quota.TokenBucket` is used as is. ``concurrency`` requests are in flight
    at most. ``clock``, ``monotonic``, ``sleep`` and ``random`` are injectable
    for tests.
    """

    def __init__(
        self,
        endpoint: str | Target | None = None,
        *,
        internal: bool = False,
        credentials: AnyCredentials | None = None,
        profile: str | None = None,
        qps: float = DEFAULT_QPS,
        concurrency: int = DEFAULT_CONCURRENCY,
        timeout: float = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        retry_ambiguous: bool = False,
        max_bisect_requests: int = DEFAULT_MAX_BISECT_REQUESTS,
        chunk_rows: int = DEFAULT_CHUNK_ROWS,
        max_events: int = MAX_EVENTS_PER_REQUEST,
        max_bytes: int = MAX_BODY_BYTES,
        transport: httpx.AsyncBaseTransport | None = None,
        quota: TokenBucket | str | None = None,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Sleep | None = None,
        random: Callable[[], float] = _random.random,
        source_ip: str | None = None,
    ) -> None:
        self.qps = check_qps(qps)
        self.concurrency = check_concurrency(concurrency)
        self.timeout = check_seconds(timeout, "timeout")
        self.max_bisect_requests = check_count(
            max_bisect_requests, "max_bisect_requests", minimum=0
        )
        self.chunk_rows = check_count(chunk_rows, "chunk_rows")
        if isinstance(endpoint, Target):
            target = endpoint
        else:
            target = resolve_target(
                endpoint, internal=internal, credentials_given=credentials is not None
            )
        #: Where the events go (``.label`` names it in a summary).
        self.target = target
        #: The base URL (for the local emulator: the embedded emulator's, started now).
        self.url = target.resolve_url()
        self.credentials = target.credentials(profile=profile, explicit=credentials)
        self.retry_policy = retry or RetryPolicy()
        self.retry_ambiguous = retry_ambiguous
        self.max_events = max_events
        self.max_bytes = max_bytes
        self.transport = transport
        self.quota = quota
        self._quota_factory = quota_factory(quota)  # a bad quota= fails here, named
        self.clock = clock
        self.monotonic = monotonic
        self.sleep: Sleep = sleep or asyncio.sleep
        self.random = random
        #: The keys each request is signed with (one whole triple per request).
        self.keys = Keys(self.credentials, source_ip=source_ip, clock=clock)

    def __repr__(self) -> str:
        # Tolerant of a half-built client: traceback tools call repr on the locals of a
        # failing __init__ (capture_locals, %xmode Verbose), where no attribute may be set yet.
        url = getattr(self, "url", None)
        credentials = getattr(self, "credentials", None)
        return f"Client(url={url!r}, credentials={credentials!r}, qps={getattr(self, 'qps', None)})"

    @property
    def auth(self) -> CmsAuth | None:
        """The signer requests use now: the static keys', or the one of a refreshing
        source's latest triple (None before its first); a plug-in ``httpx`` auth."""
        signer = self.keys.preview()
        return None if signer is None else signer.auth

    def lookup(self) -> Lookup:
        """A read-back of the events this client's target holds, for
        :meth:`~cms_magic.results.SendResult.confirm` (same credentials; the region's OpenAPI
        endpoint, or the emulator's own URL)."""
        from cms_magic.confirm import readback_lookup
        from cms_magic.readback import openapi_url

        return readback_lookup(openapi_url(self.target), self.credentials)

    def quota_bucket(self) -> TokenBucket | None:
        """The bucket this client's requests take their slots from (None: no client limit).

        The injected ``quota`` bucket if one was given; else, by ``quota`` (``"host"`` by
        default, ``"process"``, ``"redis://..."``, ``"off"``), the shared bucket of the
        credentials' quota key (:func:`~cms_magic.sending.quota.quota_factory`); None
        with ``qps=0`` or ``quota="off"``.
        """
        return self._quota_factory(quota_key(self.credentials), self.qps)

    def _run(
        self,
        data: Any,
        mapping: dict[str, Any],
        dry_run: bool,
        journal: str | os.PathLike[str] | None = None,
    ) -> Run:
        path = None if journal is None else check_journal_path(journal)
        config = RunConfig(
            url=self.url,
            keys=self.keys,
            concurrency=self.concurrency,
            timeout=self.timeout,
            retry_policy=self.retry_policy,
            retry_ambiguous=self.retry_ambiguous,
            max_bisect_requests=self.max_bisect_requests,
            chunk_rows=self.chunk_rows,
            max_events=self.max_events,
            max_bytes=self.max_bytes,
            transport=self.transport,
            quota=self.quota_bucket(),
            clock=self.clock,
            monotonic=self.monotonic,
            sleep=self.sleep,
            random=self.random,
            qps=self.qps,
            journal=path,
            journal_target=None if path is None else self.journal_target(),
        )
        return Run(config, data, check_mapping(mapping), dry_run=dry_run, sender=self)

    def journal_target(self) -> JournalTarget:
        """What a journal records this client's target as (the URL and a digest of the
        quota key; never a secret)."""
        from cms_magic.sending.journal_store import JournalTarget

        return JournalTarget.of(self.url, quota_key(self.credentials))

    # ------------------------------------------------------------------ public API

    @overload
    def send(
        self,
        data: pd.DataFrame | Sequence[Any],
        *,
        dry_run: bool = ...,
        background: Literal[False] = ...,
        progress: bool | ProgressCallback | None = ...,
        journal: str | os.PathLike[str] | None = ...,
        confirm: bool = ...,
        **mapping: Any,
    ) -> SendResult: ...

    @overload
    def send(
        self,
        data: pd.DataFrame | Sequence[Any],
        *,
        dry_run: bool = ...,
        background: Literal[True],
        progress: bool | ProgressCallback | None = ...,
        journal: str | os.PathLike[str] | None = ...,
        confirm: bool = ...,
        **mapping: Any,
    ) -> SendJob: ...

    @overload
    def send(
        self,
        data: pd.DataFrame | Sequence[Any],
        *,
        dry_run: bool = ...,
        background: bool,
        progress: bool | ProgressCallback | None = ...,
        journal: str | os.PathLike[str] | None = ...,
        confirm: bool = ...,
        **mapping: Any,
    ) -> SendResult | SendJob: ...

    def send(
        self,
        data: pd.DataFrame | Sequence[Any],
        *,
        dry_run: bool = False,
        background: bool = False,
        progress: bool | ProgressCallback | None = None,
        journal: str | os.PathLike[str] | None = None,
        confirm: bool = False,
        **mapping: Any,
    ) -> SendResult | SendJob:
        """Send ``data``; returns a :class:`SendResult`, or a :class:`SendJob` when
        ``background=True``. Mapping options as in :func:`cms_magic.events_from_frame`.

        ``progress``: a callable given each :class:`~cms_magic.progress.Progress`;
        ``True`` for a text line on stderr; ``None`` (the default) for that line
        in a foreground send from a terminal; ``False`` for none.

        ``journal``: a file (SQLite) recording, before each request goes out and when
        its answer comes back, what happened to every row. The same send run again with
        the same journal resumes: accepted rows are skipped, never-sent rows are sent,
        rows that were in flight when it stopped are ``unknown``; with ``confirm=True``
        those are first looked up by read-back (:meth:`SendResult.confirm`) and only the
        ones the service does not hold are sent. A journal made for other data or another
        target is refused (:class:`~cms_magic.errors.JournalMismatchError`).
        :func:`cms_magic.read_journal` shows one.
        """
        if confirm and journal is not None and not dry_run:
            confirm_in_flight(self, data, mapping, journal)
        run = self._run(data, mapping, dry_run, journal)
        run.add_progress(progress_callback(progress, background=background))
        if background:
            return start_background(run.execute, run.control)
        return run_foreground(run.execute, run.control, grace=self.timeout + 5)

    async def asend(
        self,
        data: pd.DataFrame | Sequence[Any],
        *,
        dry_run: bool = False,
        progress: ProgressCallback | None = None,
        journal: str | os.PathLike[str] | None = None,
        **mapping: Any,
    ) -> SendResult:
        """``await`` a send from async code (any event loop); same result as :meth:`send`
        (``journal`` too; ``confirm`` needs the synchronous :meth:`send`).

        Cancelling it (``asyncio.wait_for``, ``task.cancel()``) aborts the send: the
        requests in flight are abandoned (their rows ``unknown``), the rest stay
        ``not_sent``. The partial result becomes :func:`cms_magic.last_result` and is
        the ``result`` attribute of the ``CancelledError`` (``wait_for``'s
        ``TimeoutError`` has it as ``__cause__``); ``result.retry()`` resumes.
        """
        run = self._run(data, mapping, dry_run, journal)
        run.add_progress(progress)
        return await await_run(run.execute, run.control)

    def resend(
        self,
        previous: SendResult,
        positions: np.ndarray[Any, Any],
        *,
        background: bool,
        progress: ProgressCallback | None,
    ) -> SendResult | SendJob:
        """Send the rows of ``previous`` at ``positions`` again (with its mapping options);
        the outcome is merged into ``previous``. This is what ``previous.retry()`` calls."""
        spec = previous.request
        if spec is None:
            raise InternalError("resend needs a result made by a send", option="previous")
        subset = spec.subset(positions)
        if not background:
            again = self.send(subset, dry_run=spec.dry_run, progress=progress, **spec.mapping)
            return merge(previous, again, positions)
        job = self.send(
            subset, dry_run=spec.dry_run, background=True, progress=progress, **spec.mapping
        )
        return merged_job(previous, job, positions)


# --------------------------------------------------------------------------- module-level send


@overload
def send(
    data: pd.DataFrame | Sequence[Any],
    *,
    endpoint: str | Target | None = ...,
    internal: bool = ...,
    credentials: AnyCredentials | None = ...,
    profile: str | None = ...,
    dry_run: bool = ...,
    journal: str | os.PathLike[str] | None = ...,
    confirm: bool = ...,
    background: Literal[False] = ...,
    progress: bool | ProgressCallback | None = ...,
    name: str | None = ...,
    name_col: str | None = ...,
    content_col: str | None = ...,
    content_template: str | None = ...,
    group_id: int | None = ...,
    group_id_col: str | None = ...,
    time_col: str | None = ...,
    tz: str | tzinfo | None = ...,
    **client_options: Any,
) -> SendResult: ...


@overload
def send(
    data: pd.DataFrame | Sequence[Any],
    *,
    endpoint: str | Target | None = ...,
    internal: bool = ...,
    credentials: AnyCredentials | None = ...,
    profile: str | None = ...,
    dry_run: bool = ...,
    journal: str | os.PathLike[str] | None = ...,
    confirm: bool = ...,
    background: Literal[True],
    progress: bool | ProgressCallback | None = ...,
    name: str | None = ...,
    name_col: str | None = ...,
    content_col: str | None = ...,
    content_template: str | None = ...,
    group_id: int | None = ...,
    group_id_col: str | None = ...,
    time_col: str | None = ...,
    tz: str | tzinfo | None = ...,
    **client_options: Any,
) -> SendJob: ...


@overload
def send(
    data: pd.DataFrame | Sequence[Any],
    *,
    endpoint: str | Target | None = ...,
    internal: bool = ...,
    credentials: AnyCredentials | None = ...,
    profile: str | None = ...,
    dry_run: bool = ...,
    journal: str | os.PathLike[str] | None = ...,
    confirm: bool = ...,
    background: bool,
    progress: bool | ProgressCallback | None = ...,
    name: str | None = ...,
    name_col: str | None = ...,
    content_col: str | None = ...,
    content_template: str | None = ...,
    group_id: int | None = ...,
    group_id_col: str | None = ...,
    time_col: str | None = ...,
    tz: str | tzinfo | None = ...,
    **client_options: Any,
) -> SendResult | SendJob: ...


def send(
    data: pd.DataFrame | Sequence[Any],
    *,
    endpoint: str | Target | None = None,
    internal: bool = False,
    credentials: AnyCredentials | None = None,
    profile: str | None = None,
    dry_run: bool = False,
    journal: str | os.PathLike[str] | None = None,
    confirm: bool = False,
    background: bool = False,
    progress: bool | ProgressCallback | None = None,
    name: str | None = None,
    name_col: str | None = None,
    content_col: str | None = None,
    content_template: str | None = None,
    group_id: int | None = None,
    group_id_col: str | None = None,
    time_col: str | None = None,
    tz: str | tzinfo | None = None,
    **client_options: Any,
) -> SendResult | SendJob:
    """Report ``data`` as custom events and say what happened to every row.

    ``data`` is a DataFrame (each row an event; see
    :func:`cms_magic.events_from_frame` for the mapping options) or a list of
    :class:`Event` or API-shaped dicts. ``endpoint`` is a region id (with
    ``internal=True`` for the region's internal endpoint), ``public``, an URL,
    or ``local`` (any case) for the embedded emulator; ``None`` reads the
    environment (see :mod:`cms_magic.targets`). ``credentials`` default to the
    target's: the demo key for the emulator, else
    :func:`cms_magic.resolve_credentials` (``profile`` picks one). ``dry_run``
    does everything but the POST. ``journal`` (a file) makes the send resumable after a
    crash, and ``confirm=True`` looks up the rows in flight at the crash before
    resending them (see :meth:`Client.send`). ``background=True`` returns a
    :class:`SendJob` at once. Other options (``qps``, ``quota``, ``concurrency``,
    ``timeout``, ``retry``, ``retry_ambiguous``...) are :class:`Client`'s.

    Returns a :class:`~cms_magic.results.SendResult` (or a :class:`SendJob`);
    ``result.raise_for_error()`` raises when the whole send had to stop (refused
    credentials: an :class:`~cms_magic.errors.AuthError`).
    """
    client = Client(
        endpoint,
        internal=internal,
        credentials=credentials,
        profile=profile,
        **client_options,
    )
    mapping = {
        "name": name,
        "name_col": name_col,
        "content_col": content_col,
        "content_template": content_template,
        "group_id": group_id,
        "group_id_col": group_id_col,
        "time_col": time_col,
        "tz": tz,
    }
    return client.send(
        data,
        dry_run=dry_run,
        background=background,
        progress=progress,
        journal=journal,
        confirm=confirm,
        **{k: v for k, v in mapping.items() if v is not None},
    )
