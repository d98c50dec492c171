"""Fault injection (:mod:`cms_magic.emulator.faults`): the settings and their checks, and how a
draw picks a fault, without an emulator. The faults acted out over sockets and through a
whole send are in ``tests/sending/test_faults.py``."""

from __future__ import annotations

import random
from typing import Any

import pytest

from cms_magic.emulator.faults import MALFORMED_BODIES, FaultPicker, Faults, malformed_body
from cms_magic.errors import ConfigError


def test_no_faults_by_default() -> None:
    faults = Faults()
    assert [faults.before(d) for d in (0.0, 0.5, 0.999)] == [None] * 3
    assert [faults.after(d) for d in (0.0, 0.5, 0.999)] == [None] * 3


def test_a_draw_falls_on_the_faults_in_order() -> None:
    faults = Faults(reset_before=0.25, error_500=0.25, error_503=0.25)
    assert [faults.before(d) for d in (0.0, 0.24, 0.25, 0.49, 0.5, 0.74, 0.75, 0.99)] == [
        "reset_before",
        "reset_before",
        "error_500",
        "error_500",
        "error_503",
        "error_503",
        None,
        None,
    ]
    faults = Faults(reset_after=0.5, delay=0.25, malformed=0.25)
    assert [faults.after(d) for d in (0.1, 0.5, 0.8)] == ["reset_after", "delay", "malformed"]
    assert Faults(malformed=1.0).after(0.999999) == "malformed"


def test_malformed_bodies_are_none_of_them_the_services_json() -> None:
    draws = random.Random(0)
    assert {malformed_body(draws.random()) for _ in range(100)} == set(MALFORMED_BODIES)
    assert malformed_body(0.0) == MALFORMED_BODIES[0]


def test_the_picker_repeats_its_draws_from_the_seed() -> None:
    picker = FaultPicker(Faults(seed=42))
    first = [picker.draw() for _ in range(5)]
    picker.set(Faults(seed=42))
    assert [picker.draw() for _ in range(5)] == first
    picker.set(Faults(seed=43))
    assert [picker.draw() for _ in range(5)] != first
    assert picker.faults == Faults(seed=43)
    assert FaultPicker().faults == Faults()


@pytest.mark.parametrize(
    ("kwargs", "option", "rule"),
    [
        ({"error_500": 1.5}, "error_500", "must be a rate from 0 to 1"),
        ({"delay": -0.1}, "delay", "must be a rate from 0 to 1"),
        ({"malformed": "0.5"}, "malformed", "must be a rate from 0 to 1"),
        ({"reset_after": True}, "reset_after", "must be a rate from 0 to 1"),
        ({"error_503": float("nan")}, "error_503", "must be a rate from 0 to 1"),
        ({"delay_seconds": 601}, "delay_seconds", "must be 0..600 seconds"),
        ({"delay_seconds": "5"}, "delay_seconds", "must be 0..600 seconds"),
        ({"poison_marker": ""}, "poison_marker", "must be a non-empty string or None"),
        ({"poison_marker": 7}, "poison_marker", "must be a non-empty string or None"),
        ({"seed": "7"}, "seed", "must be an integer"),
    ],
)
def test_each_setting_is_checked_with_its_name(
    kwargs: dict[str, Any], option: str, rule: str
) -> None:
    with pytest.raises(ConfigError) as excinfo:
        Faults(**kwargs)
    assert (excinfo.value.option, excinfo.value.rule) == (option, rule)
    assert excinfo.value.value is next(iter(kwargs.values()))  # the very value given (even NaN)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"reset_before": 0.5, "error_500": 0.3, "error_503": 0.3},
            "reset_before + error_500 + error_503 must not exceed 1; they add up to 1.1",
        ),
        (
            {"reset_after": 0.6, "delay": 0.6},
            "reset_after + delay + malformed must not exceed 1; they add up to 1.2",
        ),
    ],
)
def test_rates_acted_on_one_draw_must_fit_in_one(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as excinfo:
        Faults(**kwargs)
    assert str(excinfo.value) == message
    Faults(reset_before=0.5, error_500=0.5)  # exactly 1 is fine


def test_from_dict_and_to_dict_round_trip() -> None:
    faults = Faults(seed=3, error_503=0.1, delay=0.2, delay_seconds=1.5, poison_marker="P")
    assert Faults.from_dict(faults.to_dict()) == faults
    assert Faults.from_dict({}) == Faults()
    assert set(faults.to_dict()) == {
        "seed",
        "reset_before",
        "error_500",
        "error_503",
        "reset_after",
        "delay",
        "delay_seconds",
        "malformed",
        "poison_marker",
    }


def test_from_dict_names_unknown_faults_and_refuses_non_objects() -> None:
    with pytest.raises(ConfigError) as excinfo:
        Faults.from_dict({"explode": 1, "boom": 2})
    assert excinfo.value.rule == "unknown fault(s) boom, explode"
    assert excinfo.value.hint is not None
    assert "error_500" in excinfo.value.hint
    with pytest.raises(ConfigError, match="must be a JSON object"):
        Faults.from_dict([("error_500", 1.0)])
