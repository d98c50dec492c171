"""What the panel's result buttons would do now: Retry failed and Confirm, decided purely.

:func:`retry_plan` says which rows *Retry failed* resends and where (the target and
credentials shown now), or why it is not offered; :func:`confirm_plan` how many rows
*Confirm* reads back (``unknown`` ones and possible duplicates), or why not. Both are
pure functions of the latest result and the panel's state, so the panel only draws
their answers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from cms_magic.errors import AuthError
from cms_magic.identity import AnyCredentials, key_label

if TYPE_CHECKING:
    from cms_magic.results import SendResult
    from cms_magic.targets import Target

__all__ = ["ConfirmPlan", "RetryPlan", "Sending", "confirm_plan", "confirmed_note", "retry_plan"]


class Sending(NamedTuple):
    """Where a send went (or a retry or a read would go), and with which credentials."""

    target: Target
    url: str
    credentials: AnyCredentials


class RetryPlan(NamedTuple):
    """A retry the panel offers: these rows, to the target and credentials shown now."""

    positions: np.ndarray[Any, Any]
    to: Sending


class ConfirmPlan(NamedTuple):
    """A read-back the panel offers: these rows of the latest result."""

    positions: np.ndarray[Any, Any]


def retry_plan(
    result: SendResult | None, *, busy: bool, now: Sending | None, sent: Sending | None
) -> RetryPlan | str:
    """The retry offered now, or why none is (empty: nothing to say).

    The rows not sent (never ``unknown`` rows, which may have arrived: *Confirm* reads
    them back first; nor ``rejected`` ones, which would be rejected again), to ``now``;
    refused when the service refused the credentials at ``sent`` and nothing changed.
    """
    if result is None or busy:
        return ""
    positions = np.flatnonzero(result.retry_mask())
    if not len(positions):
        rejected = result.counts()["rejected"]
        if not rejected:
            return ""
        return (
            f"{rejected:,} rejected row{'s are' if rejected != 1 else ' is'} not retried: "
            "sent as they are, they would be rejected again; fix them (Failed rows says "
            "why) and send them"
        )
    if now is None:
        return "to retry, choose a target the panel can send to, with credentials (above)"
    refused = isinstance(result.error, AuthError)
    if refused and sent is not None and (now.url, now.credentials) == (sent.url, sent.credentials):
        return (
            f"the service refused {key_label(sent.credentials)} at {sent.url}: correct the "
            "credentials (or the target) above, then retry"
        )
    return RetryPlan(positions, now)


def confirm_plan(result: SendResult | None, *, busy: bool) -> ConfirmPlan | None:
    """The rows *Confirm* would read back (``unknown`` rows and possible duplicates), or
    None when there are none or something is running."""
    if result is None or busy:
        return None
    positions = result.confirm_positions()
    return ConfirmPlan(positions) if len(positions) else None


def confirmed_note(before: SendResult, after: SendResult, looked_up: int) -> str:
    """What a read-back found, in counts: stored, not stored (for Retry failed), still
    unknown (with the first reason, e.g. a missing RAM permission)."""
    old, new = before.counts(), after.counts()
    stored = new["accepted"] - old["accepted"]
    not_stored = new["not_sent"] - old["not_sent"]
    unknown = new["unknown"]
    parts = [f"read back {looked_up:,} row{'s' if looked_up != 1 else ''}"]
    parts.append(f"{stored:,} stored (accepted)")
    if not_stored:
        parts.append(f"{not_stored:,} not stored: Retry failed resends them")
    else:
        parts.append("0 not stored")
    duplicates = int(after.events["possible_duplicate"].sum())
    if duplicates:
        parts.append(f"{duplicates:,} held more than once")
    if unknown:
        events = after.events
        reason = events.loc[events["status"] == "unknown", "reason"].iloc[0]
        parts.append(f"{unknown:,} still unknown ({reason})")
    return "; ".join(parts)
