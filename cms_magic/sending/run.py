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
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

import httpx

from cms_magic import _state
from cms_magic.batching import Batch, plan_batches
from cms_magic.errors import (
    ConfigError,
    JournalError,
    JournalMismatchError,
    SendError,
)
from cms_magic.events.convert import Conversion
from cms_magic.progress import Progress, ProgressCallback
from cms_magic.results import Resender, ResendSpec, SendResult
from cms_magic.sending._transport import http_transport
from cms_magic.sending.delivery import (
    NOT_FETCHED,
    AuthStop,
    Delivery,
    RunConfig,
    masked_authorization,
)
from cms_magic.sending.inputs import prepare
from cms_magic.sending.jobs import Control
from cms_magic.sending.keys import Keys
from cms_magic.sending.outcomes import ResultBuilder
from cms_magic.sending.quota import lease_for
from cms_magic.sending.recorder import Gate, Recorder, stopped_by

if TYPE_CHECKING:
    pass

__all__ = ["Run", "RunConfig", "masked_authorization"]

log = logging.getLogger("cms_magic")


# Accept-Encoding: identity is set again by the transport; here it shows in a dry run's preview.
_JSON_HEADERS = {"Content-Type": "application/json", "Accept-Encoding": "identity"}

#: The endpoints already warned about a skewed clock (one warning each per process).
_skew_warned: _state.Registry[str, bool] = _state.registry("clock skew warned")


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
        self.delivery = Delivery(
            config, self.recorder, stopping=self._stopping, report=self._report
        )
        self.started = 0.0
        self.preview: dict[str, Any] | None = None

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
                self.delivery.transport = transport
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
        self.delivery.transport = None
        self.recorder.close()
        result = self.builder.build(
            elapsed=time.perf_counter() - self.started,
            request=self.request,
            endpoint=config.url,
            cancelled=self.control.cancelled.is_set() and self.builder.error is None,
        )
        result.preview = self.preview
        result.warnings = list(self.delivery.warnings)
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
            try:
                await self.delivery.deliver(batch.number, batch.positions, batch.payloads)
            except AuthStop:
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
            signer = self.config.keys.preview() or Keys(NOT_FETCHED).preview()
            assert signer is not None
            request = self.delivery.signed_request(batch.body, signer)
            headers = dict(request.headers)
            headers["authorization"] = masked_authorization(headers["authorization"])
            if "x-cms-security-token" in headers:
                headers["x-cms-security-token"] = "<hidden>"
            text = batch.body.decode("utf-8")
            self.preview = {
                "method": "POST",
                "url": str(self.delivery.upload_url),
                "headers": headers,
                "body_preview": text if len(text) <= 2000 else text[:2000] + "...",
                "body_bytes": len(batch.body),
            }
        self.recorder.settle(batch.positions, "dry_run", None, batch=batch.number, attempts=0)
        self._report()

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
            requests=self.delivery.requests,
            errors=self.delivery.errors,
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
