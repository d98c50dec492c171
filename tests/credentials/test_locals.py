"""No rendering of a credential error's frames shows the secret or the token (issue 12 #2).

``%xmode Verbose``, ``traceback.TracebackException(capture_locals=True)``, pytest's
``--showlocals`` and error trackers print every frame's locals and walk
``__context__`` / ``__cause__`` whatever ``__suppress_context__`` says. Each case
below puts the secret and the token where the resolution reads them (arguments,
environment, the CLI's JSON, credentials.ini) and then gets an error: every frame
of every chained exception, its attributes and its message are rendered and
searched for both.

The cases are functions of ``home`` only, and the exception is caught in
:func:`caught`, so the frames rendered are the library's, not the test's own.
"""

from __future__ import annotations

import json
import traceback
from collections.abc import Callable
from pathlib import Path

import pytest

from cms_magic.credentials import Credentials, Secret, resolve_credentials
from cms_magic.errors import CredentialsError
from cms_magic.sending.client import Client
from cms_magic.signing import CmsAuth

SECRET = "SECRET-qj5vLocalsCanary3141"
TOKEN = "TOKEN-qj5vLocalsCanary2718"
KEY_ID = "LTAI5tLocalsCanary00ab"
FRAGMENTS = ("qj5v", "LocalsCanary3141", "LocalsCanary2718")

ENV_ID = "ALIBABA_CLOUD_ACCESS_KEY_ID"
ENV_SECRET = "ALIBABA_CLOUD_ACCESS_KEY_SECRET"
ENV_TOKEN = "ALIBABA_CLOUD_SECURITY_TOKEN"


def leaked(text: str) -> list[str]:
    return [fragment for fragment in FRAGMENTS if fragment in text]


def chain(exc: BaseException) -> list[BaseException]:
    """The exception and every one chained to it, by cause or context, suppressed or not."""
    seen: list[BaseException] = []
    todo: list[BaseException | None] = [exc]
    while todo:
        item = todo.pop()
        if item is None or any(item is s for s in seen):
            continue
        seen.append(item)
        todo += [item.__cause__, item.__context__]
    return seen


def safe_repr(value: object) -> str:
    try:
        return repr(value)
    except Exception as exc:  # a half-built object's repr may fail; trackers carry on
        return f"<repr failed: {type(exc).__name__}>"


def renderings(exc: BaseException, *, tolerate_failing_repr: bool = False) -> str:
    """Everything a tool could show of ``exc``: each chained exception's frames with their
    locals, its message, args and attributes, and IPython's verbose traceback.

    Python 3.11's ``capture_locals`` calls ``repr`` unguarded, so a local whose repr
    fails makes the rendering itself fail; ``tolerate_failing_repr`` skips that one
    rendering (the others guard their reprs)."""
    parts: list[str] = []
    for item in chain(exc):
        try:
            rendered = traceback.TracebackException.from_exception(item, capture_locals=True)
        except Exception:
            if not tolerate_failing_repr:
                raise
        else:
            parts += list(rendered.format(chain=True))
        parts += [repr(item), str(item), repr(item.args), safe_repr(vars(item))]
        tb = item.__traceback__
        while tb is not None:  # what an error tracker walks: every frame's locals, repr'd
            parts += [f"{k}={safe_repr(v)}" for k, v in tb.tb_frame.f_locals.items()]
            tb = tb.tb_next
    # IPython's verbose mode also evaluates the names on each frame's line; the cases' own
    # lines name the canaries, so it renders from the first frame of the library on.
    ultratb = pytest.importorskip("IPython.core.ultratb")
    verbose = ultratb.VerboseTB(theme_name="nocolor", include_vars=True)
    tb = exc.__traceback__
    while tb is not None and "/cms_magic/" not in tb.tb_frame.f_code.co_filename:
        tb = tb.tb_next
    parts.append(verbose.text(type(exc), exc, tb))
    return "\n".join(parts)


def caught(call: Callable[[Path], object], home: Path) -> BaseException:
    try:
        call(home)
    except Exception as exc:  # every error is audited
        return exc
    raise AssertionError("no error")


def write(path: Path, text: str | bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")


def cli(home: Path, data: object) -> None:
    text = data if isinstance(data, str | bytes) else json.dumps(data)
    write(home / ".aliyun" / "config.json", text)


def ini(home: Path, text: str | bytes) -> None:
    write(home / ".alibabacloud" / "credentials.ini", text)


def ak(**extra: object) -> dict[str, object]:
    return {
        "name": "default",
        "mode": "AK",
        "access_key_id": KEY_ID,
        "access_key_secret": SECRET,
    } | extra


def sts(**extra: object) -> dict[str, object]:
    return ak(mode="StsToken", sts_token=TOKEN) | extra


def full_env() -> dict[str, str]:
    return {ENV_ID: KEY_ID, ENV_SECRET: SECRET, ENV_TOKEN: TOKEN}


def ini_sts(**extra: str) -> str:
    lines = [
        "[default]",
        "type = sts",
        f"access_key_id = {KEY_ID}",
        f"access_key_secret = {SECRET}",
        f"security_token = {TOKEN}",
    ] + [f"{key} = {value}" for key, value in extra.items()]
    return "\n".join(lines) + "\n"


CASES: dict[str, Callable[[Path], object]] = {}


def case(fn: Callable[[Path], object]) -> Callable[[Path], object]:
    CASES[fn.__name__.removeprefix("case_")] = fn
    return fn


# --- arguments and the Credentials type ---------------------------------------------------


@case
def case_args_secret_without_id(home: Path) -> object:
    return resolve_credentials(None, SECRET, TOKEN, env={}, home=home)


@case
def case_args_token_alone(home: Path) -> object:
    return resolve_credentials(security_token=TOKEN, env={}, home=home)


@case
def case_args_secret_with_control_characters(home: Path) -> object:
    return resolve_credentials(KEY_ID, SECRET + "\x07", TOKEN, env={}, home=home)


@case
def case_args_bad_id(home: Path) -> object:
    return resolve_credentials("LTAI bad", SECRET, TOKEN, env={}, home=home)


@case
def case_args_token_of_wrong_type(home: Path) -> object:
    return resolve_credentials(KEY_ID, SECRET, 5, env={}, home=home)  # type: ignore[arg-type]


@case
def case_credentials_bad_id(home: Path) -> object:
    return Credentials("LTAI:bad", SECRET, TOKEN)


@case
def case_credentials_bad_secret(home: Path) -> object:
    return Credentials(KEY_ID, "\n" + SECRET + "\x00", TOKEN)


@case
def case_credentials_wrong_source(home: Path) -> object:
    return Credentials(KEY_ID, SECRET, TOKEN, source=3)  # type: ignore[arg-type]


# --- the environment --------------------------------------------------------------------------


@case
def case_env_secret_without_id(home: Path) -> object:
    return resolve_credentials(env={ENV_SECRET: SECRET, ENV_TOKEN: TOKEN}, home=home)


@case
def case_env_id_and_token_without_secret(home: Path) -> object:
    return resolve_credentials(env={ENV_ID: KEY_ID, ENV_TOKEN: TOKEN}, home=home)


@case
def case_env_bad_secret(home: Path) -> object:
    return resolve_credentials(env=full_env() | {ENV_SECRET: SECRET + "\x1b"}, home=home)


@case
def case_env_skipped_for_a_missing_profile(home: Path) -> object:
    return resolve_credentials(profile="prod", env=full_env(), home=home)


@case
def case_env_skipped_and_the_cli_file_malformed(home: Path) -> object:
    cli(home, json.dumps({"profiles": [sts()]})[:-2])
    return resolve_credentials(profile="default", env=full_env(), home=home)


# --- the aliyun CLI's config.json ----------------------------------------------------------


@case
def case_cli_truncated_json(home: Path) -> object:
    cli(home, json.dumps({"current": "default", "profiles": [sts()]})[:-3])
    return resolve_credentials(env={}, home=home)


@case
def case_cli_trailing_comma(home: Path) -> object:
    cli(home, f'{{"access_key_secret": "{SECRET}", "sts_token": "{TOKEN}",}}')
    return resolve_credentials(env={}, home=home)


@case
def case_cli_not_an_object(home: Path) -> object:
    cli(home, [SECRET, TOKEN])
    return resolve_credentials(env={}, home=home)


@case
def case_cli_profiles_not_a_list(home: Path) -> object:
    cli(home, {"profiles": sts()})
    return resolve_credentials(env={}, home=home)


@case
def case_cli_profile_not_an_object(home: Path) -> object:
    cli(home, {"profiles": [sts(), SECRET, TOKEN]})
    return resolve_credentials(env={}, home=home)


@case
def case_cli_profile_name_not_a_string(home: Path) -> object:
    cli(home, {"profiles": [sts(name=[SECRET, TOKEN])]})
    return resolve_credentials(env={}, home=home)


@case
def case_cli_unsupported_mode(home: Path) -> object:
    cli(home, {"profiles": [sts(mode="RsaKeyPair", private_key=TOKEN)]})
    return resolve_credentials(env={}, home=home)


@case
def case_cli_mode_of_wrong_type(home: Path) -> object:
    cli(home, {"profiles": [sts(mode=[SECRET])]})
    return resolve_credentials(env={}, home=home)


@case
def case_cli_ak_without_id(home: Path) -> object:
    cli(home, {"profiles": [sts(mode="AK", access_key_id="")]})
    return resolve_credentials(env={}, home=home)


def without(profile: dict[str, object], key: str, note: str) -> dict[str, object]:
    return {k: v for k, v in profile.items() if k != key} | {"note": note}


@case
def case_cli_sts_without_token(home: Path) -> object:
    cli(home, {"profiles": [without(sts(), "sts_token", TOKEN)]})
    return resolve_credentials(env={}, home=home)


@case
def case_cli_sts_without_secret(home: Path) -> object:
    cli(home, {"profiles": [without(sts(), "access_key_secret", SECRET)]})
    return resolve_credentials(env={}, home=home)


@case
def case_cli_secret_of_wrong_type(home: Path) -> object:
    cli(home, {"profiles": [sts(access_key_secret={"value": SECRET})]})
    return resolve_credentials(env={}, home=home)


@case
def case_cli_id_of_wrong_type(home: Path) -> object:
    cli(home, {"profiles": [sts(access_key_id=[SECRET])]})
    return resolve_credentials(env={}, home=home)


@case
def case_cli_secret_with_control_characters(home: Path) -> object:
    cli(home, {"profiles": [sts(access_key_secret=SECRET + "\x07")]})
    return resolve_credentials(env={}, home=home)


@case
def case_cli_bad_id(home: Path) -> object:
    cli(home, {"profiles": [sts(access_key_id="LTAI bad id")]})
    return resolve_credentials(env={}, home=home)


@case
def case_cli_not_utf8(home: Path) -> object:
    cli(home, json.dumps({"profiles": [sts()]}).encode() + b"\xff\xfe")
    return resolve_credentials(env={}, home=home)


@case
def case_cli_nested_too_deep(home: Path) -> object:
    cli(home, json.dumps({"profiles": [sts()], "x": ""})[:-1] + "[" * 200_000)
    return resolve_credentials(env={}, home=home)


@case
def case_cli_profile_asked_for_is_elsewhere(home: Path) -> object:
    cli(home, {"profiles": [sts()]})
    return resolve_credentials(profile="prod", env={}, home=home)


@case
def case_cli_unreadable(home: Path) -> object:
    (home / ".aliyun" / "config.json").mkdir(parents=True)
    return resolve_credentials(env=full_env() | {ENV_ID: ""}, home=home)


# --- credentials.ini ------------------------------------------------------------------------


@case
def case_ini_value_before_any_header(home: Path) -> object:
    ini(home, f"access_key_secret = {SECRET}\nsecurity_token = {TOKEN}\n")
    return resolve_credentials(env={}, home=home)


@case
def case_ini_unparsable_line(home: Path) -> object:
    ini(home, f"[default]\naccess_key_secret {SECRET}\nsecurity_token {TOKEN}\n")
    return resolve_credentials(env={}, home=home)


@case
def case_ini_section_twice(home: Path) -> object:
    ini(home, ini_sts() + ini_sts())
    return resolve_credentials(env={}, home=home)


@case
def case_ini_key_twice(home: Path) -> object:
    ini(home, ini_sts(security_token=TOKEN + "2"))
    return resolve_credentials(env={}, home=home)


@case
def case_ini_enable_not_a_boolean(home: Path) -> object:
    ini(home, ini_sts(enable=f"maybe-{SECRET}"))
    return resolve_credentials(env={}, home=home)


@case
def case_ini_disabled_chosen_explicitly(home: Path) -> object:
    ini(home, ini_sts(enable="false"))
    return resolve_credentials(profile="default", env={}, home=home)


@case
def case_ini_unsupported_type(home: Path) -> object:
    ini(home, ini_sts().replace("type = sts", "type = rsa_key_pair"))
    return resolve_credentials(env={}, home=home)


@case
def case_ini_sts_without_token(home: Path) -> object:
    ini(home, ini_sts().replace("security_token", "note"))
    return resolve_credentials(env={}, home=home)


@case
def case_ini_without_secret(home: Path) -> object:
    ini(home, ini_sts().replace("access_key_secret", "note"))
    return resolve_credentials(env={}, home=home)


@case
def case_ini_secret_with_control_characters(home: Path) -> object:
    ini(home, ini_sts().replace(SECRET, SECRET + "\x07"))
    return resolve_credentials(env={}, home=home)


@case
def case_ini_not_utf8(home: Path) -> object:
    ini(home, ini_sts().encode() + b"\xff")
    return resolve_credentials(env={}, home=home)


@case
def case_ini_profile_asked_for_is_elsewhere(home: Path) -> object:
    ini(home, ini_sts())
    return resolve_credentials(profile="prod", env={}, home=home)


@case
def case_ini_named_by_environment_is_malformed(home: Path) -> object:
    write(home / "creds.ini", f"[x]\nsecurity_token {TOKEN}\n")
    return resolve_credentials(
        env={"ALIBABA_CLOUD_CREDENTIALS_FILE": str(home / "creds.ini"), ENV_TOKEN: TOKEN},
        home=home,
    )


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path


@pytest.mark.parametrize("name", sorted(CASES))
def test_no_rendering_of_a_credential_error_shows_the_secret_or_token(
    name: str, home: Path
) -> None:
    exc = caught(CASES[name], home)
    assert isinstance(exc, CredentialsError), repr(exc)
    text = renderings(exc)
    assert "CredentialsError" in text  # the rendering happened
    assert leaked(text) == [], f"{name}: {leaked(text)} in\n{text}"


def test_the_audit_sees_a_secret_in_a_frame() -> None:
    """The control: a plain frame local holding the secret is found."""

    def raw(home: Path) -> None:
        secret = SECRET
        raise CredentialsError(f"{len(secret)} characters")

    assert leaked(renderings(caught(raw, Path()))) != []


def test_the_audit_sees_a_secret_on_a_suppressed_context() -> None:
    def raw(home: Path) -> None:
        try:
            json.loads('{"s": "' + SECRET)
        except ValueError:
            raise CredentialsError("bad JSON") from None

    exc = caught(raw, Path())
    assert exc.__suppress_context__
    assert leaked(renderings(exc)) != []


# --- what a successful resolution holds ------------------------------------------------------


def shown(obj: object) -> str:
    """repr and str of ``obj`` and repr of each of its attributes (dict or slots)."""
    parts = [repr(obj), str(obj)]
    names = list(getattr(obj, "__dict__", {}))
    for klass in type(obj).__mro__:
        names += list(getattr(klass, "__slots__", ()))
    parts += [f"{name}={getattr(obj, name, None)!r}" for name in names]
    return "\n".join(parts)


def from_cli_ak(home: Path) -> Credentials:
    cli(home, {"profiles": [ak()]})
    return static(resolve_credentials(env={}, home=home))


def from_cli_sts(home: Path) -> Credentials:
    cli(home, {"current": "default", "profiles": [sts()]})
    return static(resolve_credentials(env={}, home=home))


def from_ini_sts(home: Path) -> Credentials:
    ini(home, ini_sts())
    return static(resolve_credentials(env={}, home=home))


def static(found: object) -> Credentials:
    assert isinstance(found, Credentials), found
    return found


SOURCES: dict[str, Callable[[Path], Credentials]] = {
    "explicit": lambda home: static(resolve_credentials(KEY_ID, SECRET, TOKEN, env={}, home=home)),
    "environment": lambda home: static(resolve_credentials(env=full_env(), home=home)),
    "cli AK": from_cli_ak,
    "cli StsToken": from_cli_sts,
    "ini sts": from_ini_sts,
    "constructed": lambda home: Credentials(KEY_ID, SECRET, TOKEN),
}


@pytest.mark.parametrize("source", sorted(SOURCES))
def test_resolved_credentials_signer_and_client_hold_only_masked_secrets(
    source: str, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(ENV_ID, raising=False)
    monkeypatch.delenv(ENV_SECRET, raising=False)
    creds = SOURCES[source](home)
    assert isinstance(creds.access_key_secret, Secret)
    assert creds.access_key_secret.reveal() == SECRET
    if source != "cli AK":
        assert isinstance(creds.security_token, Secret)
        assert creds.security_token.reveal() == TOKEN
    auth = CmsAuth.from_credentials(creds, source_ip="10.0.0.1")
    client = Client("http://127.0.0.1:9", credentials=creds, qps=0)
    for obj in (creds, auth, client, client.auth):
        assert leaked(shown(obj)) == [], shown(obj)
    assert leaked(repr(vars(creds)) + repr(vars(client))) == []


def test_the_signer_caches_nothing_that_holds_the_token() -> None:
    import httpx

    auth = CmsAuth(KEY_ID, SECRET, security_token=TOKEN, source_ip="10.0.0.1", clock=lambda: 0.0)
    for _ in range(2):  # the second request takes the cached path
        request = httpx.Request("POST", "http://127.0.0.1:9/event/custom/upload", content=b"[]")
        auth.sign(request)
        assert request.headers["x-cms-security-token"] == TOKEN
    assert leaked(shown(auth)) == [], shown(auth)
