"""The Secret type: masked in every rendering, revealed only on request."""

from __future__ import annotations

import copy
import json
import logging
import pickle

import pytest

from cms_magic.credentials import Secret

RAW = "SECRET-zq8xW3vN7pK2mR9t"


def test_every_rendering_is_masked() -> None:
    secret = Secret(RAW)
    assert repr(secret) == "Secret('****')"
    assert str(secret) == "****"
    assert f"{secret}" == "****"
    assert f"{secret!r}" == "Secret('****')"
    assert f"{secret:>30}" == "****"
    assert "%s %r" % (secret, secret) == "**** Secret('****')"  # noqa: UP031 - the old way too
    assert "{}".format(secret) == "****"  # noqa: UP032
    assert RAW not in repr([secret, {"k": secret}, (secret,)])


def test_reveal_is_the_only_way_to_the_text() -> None:
    secret = Secret(RAW)
    assert secret.reveal() == RAW
    assert str not in type(secret).__mro__  # not a str: no join or JSON sees the text
    with pytest.raises(TypeError):
        json.dumps(secret)  # never serialised by accident
    with pytest.raises(TypeError):
        vars(secret)  # no instance dict to walk
    with pytest.raises(AttributeError):
        secret.other = 1


def test_a_log_record_of_a_secret_is_masked(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="cms_magic")
    logging.getLogger("cms_magic").debug("secret %s, %r", Secret(RAW), Secret(RAW))
    assert RAW not in caplog.text
    assert "****" in caplog.text


def test_equality_hash_length_truth_copy_and_pickle() -> None:
    secret = Secret(RAW)
    assert secret == Secret(RAW)
    assert secret == RAW  # compared in constant time against a plain string too
    assert secret != Secret(RAW + "x")
    assert secret != RAW + "x"
    assert secret != 5
    assert hash(secret) == hash(Secret(RAW))
    assert len(secret) == len(RAW)
    assert bool(secret)
    assert copy.copy(secret) == secret
    assert copy.deepcopy(secret) == secret
    assert pickle.loads(pickle.dumps(secret)) == secret  # noqa: S301 - our own bytes


def test_wrapping_a_secret_keeps_it_and_other_types_are_refused_without_their_value() -> None:
    assert Secret(Secret(RAW)).reveal() == RAW
    with pytest.raises(TypeError) as info:
        Secret(RAW.encode())
    assert "bytes" in str(info.value)
    assert "zq8x" not in str(info.value)
