"""Long sends with short-lived credentials from every refreshing source (issue 14, "Done when").

Four sends run at once, each at the quota (20 requests/s) for over 30 s against its own
emulator minting 10-second credentials, each resolved by the chain from its own
configuration: an aliyun CLI ``RamRoleArn`` profile (STS AssumeRole), the OIDC / RRSA
environment (AssumeRoleWithOIDC), a credentials URI, and an ECS RAM role (instance
metadata). Every row must be accepted; the emulator must have refused no upload (none
signed with an expired triple, or a key with another triple's token); and each source is
called about once per lifetime of its credentials, never more than twice.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from cms_magic.credentials import RefreshingCredentials, resolve_credentials
from cms_magic.emulator import DEMO_ACCESS_KEY_ID, DEMO_ACCESS_KEY_SECRET
from cms_magic.sending.client import Client

LIFETIME = 10.0
QPS = 20.0
SECONDS = 31.0
ROWS = int(SECONDS * QPS * 100)  # 100 events per request
ROLE = "acs:ram::1234567890123456:role/cms-writer"
OIDC_ROLE = "acs:ram::1234567890123456:role/cms-pod-writer"  # another role: its own quota


def _cli_profile(home: Path, sts_url: str) -> dict[str, str]:
    config = home / ".aliyun" / "config.json"
    config.parent.mkdir(parents=True)
    profile = {
        "name": "writer",
        "mode": "RamRoleArn",
        "access_key_id": DEMO_ACCESS_KEY_ID,
        "access_key_secret": DEMO_ACCESS_KEY_SECRET,
        "ram_role_arn": ROLE,
        "ram_session_name": "long-send",
        "sts_region": "cn-hangzhou",
    }
    config.write_text(json.dumps({"current": "writer", "profiles": [profile]}), encoding="utf-8")
    return {"CMS_MAGIC_STS_ENDPOINT": sts_url}


def _sources(tmp_path: Path) -> dict[str, Callable[[Any], dict[str, str]]]:
    token_file = tmp_path / "oidc-token"
    token_file.write_text("eyJhbGciOiJSUzI1NiJ9.e30.long-send-oidc", encoding="utf-8")
    return {
        "ram_role_arn": lambda server: _cli_profile(tmp_path / "home-role", server.sts_url),
        "oidc": lambda server: {
            "ALIBABA_CLOUD_ROLE_ARN": OIDC_ROLE,
            "ALIBABA_CLOUD_OIDC_PROVIDER_ARN": "acs:ram::1234567890123456:oidc-provider/ack",
            "ALIBABA_CLOUD_OIDC_TOKEN_FILE": str(token_file),
            "CMS_MAGIC_STS_ENDPOINT": server.sts_url,
        },
        "credentials_uri": lambda server: {
            "ALIBABA_CLOUD_CREDENTIALS_URI": server.credentials_uri,
        },
        "ecs_ram_role": lambda server: {
            "ALIBABA_CLOUD_ECS_METADATA": "EcsRamRoleDemo",
            "CMS_MAGIC_METADATA_URL": server.metadata_url,
        },
    }


def _calls(server: Any, source: str) -> int:
    minted = server.minted
    return {
        "ram_role_arn": minted.assume_role,
        "oidc": minted.assume_role_with_oidc,
        "credentials_uri": minted.credentials_uri,
        "ecs_ram_role": minted.metadata,
    }[source]


@pytest.mark.slow
def test_sends_of_30_s_at_the_quota_with_10_s_credentials_from_every_source(
    tmp_path: Path, make_emulator: Callable[..., Any]
) -> None:
    frame = pd.DataFrame({"name": "long_send", "content": [f"row {i}" for i in range(ROWS)]})
    jobs = {}
    servers = {}
    credentials: dict[str, RefreshingCredentials] = {}
    for source, configure in _sources(tmp_path).items():
        server = make_emulator(sts_lifetime=LIFETIME, qps=QPS)
        env = configure(server)
        home = tmp_path / "home-role" if source == "ram_role_arn" else tmp_path / "empty-home"
        home.mkdir(exist_ok=True)
        found = resolve_credentials(env=env, home=home)
        assert isinstance(found, RefreshingCredentials), source
        assert found.fetches == 0  # resolving contacted nothing
        client = Client(server.url, credentials=found, qps=QPS)
        jobs[source] = client.send(frame, name_col="name", content_col="content", background=True)
        servers[source], credentials[source] = server, found

    for source, job in jobs.items():
        result = job.result(timeout=SECONDS * 4)
        server = servers[source]
        assert result.counts()["accepted"] == ROWS, (source, result.summary())
        assert result.error is None, source
        refused = [r for r in server.requests() if r["status"] != 200]
        assert refused == [], (source, refused[:3])  # no expired or mixed triple reached it
        assert server.emulator.store.count() == ROWS
        # The send lasted over 30 s: at least three lifetimes of the credentials.
        assert result.elapsed >= SECONDS - 1, (source, result.elapsed)
        lifetimes = result.elapsed / LIFETIME
        calls = _calls(server, source)
        assert calls == credentials[source].fetches, source
        # About one call per refresh: at least one per lifetime, never two per lifetime.
        assert lifetimes <= calls <= 2 * lifetimes, (source, calls, lifetimes)
        # Each request was signed with a key the source handed out, all of them minted.
        keys = {r["key_id"] for r in server.requests()}
        assert keys <= {m.access_key_id for m in server.minted.credentials}, source
        assert len(keys) >= 3, (source, len(keys))
