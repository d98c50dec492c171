"""whoami (issue 14): which source, which role or profile, when the credentials expire;
never the secret or the token. For the Python report, ``cms-event whoami`` and
``%cms whoami``, with role credentials minted by the emulator's STS on loopback."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from cms_magic.credentials import Credentials, RefreshingCredentials, resolve_credentials
from cms_magic.emulator import DEMO_ACCESS_KEY_ID, DEMO_ACCESS_KEY_SECRET
from cms_magic.identity import describe_credentials, key_label
from cms_magic.ui.cli import main as cli_main

ROLE = "acs:ram::1234567890123456:role/cms-writer"


def _role_profile(home: Path) -> None:
    config = home / ".aliyun" / "config.json"
    config.parent.mkdir(parents=True, exist_ok=True)
    profile = {
        "name": "writer",
        "mode": "RamRoleArn",
        "access_key_id": DEMO_ACCESS_KEY_ID,
        "access_key_secret": DEMO_ACCESS_KEY_SECRET,
        "ram_role_arn": ROLE,
        "ram_session_name": "whoami",
    }
    config.write_text(json.dumps({"current": "writer", "profiles": [profile]}), encoding="utf-8")


def _secrets(server: Any) -> list[str]:
    minted = server.minted.credentials
    values = [DEMO_ACCESS_KEY_SECRET]
    for item in minted:
        wire = item.wire()
        values += [wire["AccessKeySecret"], wire["SecurityToken"]]
    return values


def test_a_static_key_is_reported_without_contacting_anything() -> None:
    report = describe_credentials(Credentials("LTAI5tWhoamiKey0001abcd", "s3cret-value"))
    assert report.access_key_id == "LTAI****abcd"
    assert not report.refreshing
    assert report.text() == "AccessKey LTAI****abcd from explicit"
    assert key_label(Credentials("LTAI5tWhoamiKey0001abcd", "s3cret-value")) == "LTAI****abcd"


def test_role_credentials_are_fetched_and_say_role_profile_and_expiry(
    tmp_path: Path, make_emulator: Callable[..., Any]
) -> None:
    server = make_emulator(sts_lifetime=900)
    _role_profile(tmp_path)
    found = resolve_credentials(env={"CMS_MAGIC_STS_ENDPOINT": server.sts_url}, home=tmp_path)
    assert isinstance(found, RefreshingCredentials)
    before = describe_credentials(found, fetch=False)
    assert before.access_key_id is None  # not fetched: nothing contacted
    assert server.minted.assume_role == 0
    report = describe_credentials(found)
    assert server.minted.assume_role == 1
    assert report.refreshing
    assert report.security_token
    assert report.access_key_id is not None
    assert report.access_key_id.startswith("STS.")
    assert "****" in report.access_key_id
    assert report.expires_in is not None
    assert 880 <= report.expires_in <= 900
    text = report.text()
    assert "writer" in text
    assert ROLE in text
    assert "with an STS token" in text
    assert "expires 20" in text
    assert "(in 15 min)" in text
    for secret in _secrets(server):
        assert secret not in text
        assert secret not in repr(report)
    # A second whoami reuses the credentials fetched: no second AssumeRole.
    describe_credentials(found)
    assert server.minted.assume_role == 1


def test_a_failing_source_is_reported_not_raised(tmp_path: Path) -> None:
    _role_profile(tmp_path)
    # Nothing listens on port 9 of loopback: the STS call fails at once.
    found = resolve_credentials(env={"CMS_MAGIC_STS_ENDPOINT": "http://127.0.0.1:9"}, home=tmp_path)
    report = describe_credentials(found, timeout=20)
    assert report.error is not None
    assert "could not be fetched" in report.text()
    assert DEMO_ACCESS_KEY_SECRET not in report.text()


@pytest.mark.parametrize("source", ["oidc", "uri"])
def test_cms_event_whoami_names_the_source_and_expiry(
    source: str,
    tmp_path: Path,
    make_emulator: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    server = make_emulator(sts_lifetime=1200)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("CMS_MAGIC_ENDPOINT", server.url)
    if source == "oidc":
        token = tmp_path / "token"
        token.write_text("eyJhbGciOiJSUzI1NiJ9.e30.whoami", encoding="utf-8")
        monkeypatch.setenv("ALIBABA_CLOUD_ROLE_ARN", ROLE)
        monkeypatch.setenv(
            "ALIBABA_CLOUD_OIDC_PROVIDER_ARN", "acs:ram::1234567890123456:oidc-provider/ack"
        )
        monkeypatch.setenv("ALIBABA_CLOUD_OIDC_TOKEN_FILE", str(token))
        monkeypatch.setenv("CMS_MAGIC_STS_ENDPOINT", server.sts_url)
    else:
        monkeypatch.setenv("ALIBABA_CLOUD_CREDENTIALS_URI", server.credentials_uri)
    assert cli_main(["whoami"]) == 0
    out = capsys.readouterr().out
    assert f"target: {server.url}" in out or server.url in out
    assert ("OIDC" in out) if source == "oidc" else ("ALIBABA_CLOUD_CREDENTIALS_URI" in out)
    assert "expires 20" in out
    assert "(in 20 min)" in out
    for secret in _secrets(server):
        assert secret not in out
    if source == "oidc":
        assert "eyJhbGciOiJSUzI1NiJ9.e30.whoami" not in out


def test_cms_whoami_in_the_magic_shows_role_credentials(
    tmp_path: Path,
    make_emulator: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    server = make_emulator(sts_lifetime=3600)
    _role_profile(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("CMS_MAGIC_STS_ENDPOINT", server.sts_url)
    monkeypatch.setenv("CMS_MAGIC_ENDPOINT", server.url)
    config = Config()
    config.HistoryManager.hist_file = ":memory:"
    shell: Any = InteractiveShell.instance(config=config)
    try:
        shell.run_cell("%load_ext cms_magic")
        shell.run_cell("%cms whoami")
        out = capsys.readouterr().out
    finally:
        shell.run_cell("%unload_ext cms_magic")
        shell.history_manager.end_session()
        InteractiveShell.clear_instance()
    assert "RamRoleArn" in out
    assert ROLE in out
    assert "expires" in out
    for secret in _secrets(server):
        assert secret not in out
