"""The package's own credential sources (:mod:`cms_magic.credentials.sources`) against the
emulator's STS, credentials URI and instance metadata over loopback HTTP: each fetch gets a
triple that expires after the server's ``sts_lifetime`` and signs an upload the emulator
accepts; each call is counted once in ``server.minted``."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

import cms_magic
from cms_magic.credentials import sources
from cms_magic.emulator import demo_credentials

ROLE = "acs:ram::1234567890123456:role/notebook"
PROVIDER = "acs:ram::1234567890123456:oidc-provider/ack-rrsa"


def fetch_for(kind: str, server: Any, tmp_path: Path) -> Any:
    if kind == "assume_role":
        return sources.assume_role(demo_credentials(), ROLE, sts_endpoint=server.sts_url)
    if kind == "oidc":
        token_file = tmp_path / "token"
        token_file.write_text("eyJhbGciOi.jwt.sig\n", encoding="utf-8")
        return sources.assume_role_with_oidc(
            ROLE, PROVIDER, token_file, sts_endpoint=server.sts_url
        )
    if kind == "uri":
        return sources.credentials_uri(server.credentials_uri)
    return sources.ecs_ram_role(metadata_base=server.metadata_url)


@pytest.mark.parametrize("kind", ["assume_role", "oidc", "uri", "ecs_ram_role"])
def test_each_source_fetches_a_triple_that_signs_uploads(
    make_emulator: Any, tmp_path: Path, kind: str
) -> None:
    server = make_emulator(sts_lifetime=120)
    started = time.time()
    triple = asyncio.run(fetch_for(kind, server, tmp_path)())
    assert triple.access_key_id.startswith("STS.")
    assert triple.expires_at is not None
    assert started + 119 <= triple.expires_at <= time.time() + 121
    minted = server.minted
    counts = {
        "assume_role": minted.assume_role,
        "oidc": minted.assume_role_with_oidc,
        "uri": minted.credentials_uri,
        "ecs_ram_role": minted.metadata,
    }
    assert counts == {name: int(name == kind) for name in counts}
    assert len(minted) == 1
    result = cms_magic.send(
        [{"name": "SourceTest", "content": kind}],
        endpoint=server.url,
        credentials=triple.to_credentials(kind),
    )
    assert result.ok, result.requests.to_dict("records")
    assert [e["content"] for e in server.events()] == [kind]
