"""What the chain's tests share: files in a temporary home, and the emulator's STS, credentials
URI and instance metadata handlers behind one :class:`httpx.MockTransport` (no sockets, so
these tests do not depend on the server's routing)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from cms_magic.credentials import RefreshingCredentials, resolve_credentials
from cms_magic.credentials.static import Credentials
from cms_magic.emulator.sts import (
    CredentialsUriEmulator,
    MetadataEmulator,
    MintedRegistry,
    StsEmulator,
)
from cms_magic.errors import CredentialsError

T = TypeVar("T")
Resolved = Credentials | RefreshingCredentials

KEY_ID = "LTAI5tChainCanary00ab"
SECRET = "SECRET-ch4inCanary3141"
TOKEN = "TOKEN-ch4inCanary2718"
OIDC_TOKEN = "eyJOIDC-ch4inCanary1618"
CANARY = "ch4inCanary"
ROLE = "acs:ram::1234567890:role/reader"
OTHER_ROLE = "acs:ram::1234567890:role/writer"
PROVIDER = "acs:ram::1234567890:oidc-provider/ack"
STS_URL = "http://127.0.0.1:9101"
URI = "http://127.0.0.1:9102/creds"
META_URL = "http://127.0.0.1:9103"
ECS_ROLE = "EcsRamRoleDemo"


def run(main: Awaitable[T]) -> T:
    async def bounded() -> T:
        return await asyncio.wait_for(main, 10)

    return asyncio.run(bounded())


def write_cli(home: Path, *profiles: dict[str, Any], current: str | None = None) -> Path:
    path = home / ".aliyun" / "config.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    data: dict[str, Any] = {"profiles": list(profiles)}
    if current is not None:
        data["current"] = current
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def write_ini(home: Path, text: str) -> Path:
    path = home / ".alibabacloud" / "credentials.ini"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def profile(name: str, mode: str, **fields: Any) -> dict[str, Any]:
    """A CLI profile; AK-based modes get the canary key unless given other fields."""
    item: dict[str, Any] = {"name": name, "mode": mode, "region_id": "cn-hangzhou"}
    if mode in ("AK", "StsToken", "RamRoleArn"):
        item |= {"access_key_id": KEY_ID, "access_key_secret": SECRET}
    if mode == "StsToken":
        item["sts_token"] = TOKEN
    return item | fields


def ini_section(name: str, kind: str, **fields: str) -> str:
    lines = [f"[{name}]", f"type = {kind}"]
    if kind in ("access_key", "sts", "ram_role_arn"):
        lines += [f"access_key_id = {KEY_ID}", f"access_key_secret = {SECRET}"]
    lines += [f"{k} = {v}" for k, v in fields.items()]
    return "\n".join(lines) + "\n"


def token_file(tmp_path: Path, text: str = OIDC_TOKEN) -> Path:
    path = tmp_path / "oidc-token"
    path.write_text(text, encoding="utf-8")
    return path


class Cloud:
    """STS, a credentials URI and instance metadata, sharing one registry of minted keys
    (so a key minted by one is accepted by STS for a chained AssumeRole)."""

    def __init__(self, *, metadata_v2: bool = True, metadata_allows_v1: bool = False) -> None:
        self.registry = MintedRegistry()
        caller = Credentials(KEY_ID, SECRET, source="test caller")
        self.sts = StsEmulator(caller, registry=self.registry)
        self.uri = CredentialsUriEmulator(registry=self.registry)
        self.metadata = MetadataEmulator(
            ECS_ROLE, registry=self.registry, allow_v1=metadata_allows_v1
        )
        self.metadata_v2 = metadata_v2
        self.seen: list[httpx.Request] = []
        self.transport = httpx.MockTransport(self._handle)

    def _handle(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        target = request.url.raw_path.decode("ascii")
        headers = list(request.headers.items())
        port = request.url.port
        if port == 9101 or request.url.host.startswith("sts"):
            handler: Callable[..., Any] = self.sts.handle
        elif port == 9102:
            handler = self.uri.handle
        elif port == 9103 or request.url.host == "100.100.100.200":
            if not self.metadata_v2 and request.url.path == "/latest/api/token":
                return httpx.Response(404, text="no IMDSv2 here")
            handler = self.metadata.handle
        else:
            return httpx.Response(599, text=f"no such test host {request.url.host}")
        answer = handler(request.method, target, headers, request.content)
        return httpx.Response(answer.status, headers=answer.headers, content=answer.body)

    def hosts(self) -> list[str]:
        return [f"{r.url.host}:{r.url.port}" if r.url.port else r.url.host for r in self.seen]

    def actions(self) -> list[str]:
        return [r.url.params.get("Action", r.url.path) for r in self.seen]


def resolve(
    home: Path, cloud: Cloud | None = None, env: dict[str, str] | None = None, **kw: Any
) -> Resolved:
    base = {"CMS_MAGIC_STS_ENDPOINT": STS_URL, "CMS_MAGIC_METADATA_URL": META_URL}
    if cloud is not None:
        kw.setdefault("client", cloud.transport)
    return resolve_credentials(env=base | (env or {}), home=home, **kw)


def refreshing(found: Resolved) -> RefreshingCredentials:
    assert isinstance(found, RefreshingCredentials), found
    return found


def oidc_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        "ALIBABA_CLOUD_ROLE_ARN": ROLE,
        "ALIBABA_CLOUD_OIDC_PROVIDER_ARN": PROVIDER,
        "ALIBABA_CLOUD_OIDC_TOKEN_FILE": str(token_file(tmp_path)),
    } | extra


def error_of(call: Any) -> str:
    with pytest.raises(CredentialsError) as info:
        call()
    return str(info.value)
