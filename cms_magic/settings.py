"""The send settings' defaults and their checks, and the environment variables read.

One fact, one place: the magic's traits, the command line's argparse, the
panel's controls and :class:`cms_magic.Client` all take their defaults from
here (through :mod:`cms_magic.ui.options` for the skins), and every check
raises a :class:`~cms_magic.errors.ConfigError` naming the option, the rule and
the value, so each skin can word it as a flag, a label or a keyword.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final, Generic, TypeVar

from cms_magic.errors import ConfigError
from cms_magic.protocol import DEFAULT_QPS

__all__ = [
    "DEFAULT_CHUNK_ROWS",
    "DEFAULT_CONCURRENCY",
    "DEFAULT_MAX_ATTEMPTS",
    "DEFAULT_MAX_BISECT_REQUESTS",
    "DEFAULT_MAX_TIME",
    "DEFAULT_METADATA_URL",
    "DEFAULT_QPS",
    "DEFAULT_TIMEOUT",
    "ENV_ENDPOINT",
    "ENV_METADATA_URL",
    "ENV_METADATA_V1",
    "ENV_REGION",
    "ENV_STS_ENDPOINT",
    "ENV_STS_REGION",
    "ENV_STS_VPC",
    "Setting",
    "check_concurrency",
    "check_count",
    "check_qps",
    "check_seconds",
]

#: Requests in flight at most, per send.
DEFAULT_CONCURRENCY: Final = 4
#: Seconds one attempt may take (connect, write and read together).
DEFAULT_TIMEOUT: Final = 10.0
#: Attempts per request, the first one included.
DEFAULT_MAX_ATTEMPTS: Final = 5
#: Seconds one request may take over all its attempts and waits.
DEFAULT_MAX_TIME: Final = 60.0
#: Requests one rejected batch may spend on bisection to find its bad events.
DEFAULT_MAX_BISECT_REQUESTS: Final = 32
#: Rows converted and batched at a time (memory stays flat in the frame's size).
DEFAULT_CHUNK_ROWS: Final = 10_000

#: The endpoint (a URL, a region id, ``public`` or ``local``), as the magic and CLI read it.
ENV_ENDPOINT: Final = "CMS_MAGIC_ENDPOINT"
#: The region id, as Alibaba Cloud's SDKs read it.
ENV_REGION: Final = "ALIBABA_CLOUD_REGION_ID"

#: The STS endpoint (a host or a URL) for AssumeRole / AssumeRoleWithOIDC; tests point it
#: at loopback. Unset: ``sts.<region>.aliyuncs.com`` (see :mod:`cms_magic.credentials.chain`).
ENV_STS_ENDPOINT: Final = "CMS_MAGIC_STS_ENDPOINT"
#: STS's region, as the official credentials library reads it (before ``ENV_REGION``).
ENV_STS_REGION: Final = "ALIBABA_CLOUD_STS_REGION"
#: ``true``: STS's VPC endpoint ``sts-vpc.<region>.aliyuncs.com`` (the credentials library's).
ENV_STS_VPC: Final = "ALIBABA_CLOUD_VPC_ENDPOINT_ENABLED"
#: The instance metadata's base URL, used only when an ECS RAM role was asked for.
ENV_METADATA_URL: Final = "CMS_MAGIC_METADATA_URL"
#: The instance metadata's address on ECS (only ever contacted when the role was asked for).
DEFAULT_METADATA_URL: Final = "http://100.100.100.200"
#: ``1``/``true``: the metadata may be read without an IMDSv2 token (IMDSv1). Default: no.
ENV_METADATA_V1: Final = "CMS_MAGIC_METADATA_V1"

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Setting(Generic[T]):
    """A setting's value and where it came from (``"--qps"``, ``"%config"``, ``"default"``...)."""

    value: T
    source: str

    def __str__(self) -> str:
        return f"{self.value!r} ({self.source})"


def check_qps(value: float, option: str = "qps") -> float:
    """Requests per second: a finite number >= 0 (0 turns the client-side limit off)."""
    number = _number(value, option)
    if not math.isfinite(number) or number < 0:
        raise ConfigError(
            "must be a number >= 0 (0 = no client-side limit)", option=option, value=value
        )
    return number


def check_seconds(value: float, option: str) -> float:
    """A duration: a finite number of seconds > 0."""
    number = _number(value, option)
    if not math.isfinite(number) or number <= 0:
        raise ConfigError("must be a number of seconds > 0", option=option, value=value)
    return number


def check_count(value: int, option: str, *, minimum: int = 1) -> int:
    """A whole number >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"must be a whole number >= {minimum}", option=option, value=value)
    if value < minimum:
        raise ConfigError(f"must be >= {minimum}", option=option, value=value)
    return value


def check_concurrency(value: int, option: str = "concurrency") -> int:
    """Requests in flight: a whole number >= 1."""
    return check_count(value, option)


def _number(value: object, option: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError("must be a number", option=option, value=value)
    return float(value)
