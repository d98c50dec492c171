"""The sender with refreshing credentials (issue 14, "Refresh"): one whole triple per
request, refreshed ahead of expiry once for all requests, a token-expired refusal answered
by one refresh and a re-signed retry, and a source that fails stopping the send cleanly.

The service here is a MockTransport that knows the triples its fake STS minted: it refuses a
request whose token does not belong to its key id (a mixed triple) or has expired on the
fake wall clock, which each request moves forward (so a send "lasts" minutes in no time).
"""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass, field

import httpx
import pytest

from cms_magic.credentials.refreshing import RefreshingCredentials, Triple
from cms_magic.emulator import Emulator, demo_credentials
from cms_magic.errors import SendError
from cms_magic.sending.client import Client
from cms_magic.sending.keys import Keys, is_token_expired, quota_key
from tests.sending._helpers import frame

DEMO = demo_credentials()


@dataclass
class Service:
    """A fake STS and upload service on one fake wall clock."""

    lifetime: float = 10.0
    seconds_per_request: float = 0.5
    now: float = 1_700_000_000.0
    minted: dict[str, tuple[str | None, float]] = field(
        default_factory=dict
    )  # key id -> token, expiry
    fetches: int = 0
    #: The fetches (1-based) that fail: STS answering 503, its text quoting a secret.
    failing: set[int] = field(default_factory=set)
    fail_from: int | None = None
    revoke_next: bool = False
    refused_expired: int = 0
    mixed: int = 0
    expired_signed: int = 0
    accepted_events: int = 0
    emulator: Emulator = field(default_factory=lambda: Emulator(DEMO, qps=0))
    counter: itertools.count[int] = field(default_factory=itertools.count)

    def clock(self) -> float:
        return self.now

    async def fetch(self) -> Triple:
        self.fetches += 1
        await asyncio.sleep(0)
        if self.fetches in self.failing or (
            self.fail_from is not None and self.fetches >= self.fail_from
        ):
            raise RuntimeError("STS is down (HTTP 503) secret-0000-" + "s" * 20)
        n = next(self.counter)
        key_id, token = f"STS.key{n:04d}", f"token-{n:04d}-" + "t" * 20
        expiry = self.now + self.lifetime
        self.minted[key_id] = (token, expiry)
        return Triple(key_id, f"secret-{n:04d}-" + "s" * 20, token, expiry)

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.now += self.seconds_per_request
        key_id = request.headers["authorization"].split(":")[0].removeprefix("acs ")
        token = request.headers.get("x-cms-security-token")
        token_of, expiry = self.minted.get(key_id, (None, 0.0))
        if token != token_of:
            self.mixed += 1
            return httpx.Response(403, json={"code": "403", "msg": "token does not match key"})
        if self.revoke_next:
            self.revoke_next = False
            self.minted[key_id] = (token_of, self.now - 1)  # as if it expired early
            expiry = self.now - 1
        if self.now >= expiry:
            self.expired_signed += 1
            self.refused_expired += 1
            return httpx.Response(
                403,
                json={"code": "403", "msg": f"the security token of {key_id} expired"},
            )
        self.accepted_events += request.content.count(b'"name"')
        return httpx.Response(200, json={"code": "200", "msg": ""})


def refreshing(service: Service) -> RefreshingCredentials:
    return RefreshingCredentials(
        service.fetch,
        source="test STS AssumeRole (arn:acs:ram::1:role/test)",
        clock=service.clock,
        monotonic=service.clock,
        sleep=lambda s: asyncio.sleep(0),
    )


def client_for(service: Service, credentials: RefreshingCredentials, **kw: object) -> Client:
    return Client(
        "http://127.0.0.1:9",
        credentials=credentials,
        transport=httpx.MockTransport(service.handler),
        qps=0,
        source_ip="10.0.0.1",
        sleep=lambda s: asyncio.sleep(0),
        random=lambda: 0.5,
        **kw,  # type: ignore[arg-type]
    )


def test_a_long_send_refreshes_ahead_and_never_signs_with_an_expired_or_mixed_triple() -> None:
    # Each request moves the fake clock 0.1 s: 1,000 requests are 100 s, ten lifetimes of
    # 10-second keys (with 4 in flight a request reaches the service up to 0.4 s after it
    # was signed: inside the margin a triple keeps when handed out).
    service = Service(seconds_per_request=0.1)
    credentials = refreshing(service)
    result = client_for(service, credentials, concurrency=4).send(
        frame(100_000), name_col="name", content_col="content"
    )
    assert result.counts()["accepted"] == 100_000
    assert service.accepted_events == 100_000
    assert service.mixed == 0
    assert service.expired_signed == 0
    lifetimes = 1_000 * service.seconds_per_request / service.lifetime
    # About one fetch per lifetime (refreshed a third ahead), never more than two.
    assert lifetimes <= service.fetches <= 2 * lifetimes + 1


def test_an_expired_token_refusal_makes_one_refresh_and_a_resigned_retry() -> None:
    service = Service(lifetime=3600)
    credentials = refreshing(service)
    client = client_for(service, credentials, concurrency=1)
    client.send(frame(100), name_col="name", content_col="content")
    assert service.fetches == 1
    service.revoke_next = True
    result = client.send(frame(300), name_col="name", content_col="content")
    assert result.counts()["accepted"] == 300
    assert service.refused_expired == 1
    assert service.fetches == 2  # one refresh for the refusal
    assert result.error is None
    assert int(result.events["attempts"].max()) == 2  # the refused request, then the re-signed one


def test_a_source_that_fails_after_expiry_stops_the_send_and_retry_finishes_it() -> None:
    service = Service(lifetime=10.0, seconds_per_request=1.0)
    credentials = refreshing(service)
    client = client_for(service, credentials, concurrency=1)
    service.fail_from = 2  # the first fetch works, every later one fails: ~10 requests
    result = client.send(frame(3_000), name_col="name", content_col="content")
    counts = result.counts()
    assert 0 < counts["accepted"] < 3_000
    assert counts["accepted"] + counts["not_sent"] == 3_000
    assert isinstance(result.error, SendError)
    message = str(result.error)
    assert "test STS AssumeRole" in message
    assert "STS is down" in message
    assert "s" * 20 not in message  # the secret it quoted is scrubbed
    reasons = set(result.events.loc[lambda f: f.status == "not_sent", "reason"])
    assert reasons
    assert all("STS is down" in r or "stopped" in r for r in reasons)
    assert service.expired_signed == 0

    service.fail_from = None  # the source works again
    again = result.retry()
    assert again.counts()["accepted"] == 3_000
    assert service.accepted_events == 3_000


def test_a_refresh_failing_while_the_triple_is_valid_keeps_sending() -> None:
    service = Service(lifetime=60.0, seconds_per_request=0.25)
    credentials = refreshing(service)
    client = client_for(service, credentials, concurrency=2)
    service.failing = {2, 3}  # the first background refreshes fail, later ones work
    result = client.send(frame(30_000), name_col="name", content_col="content")
    assert result.counts()["accepted"] == 30_000
    assert service.expired_signed == 0
    assert service.mixed == 0


def test_static_keys_use_one_signer_and_the_key_id_as_quota_key() -> None:
    keys = Keys(DEMO)
    signer = asyncio.run(keys.signer())
    assert signer is asyncio.run(keys.signer())
    assert keys.preview() is signer
    assert not keys.refreshing
    assert asyncio.run(keys.refresh(signer)) is None
    assert quota_key(DEMO) == DEMO.access_key_id


def test_a_refreshing_source_shares_one_quota_key_across_its_minted_keys() -> None:
    service = Service()
    credentials = refreshing(service)
    key = quota_key(credentials)
    assert "arn:acs:ram::1:role/test" in key
    keys = Keys(credentials)
    assert keys.preview() is None  # nothing fetched before a request needs it
    assert service.fetches == 0


@pytest.mark.parametrize(
    ("code", "message", "expired"),
    [
        ("InvalidSecurityToken.Expired", "Specified SecurityToken is expired.", True),
        ("403", "the security token of STS.x expired at 2026-01-01T00:00:00Z", True),
        ("403", "signature mismatch", False),
        ("InvalidAccessKeyId.NotFound", "Specified access key is not found.", False),
        (None, None, False),
    ],
)
def test_token_expired_refusals_are_recognised(
    code: str | None, message: str | None, expired: bool
) -> None:
    assert is_token_expired(code, message) is expired


def test_a_dry_run_with_a_refreshing_source_contacts_nothing() -> None:
    service = Service()
    credentials = refreshing(service)
    result = client_for(service, credentials).send(
        frame(10), name_col="name", content_col="content", dry_run=True
    )
    assert service.fetches == 0
    assert result.preview is not None
    assert result.counts()["dry_run"] == 10


def test_requests_refused_at_once_for_an_expired_token_share_one_refresh() -> None:
    service = Service(lifetime=3600)
    credentials = refreshing(service)
    client = client_for(service, credentials, concurrency=4)
    client.send(frame(100), name_col="name", content_col="content")
    assert service.fetches == 1
    gate = asyncio.Event()
    held: list[httpx.Request] = []
    plain = service.handler

    async def handler(request: httpx.Request) -> httpx.Response:
        if len(held) < 4 and not gate.is_set():
            held.append(request)
            if len(held) == 4:  # four requests signed with the triple are in flight: revoke it
                for key_id, (token, _) in list(service.minted.items()):
                    service.minted[key_id] = (token, service.now - 1)
                gate.set()
            await gate.wait()
        return plain(request)

    client.transport = httpx.MockTransport(handler)
    result = client.send(frame(2_000), name_col="name", content_col="content")
    assert result.counts()["accepted"] == 2_000
    assert service.refused_expired == 4
    assert service.fetches == 2  # one refresh for the four refusals
