"""One send, as an async pipeline: produce -> workers -> deliver.

- The **producer** converts and batches the input a chunk of rows at a time in
  a worker thread (so memory stays flat whatever the size of the frame) and
  puts batches on a bounded queue.
- ``concurrency`` **workers** take batches off the queue and deliver them over
  one keep-alive connection pool.
- **Delivering** a batch: take a slot of the quota, sign (every attempt again,
  with a fresh Date), post, read the answer, retry within the budget, bisect a
  rejected batch, settle its rows.

Every decision is a pure function of another module, which this one only
orders: what an answer means (:mod:`~cms_magic.sending.answers`), whether and
how long to wait before trying again (:mod:`~cms_magic.sending.retry`), how to
narrow a rejected batch (:mod:`~cms_magic.sending.bisection`); the rows'
outcomes are collected by :mod:`~cms_magic.sending.outcomes`.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx

from cms_magic import _state
from cms_magic.batching import Batch, plan_batches
from cms_magic.credentials.static import Credentials, mask
from cms_magic.errors import (
    ConfigError,
    CredentialsError,
    JournalError,
    JournalMismatchError,
    SendError,
)
from cms_magic.events.convert import Conversion
from cms_magic.progress import Progress, ProgressCallback
from cms_magic.protocol import UPLOAD_PATH
from cms_magic.results import RequestRecord, Resender, ResendSpec, SendResult, Status
from cms_magic.sending._transport import http_transport, post
from cms_magic.sending.answers import (
    Decision,
    Verdict,
    after_ambiguous,
    answer_secrets,
    auth_error,
    classify,
    clock_skew_warning,
    decide,
    decide_failure,
    describe,
    scrub_answer,
)
from cms_magic.sending.bisection import (
    BisectBudget,
    next_step,
    split_by_bytes,
    unnarrowed_reason,
)
from cms_magic.sending.inputs import prepare
from cms_magic.sending.jobs import Control
from cms_magic.sending.keys import Keys, Signer, is_token_expired
from cms_magic.sending.outcomes import ResultBuilder
from cms_magic.sending.quota import SharedBucket, TokenBucket, lease_for
from cms_magic.sending.recorder import Gate, Recorder, stopped_by
from cms_magic.sending.retry import RetryPolicy, backoff, may_retry

if TYPE_CHECKING:
    from cms_magic.sending.journal_store import JournalTarget

__all__ = ["Run", "RunConfig", "masked_authorization"]

log = logging.getLogger("cms_magic")

Sleep = Callable[[float], Awaitable[None]]

# Accept-Encoding: identity is set again by the transport; here it shows in a dry run's preview.
_JSON_HEADERS = {"Content-Type": "application/json", "Accept-Encoding": "identity"}

#: The endpoints already warned about a skewed clock (one warning each per process).
_skew_warned: _state.Registry[str, bool] = _state.registry("clock skew warned")


@dataclass(frozen=True, slots=True)
class RunConfig:
    """Everything a run needs from its client (read once per send)."""

    url: str
    keys: Keys
    concurrency: int
    timeout: float
    retry_policy: RetryPolicy
    retry_ambiguous: bool
    max_bisect_requests: int
    chunk_rows: int
    max_events: int
    max_bytes: int
    transport: httpx.AsyncBaseTransport | None
    quota: TokenBucket | None
    clock: Callable[[], float]
    monotonic: Callable[[], float]
    sleep: Sleep
    random: Callable[[], float]
    qps: float = 0.0  # the rate the run leases its shared quota at (with ``quota``)
    #: The journal file of the send (None: no journal), and what it records the target as.
    journal: str | None = None
    journal_target: JournalTarget | None = None


@dataclass(slots=True)
class _Final:
    """How one request ended, after its retries."""

    decision: Decision
    verdict: Verdict
    http_status: int | None
    attempts: int
    latency_ms: float
    sent_at: float
    #: Refused because the STS token expired, and the keys can be refreshed (not final yet).
    expired: bool = False

    @property
    def status(self) -> Status:
        return self.decision.status


class _Wire:
    """Where one delivery stands, for an abort to tell ``unknown`` from ``not_sent``:
    an attempt is on the wire, or an earlier attempt's answer was ambiguous."""

    __slots__ = ("ambiguous", "attempts", "in_flight", "positions")

    def __init__(self, positions: Sequence[int] = ()) -> None:
        self.positions = positions  # the rows this delivery carries (for the journal)
        self.attempts = 0
        self.in_flight = False
        self.ambiguous = False


class _AuthStop(Exception):
    """The credentials were refused: this worker stops delivering."""


class _Halted(Exception):
    """The send stops before this request goes out: the credentials' source gave no usable
    keys, or the journal could not record the request. ``error`` says why, for the result."""

    def __init__(self, error: SendError, why: str) -> None:
        super().__init__(why)
        self.error = error
        self.why = why

    @classmethod
    def keys(cls, exc: CredentialsError) -> _Halted:
        error = SendError(
            f"{exc}; the rows not sent can be resent with result.retry() once the "
            "credentials work again",
            option="credentials",
        )
        return cls(error, str(exc))

    @classmethod
    def journal(cls, exc: JournalError) -> _Halted:
        return cls(stopped_by(exc), f"the journal could not record the request ({exc})")


#: Shown in a dry run's preview when a refreshing source has not been asked for keys yet.
_NOT_FETCHED = Credentials("STS.not-fetched-in-a-dry-run", "-", "-", source="dry run")


def masked_authorization(value: str) -> str:
    """``LTAI****abcd:<signature>``: the key id masked, the signature left out (previews)."""
    key_id, _, _ = value.partition(":")
    return f"{mask(key_id)}:<signature>"


class Run:
    """One send: its input, its result builder, its workers."""

    def __init__(
        self,
        config: RunConfig,
        data: Any,
        mapping: Mapping[str, Any],
        *,
        dry_run: bool,
        sender: Resender | None = None,
    ) -> None:
        self.config = config
        self.dry_run = dry_run
        self.control = Control()
        self.callbacks: list[ProgressCallback] = []
        self.prepared = prepare(data, mapping, chunk_rows=config.chunk_rows)
        self.request = ResendSpec(self.prepared.source, dict(mapping), dry_run, sender)
        self.builder = ResultBuilder(self.prepared.total, self.prepared.index)
        self.recorder = self._recorder(dry_run)
        self.gate = Gate(self.recorder.journal)
        self.requests = 0
        self.errors = 0
        self.started = 0.0
        self.preview: dict[str, Any] | None = None
        self.warnings: list[str] = []
        self.upload_url = httpx.URL(config.url + UPLOAD_PATH)  # parsed once per send
        self.timeouts = httpx.Timeout(config.timeout).as_dict()
        self.skew_checked = False  # the server's Date is compared with ours once per send
        self.transport: httpx.AsyncBaseTransport | None = None

    def _recorder(self, dry_run: bool) -> Recorder:
        """The builder, and the journal opened (or resumed) when the send has one: a journal
        made for other data or another target is refused here, before anything is sent."""
        config = self.config
        if config.journal is None:
            return Recorder(self.builder)
        if dry_run:
            raise ConfigError(
                "does not apply to a dry run (nothing is sent, so nothing is journaled)",
                option="journal",
                value=config.journal,
            )
        from cms_magic.sending.journal import Fingerprinter, Journal

        assert config.journal_target is not None
        fingerprint = Fingerprinter(
            chunk_rows=config.chunk_rows, max_events=config.max_events, max_bytes=config.max_bytes
        )
        journal = Journal.open(
            config.journal,
            fingerprint=fingerprint,
            target=config.journal_target,
            total=self.prepared.total,
        )
        if journal.resumed:
            # The rows the journal settled keep their outcome (in flight: unknown).
            for status, reason, positions in journal.initial.groups():
                self.builder.settle(positions.tolist(), status, reason, batch=-1, attempts=0)
        return Recorder(self.builder, journal, fingerprint)

    def add_progress(self, callback: ProgressCallback | None) -> None:
        if callback is not None:
            self.callbacks.append(callback)

    # ------------------------------------------------------------------ the pipeline

    async def execute(self) -> SendResult:
        self.started = time.perf_counter()
        config = self.config
        limits = httpx.Limits(
            max_connections=config.concurrency, max_keepalive_connections=config.concurrency
        )
        interrupted: BaseException | None = None
        # The transport is used directly (see cms_magic.sending._transport.post).
        transport = config.transport or http_transport(limits)
        # The run holds its key's shared quota at its qps for as long as it sends.
        with lease_for(config.quota, config.qps):
            async with transport:
                self.transport = transport
                queue: asyncio.Queue[Batch | None] = asyncio.Queue(
                    maxsize=max(8, 4 * config.concurrency)
                )
                workers = [
                    asyncio.create_task(self._worker(queue)) for _ in range(config.concurrency)
                ]
                producer = asyncio.create_task(self._produce(queue, len(workers)))
                self.control.started(asyncio.get_running_loop(), [producer, *workers])
                try:
                    # Never raises for a task: an abort cancels them all, and the rows
                    # they held were settled on the way out.
                    await asyncio.gather(producer, *workers, return_exceptions=True)
                except asyncio.CancelledError as exc:
                    # This run itself was cancelled: gather has cancelled every task and
                    # waited for them (their rows are settled); the partial result is kept.
                    interrupted = exc
                    self.control.abort()
                failure = None if producer.cancelled() else producer.exception()
                if failure is not None:
                    self._producer_failed(failure)
        self.transport = None
        self.recorder.close()
        result = self.builder.build(
            elapsed=time.perf_counter() - self.started,
            request=self.request,
            endpoint=config.url,
            cancelled=self.control.cancelled.is_set() and self.builder.error is None,
        )
        result.preview = self.preview
        result.warnings = list(self.warnings)
        self._report(finished=True)
        if interrupted is not None:
            from cms_magic.sending.jobs import remember  # (jobs is imported already)

            interrupted.result = remember(result)  # type: ignore[attr-defined]
            raise interrupted
        return result

    def _producer_failed(self, failure: BaseException) -> None:
        """The producer stopped on an error: the send stops with why."""
        if isinstance(failure, JournalMismatchError):  # resumed with other data
            refused = SendError(str(failure))  # its text names the journal and what differs
            refused.__cause__ = failure
            self.builder.stop(refused)
            return
        if isinstance(failure, JournalError):
            self.builder.stop(stopped_by(failure))
            return
        log.error("reading the input failed", exc_info=failure)
        error = SendError(
            f"reading the input failed ({type(failure).__name__}: {failure}); "
            "the rows not reached are not_sent",
            option="data",
        )
        error.__cause__ = failure
        self.builder.stop(error)

    async def _produce(self, queue: asyncio.Queue[Batch | None], workers: int) -> None:
        loop = asyncio.get_running_loop()
        chunks = self.prepared.chunks
        next_number = 0
        try:
            while not self._stopping():
                work = loop.run_in_executor(None, self._plan_next, chunks, next_number)
                try:
                    planned = await asyncio.shield(work)
                except asyncio.CancelledError:
                    # The chunk being planned is finished first (it cannot be stopped), so
                    # nothing records its rejections after the result is built.
                    await asyncio.wait([work])
                    raise
                if planned is None:
                    for batch in self.gate.finish():  # the batches held back, if any
                        if self._stopping():
                            break
                        await queue.put(batch)
                    break
                for batch in self.gate.admit(planned):  # a resumed send: rows still to send
                    if self._stopping():
                        break
                    await queue.put(batch)
                next_number += len(planned)
        finally:
            failed = sys.exc_info()[0]
            if failed is not None and issubclass(failed, asyncio.CancelledError):
                pass  # cancelled with the workers (an abort): nobody waits for end markers
            elif not self.control.aborted:  # the workers are alive: tell each to finish
                if failed is not None and not self._stopping():
                    self.control.cancel(grace=None)  # the input failed: stop the send
                for _ in range(workers):
                    await queue.put(None)

    def _plan_next(self, chunks: Iterator[Conversion], first_number: int) -> list[Batch] | None:
        chunk = next(chunks, None)
        if chunk is None:
            return None
        self.recorder.reject(chunk.rejected)
        plan = plan_batches(
            chunk.payloads,
            self.config.max_events,
            self.config.max_bytes,
            positions=chunk.positions,
            first_number=first_number,
        )
        self.recorder.reject(plan.rejected)
        self.recorder.planned(plan.batches)
        return plan.batches

    def _stopping(self) -> bool:
        return self.control.cancelled.is_set() or self.builder.error is not None

    async def _worker(self, queue: asyncio.Queue[Batch | None]) -> None:
        while True:
            batch = await queue.get()
            if batch is None:
                return
            if self._stopping():
                continue  # drain: these rows stay not_sent
            if self.dry_run:
                self._dry_run(batch)
                continue
            budget = BisectBudget(self.config.max_bisect_requests)
            try:
                await self._deliver(
                    batch.number, list(batch.positions), list(batch.payloads), budget
                )
            except _AuthStop:
                continue
            except Exception as exc:  # a bug of ours must not lose rows or hang the send
                log.exception("batch %d failed inside cms_magic", batch.number)
                self.recorder.settle(
                    list(batch.positions),
                    "unknown",
                    f"unknown: internal error in cms_magic ({type(exc).__name__}: {exc}); "
                    "the request may or may not have been sent",
                    batch=batch.number,
                    attempts=1,
                )

    def _dry_run(self, batch: Batch) -> None:
        if self.preview is None:
            signer = self.config.keys.preview() or Keys(_NOT_FETCHED).preview()
            assert signer is not None
            request = self._signed_request(batch.body, signer)
            headers = dict(request.headers)
            headers["authorization"] = masked_authorization(headers["authorization"])
            if "x-cms-security-token" in headers:
                headers["x-cms-security-token"] = "<hidden>"
            text = batch.body.decode("utf-8")
            self.preview = {
                "method": "POST",
                "url": str(self.upload_url),
                "headers": headers,
                "body_preview": text if len(text) <= 2000 else text[:2000] + "...",
                "body_bytes": len(batch.body),
            }
        self.recorder.settle(batch.positions, "dry_run", None, batch=batch.number, attempts=0)
        self._report()

    # ------------------------------------------------------------------ delivery

    async def _deliver(
        self,
        number: int,
        positions: list[int],
        payloads: list[bytes],
        budget: BisectBudget,
        earlier: str | None = None,
    ) -> None:
        """Post one batch (with retries); bisect a 400 to find the offending events, split
        a 413 by bytes. ``earlier``: an ambiguous answer an enclosing request of these
        rows got (they may be stored already)."""
        body = b"[" + b",".join(payloads) + b"]"
        wire = _Wire(positions)
        try:
            final, earlier = await self._post(number, body, len(positions), earlier, wire)
        except asyncio.CancelledError:
            if wire.in_flight or wire.ambiguous or earlier is not None:
                self.recorder.settle(
                    positions,
                    "unknown",
                    "unknown: the send was aborted while this request was in flight; the "
                    "events may or may not have been delivered",
                    batch=number,
                    attempts=max(1, wire.attempts),
                )
            else:  # aborted while waiting for its quota slot: nothing went out
                self.recorder.settle(
                    positions,
                    "not_sent",
                    "not sent: the send was aborted before this request went out",
                    batch=number,
                    attempts=0,
                )
            raise
        except _Halted as halted:
            self._halt(number, positions, halted, wire, earlier)
            raise _AuthStop from None
        reason = final.decision.reason
        step = next_step(
            final.status,
            len(positions),
            budget,
            stopping=self._stopping(),
            too_large=final.verdict.outcome == "too_large",
        )
        if step in ("split", "split_bytes"):
            if step == "split":
                middle = len(positions) // 2
            else:
                middle = split_by_bytes([len(p) for p in payloads])
            await self._deliver(number, positions[:middle], payloads[:middle], budget, earlier)
            await self._deliver(number, positions[middle:], payloads[middle:], budget, earlier)
            return
        if step == "unnarrowed":
            reason = unnarrowed_reason(reason, budget.limit)
        self.recorder.settle(
            positions,
            final.status,
            reason,
            batch=number,
            attempts=final.attempts,
            request_id=final.verdict.request_id,
            possible_duplicate=final.decision.possible_duplicate,
        )
        self._report()
        if final.verdict.outcome == "auth":
            raise _AuthStop

    async def _post(
        self,
        number: int,
        body: bytes,
        events: int,
        earlier: str | None = None,
        wire: _Wire | None = None,
    ) -> tuple[_Final, str | None]:
        """Post one body: attempts, each signed again, within the retry budget.

        Returns how it ended and the first ambiguous answer its rows got (``earlier``,
        or one of these attempts'), after which they are never ``not_sent``
        (:func:`~cms_magic.sending.answers.after_ambiguous`).
        """
        config = self.config
        policy = config.retry_policy
        began = config.monotonic()
        wire = wire if wire is not None else _Wire()
        final, signer = await self._attempt(number, body, 1, wire, may_refresh=True)
        attempt = 1
        if final.expired:
            # The token expired: one refresh (shared by every request refused with the same
            # triple) and the same request signed again, outside the retry budget.
            signer = await self._refreshed(signer)
            attempt += 1
            final, signer = await self._attempt(number, body, attempt, wire, signer=signer)
        throttled = int(final.verdict.outcome == "throttled")  # of the attempts counted
        while final.decision.retryable and may_retry(
            policy, attempt, config.monotonic() - began, throttled=throttled
        ):
            if final.status == "unknown" and earlier is None:  # ambiguous: may be stored
                earlier = describe(final.verdict, final.http_status)
            wait = backoff(policy, attempt, final.verdict.retry_after, config.random())
            await config.sleep(wait)
            attempt += 1
            final, signer = await self._attempt(number, body, attempt, wire)
            throttled += final.verdict.outcome == "throttled"
        if earlier is not None:
            final.decision = after_ambiguous(final.decision, earlier)
        self.builder.add_request(
            RequestRecord(
                batch=number,
                events=events,
                bytes=len(body),
                status=final.http_status,
                code=final.verdict.code,
                msg=final.verdict.msg,
                request_id=final.verdict.request_id,
                attempts=final.attempts,
                latency_ms=final.latency_ms,
                sent_at=final.sent_at,
                outcome=final.status,
            )
        )
        self.requests += 1
        return final, earlier

    async def _refreshed(self, used: Signer) -> Signer:
        try:
            fresh = await self.config.keys.refresh(used)
        except CredentialsError as exc:
            raise _Halted.keys(exc) from None
        assert fresh is not None  # only refreshing keys mark an answer ``expired``
        return fresh

    def _halt(
        self,
        number: int,
        positions: list[int],
        halted: _Halted,
        wire: _Wire,
        earlier: str | None,
    ) -> None:
        """This batch's request cannot go out (no usable keys, or no journal record): the
        send stops, the batch's rows are ``not_sent`` (``unknown`` if an earlier attempt may
        have stored them)."""
        self.builder.stop(halted.error)
        why = halted.why
        if wire.ambiguous or earlier is not None:
            status: Status = "unknown"
            reason = f"unknown: an earlier attempt may have stored these events; then {why}"
        else:
            status, reason = "not_sent", f"not sent: {why}"
        self.recorder.settle(positions, status, reason, batch=number, attempts=wire.attempts)

    def _signed_request(self, body: bytes, signer: Signer) -> httpx.Request:
        """The upload request for ``body``, signed now (each attempt: a fresh Date)."""
        request = httpx.Request(
            "POST",
            self.upload_url,
            content=body,
            headers=_JSON_HEADERS,
            extensions={"timeout": self.timeouts},
        )
        signer.auth.sign(request)
        return request

    async def _attempt(
        self,
        number: int,
        body: bytes,
        attempt: int,
        wire: _Wire,
        *,
        signer: Signer | None = None,
        may_refresh: bool = False,
    ) -> tuple[_Final, Signer]:
        """One signed POST, and what its answer (or its failure) means. ``wire`` counts the
        attempts that started to go out (an abort before any leaves the rows ``not_sent``).
        Signed by ``signer``, else by the keys' current one; with ``may_refresh``, a refusal
        for an expired token is marked ``expired`` instead of stopping the send."""
        config = self.config
        quota = config.quota
        if quota is not None:
            delay = quota.reserve()
            if delay > 0:
                await config.sleep(delay)
        if signer is None:
            try:
                signer = await config.keys.signer()
            except CredentialsError as exc:
                raise _Halted.keys(exc) from None
        sent_at = config.clock()
        began = time.perf_counter()
        request = self._signed_request(body, signer)
        assert self.transport is not None
        try:  # journaled before it goes out: a crash from here on leaves it in flight
            self.recorder.sending(number, wire.positions, attempt, request.headers["content-md5"])
        except JournalError as exc:
            raise _Halted.journal(exc) from None
        wire.attempts += 1
        wire.in_flight = True
        try:
            response = await post(self.transport, request, total=config.timeout)
        except httpx.TransportError as exc:
            verdict, decision = decide_failure(exc, retry_ambiguous=config.retry_ambiguous)
            http_status: int | None = None
        else:
            if not self.skew_checked:
                self.skew_checked = True
                self._check_clock_skew(response.headers.get("date"))
            http_status = response.status_code
            verdict = classify(http_status, response.content, response.headers, now=sent_at)
            decision = decide(verdict, http_status, retry_ambiguous=config.retry_ambiguous)
            if isinstance(quota, SharedBucket):  # the adaptive rate learns from each answer
                quota.on_answer(verdict.outcome == "throttled")
        wire.in_flight = False  # answered (or failed): an abort from here on is not in flight
        # Server text (and exception text, which may quote it) is scrubbed here, once:
        # every record, reason, error, summary and log line below is made from it.
        secrets = answer_secrets(signer.credentials, request.headers.get("authorization"))
        verdict, decision = scrub_answer(verdict, decision, secrets)
        shown = decision.reason if http_status is None else verdict.outcome
        log.debug("batch %d attempt %d: %s", number, attempt, shown)
        expired = (
            verdict.outcome == "auth"
            and may_refresh
            and config.keys.refreshing
            and is_token_expired(verdict.code, verdict.msg)
        )
        if verdict.outcome == "auth" and not expired and self.builder.error is None:
            self.builder.stop(auth_error(verdict, signer.credentials, http_status or 403))
        if decision.error:
            self.errors += 1
        latency = (time.perf_counter() - began) * 1000
        final = _Final(decision, verdict, http_status, attempt, latency, sent_at, expired)
        if final.status == "unknown":
            wire.ambiguous = True  # this attempt may have stored the events
        return final, signer

    def _check_clock_skew(self, server_date: str | None) -> None:
        """Warn once per endpoint when the server's clock and ours differ by over 5 minutes."""
        url = self.config.url
        if server_date is None or url in _skew_warned:
            return
        message = clock_skew_warning(url, server_date, self.config.clock())
        if message is None or not _skew_warned.add(url, True):
            return
        self.warnings.append(message)
        log.warning("%s", message)

    # ------------------------------------------------------------------ progress

    def _report(self, finished: bool = False) -> None:
        counts = self.builder.counts()
        pending = 0 if finished else self.builder.pending()
        config = self.config
        quota_rate = config.quota.rate * config.max_events if config.quota is not None else 0.0
        progress = Progress(
            total=self.builder.total,
            done=self.builder.total - counts["not_sent"],
            accepted=counts["accepted"],
            rejected=counts["rejected"],
            not_sent=counts["not_sent"] - pending,
            unknown=counts["unknown"],
            requests=self.requests,
            errors=self.errors,
            elapsed=time.perf_counter() - self.started,
            finished=finished,
            pending=pending,
            max_rate=max(0.0, quota_rate),
        )
        self.control.progress = progress
        for callback in self.callbacks:
            try:
                callback(progress)
            except Exception:  # a broken renderer must not break the send
                log.exception("progress callback failed")
