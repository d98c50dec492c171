"""Fault injection: which faults, at which rates (:class:`Faults`), and how a request picks one.

A request draws one number before it is checked and, if it is accepted, one
after; :meth:`Faults.before` and :meth:`Faults.after` turn a draw into the fault
it falls on (pure functions, tested without an emulator). :class:`FaultPicker`
holds the faults in force and the seeded random sequence the draws come from.
"""

from __future__ import annotations

import math
import random
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from cms_magic.errors import ConfigError

__all__ = ["MALFORMED_BODIES", "FaultPicker", "Faults", "malformed_body"]

#: Faults acted out before a request is checked (nothing is stored).
BeforeFault = Literal["reset_before", "error_500", "error_503"]
#: Faults acted out after a request was accepted (its events ARE stored).
AfterFault = Literal["reset_after", "delay", "malformed"]

_MAX_DELAY_SECONDS: Final = 600

#: What a ``malformed`` answer's body is: none of them is the service's JSON.
MALFORMED_BODIES: Final = (
    b'{"code":"200","msg":',
    b"<html><body>502 Bad Gateway</body></html>",
    b"",
    b'{"status":"ok"}',
)


@dataclass(frozen=True)
class Faults:
    """Faults injected into upload requests, each at a rate from 0 to 1, reproducibly.

    Before a request is processed (nothing stored): ``reset_before`` drops the
    connection without an answer, ``error_500`` and ``error_503`` answer with
    that status. After a request was accepted (its events ARE stored):
    ``reset_after`` drops the connection without an answer, ``delay`` holds the
    answer back ``delay_seconds`` (past a client's timeout), ``malformed``
    answers 200 with a body that is not the service's JSON. Events whose
    content contains ``poison_marker`` make their request a 400. Decisions come
    from ``random.Random(seed)``, one draw before and one after each request.
    Throttling beyond the quota is the emulator's ``qps``.
    """

    seed: int = 0
    reset_before: float = 0.0
    error_500: float = 0.0
    error_503: float = 0.0
    reset_after: float = 0.0
    delay: float = 0.0
    delay_seconds: float = 5.0
    malformed: float = 0.0
    poison_marker: str | None = None

    def __post_init__(self) -> None:
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ConfigError("must be an integer", option="seed", value=self.seed)
        rates = {
            "reset_before": self.reset_before,
            "error_500": self.error_500,
            "error_503": self.error_503,
            "reset_after": self.reset_after,
            "delay": self.delay,
            "malformed": self.malformed,
        }
        for name, rate in rates.items():
            if not _is_number(rate) or not 0 <= rate <= 1:
                raise ConfigError("must be a rate from 0 to 1", option=name, value=rate)
        for names in (
            ("reset_before", "error_500", "error_503"),
            ("reset_after", "delay", "malformed"),
        ):
            total = sum(rates[name] for name in names)
            if total > 1:
                raise ConfigError(
                    f"{' + '.join(names)} must not exceed 1", hint=f"they add up to {total:g}"
                )
        if not _is_number(self.delay_seconds) or not 0 <= self.delay_seconds <= _MAX_DELAY_SECONDS:
            raise ConfigError(
                f"must be 0..{_MAX_DELAY_SECONDS} seconds",
                option="delay_seconds",
                value=self.delay_seconds,
            )
        if self.poison_marker is not None and (
            not isinstance(self.poison_marker, str) or not self.poison_marker
        ):
            raise ConfigError(
                "must be a non-empty string or None",
                option="poison_marker",
                value=self.poison_marker,
            )

    @classmethod
    def from_dict(cls, data: object) -> Faults:
        """Faults from a JSON object (the body of ``POST /_emulator/faults``)."""
        if not isinstance(data, Mapping):
            raise ConfigError(
                "faults must be a JSON object of fault names to rates",
                hint=f"known: {', '.join(sorted(cls.__dataclass_fields__))}",
            )
        known = set(cls.__dataclass_fields__)
        unknown = sorted(str(name) for name in set(data) - known)
        if unknown:
            raise ConfigError(
                f"unknown fault(s) {', '.join(unknown)}", hint=f"known: {', '.join(sorted(known))}"
            )
        return cls(**{str(name): value for name, value in data.items()})

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}

    def before(self, draw: float) -> BeforeFault | None:
        """The fault a request meets before it is checked, for a draw in [0, 1)."""
        if draw < self.reset_before:
            return "reset_before"
        if draw < self.reset_before + self.error_500:
            return "error_500"
        if draw < self.reset_before + self.error_500 + self.error_503:
            return "error_503"
        return None

    def after(self, draw: float) -> AfterFault | None:
        """The fault an accepted request's answer meets, for a draw in [0, 1)."""
        if draw < self.reset_after:
            return "reset_after"
        if draw < self.reset_after + self.delay:
            return "delay"
        if draw < self.reset_after + self.delay + self.malformed:
            return "malformed"
        return None


def malformed_body(draw: float) -> bytes:
    """Which of :data:`MALFORMED_BODIES` a ``malformed`` answer carries, from its draw."""
    return MALFORMED_BODIES[int(draw * 1e6) % len(MALFORMED_BODIES)]


class FaultPicker:
    """The faults in force and the seeded sequence of draws; thread-safe."""

    __slots__ = ("_faults", "_lock", "_rng")

    def __init__(self, faults: Faults | None = None) -> None:
        self._lock = threading.Lock()
        self._faults = Faults()
        self._rng = random.Random(0)  # noqa: S311 - reproducible fault draws, not security
        self.set(faults or Faults())

    @property
    def faults(self) -> Faults:
        return self._faults

    def set(self, faults: Faults) -> None:
        """Inject these faults from now on; the random sequence restarts from their seed."""
        with self._lock:
            self._faults = faults
            self._rng = random.Random(faults.seed)  # noqa: S311 - reproducible fault draws

    def draw(self) -> float:
        """The next number in [0, 1) of the sequence."""
        with self._lock:
            return self._rng.random()


def _is_number(value: object) -> bool:
    return (
        not isinstance(value, bool)
        and isinstance(value, int | float)
        and not (isinstance(value, float) and math.isnan(value))
    )
