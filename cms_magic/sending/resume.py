"""Resuming a journaled send: the journal's path, and confirming the rows in flight.

A send run again with the same journal resumes (:mod:`cms_magic.sending.journal`): its
accepted rows are skipped, its never-sent rows are sent, and rows whose request was in
flight when the first run stopped (killed, say) are ``unknown``: they may or may not be
stored. With ``confirm=True`` they are looked up first (:func:`confirm_in_flight`): the
read-back (:func:`cms_magic.confirm.confirm`) finds the ones the service holds, which
become ``accepted`` in the journal, and the ones it does not, which become ``not_sent``
there, so the run that follows sends exactly those. Rows the read-back cannot decide stay
``unknown`` (never resent blindly).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Protocol, cast

import numpy as np

from cms_magic.errors import ConfigError

if TYPE_CHECKING:
    from cms_magic.confirm import Lookup
    from cms_magic.sending.journal_store import JournalTarget


class Client(Protocol):
    """What resuming needs of a :class:`~cms_magic.sending.client.Client`."""

    url: str
    chunk_rows: int
    max_events: int
    max_bytes: int

    def journal_target(self) -> JournalTarget: ...

    def lookup(self) -> Lookup: ...


__all__ = ["check_journal_path", "confirm_in_flight"]


def check_journal_path(journal: object) -> str:
    """``journal`` as an absolute path, or a ConfigError naming it (not a folder)."""
    if isinstance(journal, bool) or not isinstance(journal, str | os.PathLike):
        raise ConfigError("must be a file path", option="journal", value=journal)
    text = os.fspath(journal)
    if not isinstance(text, str) or not text.strip():
        raise ConfigError("must be a file path", option="journal", value=journal)
    path = os.path.abspath(os.path.expanduser(text))
    if os.path.isdir(path):
        raise ConfigError(
            "is a folder; give a file path for the journal", option="journal", value=text
        )
    return path


def confirm_in_flight(
    client: Client,
    data: Any,
    mapping: dict[str, Any],
    journal: str | os.PathLike[str],
    *,
    wait: float | None = None,
) -> dict[str, int]:
    """Look up the rows a journal has ``unknown`` and record what the service holds (see
    the module); how many rows were confirmed, not stored and left unconfirmed. A journal
    that does not exist yet (a first run) has nothing to confirm."""
    from cms_magic.confirm import DEFAULT_WAIT, confirm
    from cms_magic.results import UNKNOWN, RequestRecord, ResendSpec, SendResult
    from cms_magic.sending.inputs import check_mapping, prepare
    from cms_magic.sending.journal import Fingerprinter, Journal

    tally = {"confirmed": 0, "not_stored": 0, "unconfirmed": 0}
    path = check_journal_path(journal)
    if not os.path.exists(path) or os.path.getsize(path) == 0:
        return tally
    checked = check_mapping(mapping)
    total = prepare(data, checked, chunk_rows=client.chunk_rows).total  # lazy: counts rows
    fingerprint = Fingerprinter(
        chunk_rows=client.chunk_rows, max_events=client.max_events, max_bytes=client.max_bytes
    )
    opened = Journal.open(
        path, fingerprint=fingerprint, target=client.journal_target(), total=total
    )
    try:
        state = opened.initial
        unknown = np.flatnonzero(state.status == UNKNOWN)
        if not len(unknown):
            return tally
        # The rows' requests went out at the latest when the journal was last written: a
        # row the service stamped is looked for around that time.
        last = RequestRecord(
            batch=-1,
            events=0,
            bytes=0,
            status=None,
            code=None,
            msg="",
            request_id=None,
            attempts=0,
            latency_ms=0.0,
            sent_at=state.updated.timestamp(),
            outcome="unknown",
        )
        view = SendResult(
            status=state.status.copy(),
            batch=np.full(total, -1, dtype=np.int32),
            attempts=np.zeros(total, dtype=np.uint16),
            reasons=dict(state.reasons),
            request_index=np.full(total, -1, dtype=np.int32),
            request_ids=[],
            index=None,
            request_records=[last],
            elapsed=0.0,
            request=ResendSpec(data, checked, False, cast(Any, client)),  # a Client resends
            endpoint=client.url,
        )
        found = confirm(
            view,
            client.lookup(),
            positions=unknown,
            wait=DEFAULT_WAIT if wait is None else wait,
        )
        groups: dict[str, list[int]] = {"confirmed": [], "not_stored": [], "unconfirmed": []}
        for position, verdict in zip(found.positions.tolist(), found.verdicts, strict=True):
            groups[verdict].append(position)
        if groups["confirmed"]:
            opened.settled(
                groups["confirmed"],
                "accepted",
                None,
                batch=-1,
            )
        if groups["not_stored"]:
            opened.settled(
                groups["not_stored"],
                "not_sent",
                "not stored (confirmed by read-back after a resume): sent again",
                batch=-1,
            )
        for verdict, positions in groups.items():
            tally[verdict] = len(positions)
        return tally
    finally:
        opened.close()
