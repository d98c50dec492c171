"""A SendResult made straight from row status codes, for tests of what results say."""

from __future__ import annotations

from typing import Any

import numpy as np

from cms_magic.results import ResendSpec, SendResult


class NoResender:
    """A sender for a result's ResendSpec that must never be asked to resend."""

    def resend(self, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError("not called")


def make_result(
    *codes: int, elapsed: float = 0.5, resender: bool = False, **fields: Any
) -> SendResult:
    """A result whose rows have the status ``codes`` (see cms_magic.results.STATUSES);
    ``resender``: it holds a ResendSpec (so it can say how to resume)."""
    n = len(codes)
    request = ResendSpec(list(range(n)), {}, False, NoResender()) if resender else None
    return SendResult(
        status=np.asarray(codes, dtype=np.uint8),
        batch=np.zeros(n, dtype=np.int32),
        attempts=np.ones(n, dtype=np.uint16),
        reasons={},
        request_index=np.full(n, -1, dtype=np.int32),
        request_ids=[],
        index=None,
        request_records=[],
        elapsed=elapsed,
        request=request,
        **fields,
    )
