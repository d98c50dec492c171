"""errors.py: errors carry fields; each skin words them; pickling keeps them."""

from __future__ import annotations

import pickle

import pytest

from cms_magic import errors
from cms_magic.errors import CmsError, ConfigError, MappingError, SendError, UnknownRegionError


def test_fields_make_the_message() -> None:
    error = ConfigError("must be > 0", option="qps", value=-1, hint="0 turns the limit off")
    assert str(error) == "qps=-1: must be > 0; 0 turns the limit off"
    assert (
        error.describe(lambda o, v: f"--{o} {v}") == "--qps -1: must be > 0; 0 turns the limit off"
    )
    assert isinstance(error, ValueError)


def test_a_plain_message_stays_plain() -> None:
    assert str(CmsError("something broke")) == "something broke"


def test_long_values_are_cut() -> None:
    error = MappingError("is not a column", option="name_col", value="x" * 500)
    assert len(str(error)) < 130


def test_pickling_keeps_the_fields() -> None:
    error = MappingError("no such column", option="time_col", value="when", column="when")
    again = pickle.loads(pickle.dumps(error))  # noqa: S301 - our own bytes
    assert type(again) is MappingError
    assert (again.option, again.value, again.column, str(again)) == (
        "time_col",
        "when",
        "when",
        str(error),
    )
    send_error = pickle.loads(pickle.dumps(SendError("stopped", result=None)))  # noqa: S301
    assert str(send_error) == "stopped"


def test_unknown_region_suggests_the_closest() -> None:
    error = UnknownRegionError("cn-hangzou", ["cn-hangzhou", "cn-beijing"], option="region")
    assert error.hint == "did you mean 'cn-hangzhou'?"
    assert error.describe(lambda o, v: "--region").startswith("--region: unknown region")


@pytest.mark.parametrize(
    ("word", "candidates", "expected"),
    [
        ("mesage", ["message", "host"], ["message"]),
        ("Message", ["message", "host"], ["message"]),  # a case slip comes first
        ("zzz", ["message", "host"], []),
        ("1", [0, 1, 2], ["1"]),  # an integer label typed as text
    ],
)
def test_close_matches(word: str, candidates: list[object], expected: list[str]) -> None:
    assert errors.close_matches(word, candidates) == expected


def test_every_exception_class_is_a_cms_error_defined_here() -> None:
    import inspect

    for name, value in vars(errors).items():
        if inspect.isclass(value) and issubclass(value, Exception):
            if issubclass(value, Warning):
                assert value is errors.RemoteBindWarning, name
                continue
            assert issubclass(value, CmsError), name


def test_no_public_exception_is_defined_outside_errors() -> None:
    import ast
    from pathlib import Path

    package = Path(errors.__file__).parent
    found = []
    for path in package.rglob("*.py"):
        if path.name == "errors.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
                bases = {getattr(b, "id", getattr(b, "attr", "")) for b in node.bases}
                if any(b.endswith(("Error", "Exception", "Warning")) for b in bases):
                    found.append(f"{path.relative_to(package)}:{node.name}")
    # Internal signals that never leave the package: Refusal and ActionRefusal are the
    # emulator's for a request it refuses (each becomes an HTTP answer); MalformedAnswer (and
    # its two kinds) is raised inside httpx's machinery by our transport and settled as an
    # outcome (rows unknown); AuthStop tells a send's worker to stop delivering (the
    # result's error says why). A room's own errors.py (openapi/errors.py) is an errors module.
    assert sorted(found) == [
        "emulator/openapi.py:ActionRefusal",
        "emulator/validation.py:Refusal",
        "sending/_transport.py:MalformedAnswer",
        "sending/delivery.py:AuthStop",
    ]


def test_options_named_in_a_hint_are_worded_by_the_skin() -> None:
    from cms_magic.ui.options import flag_subject, label_subject

    error = MappingError(
        "names 2 columns",
        option="content_col",
        value="content",
        hint="rename the columns, or give %s or %s",
        hint_options=("content_col", "content_template"),
    )
    assert str(error).endswith("give content_col or content_template")
    assert error.describe(flag_subject).endswith("give --content-col or --content-template")
    assert error.describe(label_subject).endswith("give Content column or Content template")
    again = pickle.loads(pickle.dumps(error))  # noqa: S301 - our own bytes
    assert again.describe(flag_subject) == error.describe(flag_subject)


def test_no_credentials_names_arguments_only_in_pythons_words() -> None:
    from cms_magic.errors import NoCredentialsError
    from cms_magic.ui.options import flag_subject

    error = NoCredentialsError(("environment X: not set",), ("set X",))
    assert "pass access_key_id= and access_key_secret=" in str(error)
    assert "arguments access_key_id" in str(error)
    flags = error.describe(flag_subject)
    assert "access_key_id=" not in flags
    assert "arguments" not in flags
    assert flags.endswith("Provide credentials in one of these ways: set X.")
    assert isinstance(error, errors.CredentialsError)
