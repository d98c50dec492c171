"""Where a run's outcomes go: its result builder and, for a journaled send, its journal.

:class:`Recorder` is the one way a :class:`~cms_magic.sending.run.Run` settles rows: every
outcome goes to the :class:`~cms_magic.sending.outcomes.ResultBuilder` and, when the send has
a journal (:mod:`cms_magic.sending.journal`), into it too, so a crash at any instant leaves
a file that knows which rows were accepted, which were in flight and which were never sent.
:meth:`Recorder.sending` is written just before each request goes out.

:class:`Gate` decides which planned batches a resumed send queues: only the rows its
journal says were never sent, and none before the journal has checked that the data is
the same as the data it was made for (:attr:`Journal.verified
<cms_magic.sending.journal.Journal.verified>`); batches planned before that are held and
released once it is.

A journal that cannot be written stops the send (:class:`~cms_magic.errors.SendError`,
``option="journal"``) the way refused credentials do: the rows not sent stay
``not_sent``; a request whose "sending" record failed is never posted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from cms_magic.errors import JournalError, SendError

if TYPE_CHECKING:
    from cms_magic.batching import Batch
    from cms_magic.results import Status
    from cms_magic.sending.journal import Fingerprinter, Journal
    from cms_magic.sending.outcomes import ResultBuilder

__all__ = ["Gate", "Recorder"]


class Recorder:
    """The result builder of a run, and its journal when it has one (see the module)."""

    __slots__ = ("builder", "fingerprint", "journal")

    def __init__(
        self,
        builder: ResultBuilder,
        journal: Journal | None = None,
        fingerprint: Fingerprinter | None = None,
    ) -> None:
        self.builder = builder
        self.journal = journal
        self.fingerprint = fingerprint

    def settle(
        self,
        positions: Sequence[int],
        status: Status,
        reason: str | None,
        *,
        batch: int,
        attempts: int,
        request_id: str | None = None,
        possible_duplicate: bool = False,
    ) -> None:
        """Settle rows in the result, then record them in the journal (never a dry run's)."""
        self.builder.settle(
            positions,
            status,
            reason,
            batch=batch,
            attempts=attempts,
            request_id=request_id,
            possible_duplicate=possible_duplicate,
        )
        journal = self.journal
        if journal is None or status == "dry_run" or not len(positions):
            return
        try:
            journal.settled(positions, status, reason, batch=batch, request_id=request_id)
        except JournalError as exc:
            self.failed(exc)

    def reject(self, rejected: Mapping[int, str]) -> None:
        """Rows that cannot become a request, with their reasons."""
        self.builder.reject(dict(rejected))
        if self.journal is not None and rejected:
            self.journal.rejected(rejected)  # a failure here fails the producer: it stops

    def planned(self, batches: Sequence[Batch]) -> None:
        """Batches just planned (the producer's thread): their prints into the journal,
        which checks them against a resumed journal's (raises JournalMismatchError)."""
        if self.journal is not None and self.fingerprint is not None:
            self.journal.plan(self.fingerprint.prints(batches))

    def sending(self, number: int, positions: Sequence[int], attempt: int, md5: str) -> None:
        """Written just before a request goes out (raises JournalError: do not send)."""
        if self.journal is not None:
            self.journal.sending(number, positions, attempt=attempt, digest=bytes.fromhex(md5))

    def failed(self, exc: JournalError) -> None:
        """The journal could not be written: the send stops with why."""
        self.builder.stop(stopped_by(exc))

    def close(self) -> None:
        if self.journal is not None:
            self.journal.close()


def stopped_by(exc: JournalError) -> SendError:
    """The error that stops a send whose journal failed."""
    return SendError(
        f"the journal could not be written, so the send stopped ({exc}); the rows not "
        "sent are not_sent: run the same send with the same journal to resume",
        option="journal",
    )


class Gate:
    """Which planned batches a send queues (see the module)."""

    __slots__ = ("_held", "_journal", "_state")

    def __init__(self, journal: Journal | None) -> None:
        self._journal = journal
        self._state = journal.initial if journal is not None and journal.resumed else None
        self._held: list[Batch] = []

    def admit(self, batches: Sequence[Batch]) -> list[Batch]:
        """The batches to queue now: the rows still to send, once the data is verified."""
        state, journal = self._state, self._journal
        out: list[Batch] = []
        for planned in batches:
            batch = planned if state is None else state.to_send(planned)
            if batch is None:
                continue
            if journal is not None and not journal.verified:
                self._held.append(batch)
                continue
            out.extend(self._held)
            self._held.clear()
            out.append(batch)
        if self._held and (journal is None or journal.verified):
            out = [*self._held, *out]
            self._held.clear()
        return out

    def finish(self) -> list[Batch]:
        """After the last chunk: the journal knew no more batches (else it raises), and the
        batches still held are queued."""
        if self._journal is not None:
            self._journal.end_of_plan()
        out, self._held = self._held, []
        return out
