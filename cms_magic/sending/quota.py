"""Token buckets: the rate of requests, and the quota every send of a key shares.

:class:`TokenBucket` is thread-safe with an injected clock. One class serves
both sides: the sender reserves a slot before each request (and waits the
returned delay), the emulator asks whether a request may pass. ``rate`` tokens
are added per second up to ``capacity``; each request takes one.

:func:`shared_quota` is the process-wide bucket of one AccessKey (a
:class:`SharedBucket`), kept in :mod:`cms_magic._state` (so ``_state.reset()``
forgets it). Every send using the key holds a **lease** on it for as long as it
runs (:func:`lease`, :func:`lease_for`): the bucket runs at the lowest ``qps``
among the leases held, so sends at qps 20 and 19 on one key run at 19
together, not at 20 (or 39). A user joining never raises the rate, and it is
never reset while in use: only when the slower send lets go does it return to
the lowest rate of the users left. A :class:`SharedBucket` also lowers its rate
after throttled answers (:meth:`SharedBucket.on_answer`, the adaptive rate of
:mod:`cms_magic.sending.adaptive`) and probes back up.

Issue 16: one quota for every process. :func:`quota_factory` reads the ``quota=``
setting: ``"host"`` (the default: :mod:`cms_magic.sending.hostquota`, every process of
the user on this machine), ``"process"`` (:func:`shared_quota`), ``"off"``,
``"redis://host:port/db"`` (:mod:`cms_magic.sending.redisquota`, a fleet) or a
:class:`TokenBucket` used as is. The bucket classes live in
:mod:`cms_magic.sending.buckets` (re-exported here).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Final

from cms_magic import _state
from cms_magic.errors import ConfigError
from cms_magic.protocol import DEFAULT_QPS
from cms_magic.sending.buckets import SharedBucket, TokenBucket

__all__ = [
    "DEFAULT_QUOTA",
    "QUOTA_MODES",
    "QuotaFactory",
    "SharedBucket",
    "TokenBucket",
    "lease",
    "lease_for",
    "quota_factory",
    "resolve_quota",
    "shared_quota",
]


_quotas: _state.Registry[str, SharedBucket] = _state.registry("shared quotas")


def shared_quota(access_key_id: str, qps: float = DEFAULT_QPS) -> SharedBucket:
    """The process-wide token bucket of one AccessKey (one account's quota).

    Every send in this process with that key takes its request slots here, so
    two sends at once (a magic and the panel, say) share the rate. Requests
    are spaced ``1/qps`` apart (capacity 1: no bursts), which never exceeds
    the service's per-second limit. While sends hold leases on the bucket it
    runs at the lowest ``qps`` among them and asking does not change it;
    asking with another ``qps`` when no one uses it sets its rate.
    """
    bucket = _quotas.get_or_create(access_key_id, lambda: SharedBucket(qps))
    bucket.ask(qps)
    return bucket


def lease(
    access_key_id: str, qps: float = DEFAULT_QPS
) -> contextlib.AbstractContextManager[SharedBucket]:
    """Hold the key's shared bucket at no more than ``qps`` for a ``with`` block (a send's
    whole run): ``with lease(key, 19) as bucket: ...``."""
    return shared_quota(access_key_id, qps).lease(qps)


def lease_for(bucket: TokenBucket | None, qps: float) -> contextlib.AbstractContextManager[object]:
    """A run's lease on its quota: on a :class:`SharedBucket`, :meth:`SharedBucket.lease`
    at ``qps``; nothing for no bucket or a private one (an injected ``quota=``)."""
    if isinstance(bucket, SharedBucket):
        return bucket.lease(qps)
    return contextlib.nullcontext()


# ---------------------------------------------------------------------- the quota= spec

#: What a bucket is made from: ``factory(quota_key, qps)`` gives the bucket (None: no limit).
QuotaFactory = Callable[[str, float], "TokenBucket | None"]
#: The named modes of ``quota=``.
QUOTA_MODES: Final = ("host", "process", "off")
#: Every process of the user on this machine shares a key's bucket.
DEFAULT_QUOTA: Final = "host"
_REDIS_SCHEMES: Final = ("redis://", "rediss://", "unix://")
_RULE: Final = (
    "must be 'host' (every process of this user on this machine, the default), 'process', "
    "'off', a redis://host:port/db URL, or a TokenBucket"
)


def quota_factory(quota: object = None) -> QuotaFactory:
    """Read a ``quota=`` setting: how each send gets its bucket, per quota key and qps.

    - ``None`` or ``"host"``: :func:`~cms_magic.sending.hostquota.host_quota`, one bucket
      for every process of the user on this machine (a locked file), the default;
    - ``"process"``: :func:`shared_quota`, one bucket per key in this process;
    - ``"off"``: no client-side limit (the service's throttling and the adaptive retry
      still apply);
    - ``"redis://host:port/db"`` (``rediss://``, ``unix://``): one bucket for every client
      of the Redis server (:func:`~cms_magic.sending.redisquota.redis_quota`; needs
      ``pip install cms_magic[redis]``);
    - a :class:`TokenBucket`: used as is, whatever the key and qps.

    A ``qps`` of 0 gives no bucket (the client-side limit off) except for a given
    :class:`TokenBucket`. Errors are :class:`~cms_magic.errors.ConfigError` naming
    ``quota``, the rule and the value (a Redis password masked). Checked now, so a bad
    setting fails before anything is sent.
    """
    if quota is None:
        quota = DEFAULT_QUOTA
    if isinstance(quota, TokenBucket):
        bucket = quota
        return lambda key, qps: bucket
    if not isinstance(quota, str):
        raise ConfigError(_RULE, option="quota", value=quota)
    text = quota.strip()
    mode = text.lower()
    if mode == "host":
        from cms_magic.sending.hostquota import host_quota

        return _unless_off(host_quota)
    if mode == "process":
        return _unless_off(shared_quota)
    if mode == "off":
        return lambda key, qps: None
    if mode.startswith(_REDIS_SCHEMES):
        from cms_magic.sending.redisquota import check_redis_url, redis_quota

        url = check_redis_url(text)
        return _unless_off(lambda key, qps: redis_quota(url, key, qps))
    from cms_magic.sending.redisquota import mask_url

    raise ConfigError(_RULE, option="quota", value=mask_url(text))


def resolve_quota(quota: object, key: str, qps: float) -> TokenBucket | None:
    """The bucket ``quota=`` gives a send with quota key ``key`` at ``qps`` (None: no limit)."""
    return quota_factory(quota)(key, qps)


def _unless_off(make: Callable[[str, float], SharedBucket]) -> QuotaFactory:
    def factory(key: str, qps: float) -> TokenBucket | None:
        if qps == 0:
            return None
        return make(key, qps)

    return factory
