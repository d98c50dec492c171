"""Delivering one batch: quota slot, keys, journal record, POST, answer, retries, bisection.

:class:`Delivery` is the per-request half of a :class:`~cms_magic.sending.run.Run`: given a
batch's rows and encoded events, it takes a slot of the quota, gets the signer of one whole
triple (:mod:`~cms_magic.sending.keys`), records the request in the journal before it goes out
(:mod:`~cms_magic.sending.recorder`), posts, reads what the answer means
(:mod:`~cms_magic.sending.answers`), retries within the budget
(:mod:`~cms_magic.sending.retry`; throttled attempts count against the time only), refreshes
the keys once when the service says the token expired, bisects a rejected batch and splits a
too-large one (:mod:`~cms_magic.sending.bisection`), and settles the rows. Every decision is a
pure function of another module; this one only orders them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import httpx

from cms_magic import _state
from cms_magic.credentials.static import Credentials, mask
from cms_magic.errors import CredentialsError, JournalError, SendError
from cms_magic.protocol import UPLOAD_PATH
from cms_magic.results import RequestRecord, Status
from cms_magic.sending._transport import post
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
from cms_magic.sending.keys import Keys, Signer, is_token_expired
from cms_magic.sending.quota import SharedBucket, TokenBucket
from cms_magic.sending.recorder import stopped_by
from cms_magic.sending.retry import RetryPolicy, backoff, may_retry

if TYPE_CHECKING:
    from cms_magic.sending.journal_store import JournalTarget
    from cms_magic.sending.outcomes import ResultBuilder
    from cms_magic.sending.recorder import Recorder

__all__ = ["NOT_FETCHED", "AuthStop", "Delivery", "RunConfig", "Sleep", "masked_authorization"]

log = logging.getLogger("cms_magic")

# Accept-Encoding: identity is set again by the transport; here it shows in a dry run's preview.
_JSON_HEADERS = {"Content-Type": "application/json", "Accept-Encoding": "identity"}

Sleep = Callable[[float], Awaitable[None]]


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


#: The endpoints already warned about a skewed clock (one warning each per process).
_skew_warned: _state.Registry[str, bool] = _state.registry("clock skew warned")


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


class AuthStop(Exception):
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
NOT_FETCHED = Credentials("STS.not-fetched-in-a-dry-run", "-", "-", source="dry run")


def masked_authorization(value: str) -> str:
    """``LTAI****abcd:<signature>``: the key id masked, the signature left out (previews)."""
    key_id, _, _ = value.partition(":")
    return f"{mask(key_id)}:<signature>"


class Delivery:
    """Delivers a run's batches (see the module). ``stopping`` says whether the send is
    stopping (cancelled, or stopped on an error); ``report`` updates the progress."""

    def __init__(
        self,
        config: RunConfig,
        recorder: Recorder,
        *,
        stopping: Callable[[], bool],
        report: Callable[[], None],
    ) -> None:
        self.config = config
        self.recorder = recorder
        self.builder: ResultBuilder = recorder.builder
        self._stopping = stopping
        self._report = report
        self.requests = 0
        self.errors = 0
        self.warnings: list[str] = []
        self.upload_url = httpx.URL(config.url + UPLOAD_PATH)  # parsed once per send
        self.timeouts = httpx.Timeout(config.timeout).as_dict()
        self.skew_checked = False  # the server's Date is compared with ours once per send
        self.transport: httpx.AsyncBaseTransport | None = None

    async def deliver(
        self, number: int, positions: Sequence[int], payloads: Sequence[bytes]
    ) -> None:
        """Post one batch with retries, bisecting and splitting as its answers ask; its
        rows are settled on the way out (raises :class:`AuthStop` once the credentials
        are refused or no keys are left: the worker stops delivering)."""
        budget = BisectBudget(self.config.max_bisect_requests)
        await self._deliver(number, list(positions), list(payloads), budget)

    def signed_request(self, body: bytes, signer: Signer) -> httpx.Request:
        """The upload request for ``body``, signed now (a dry run's preview)."""
        return self._signed_request(body, signer)

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
            raise AuthStop from None
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
            raise AuthStop

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
