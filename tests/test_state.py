"""_state.py: every process-wide value in a slot or registry, one reset for all."""

from __future__ import annotations

from cms_magic import _state


def test_reset_clears_slots_and_registries_and_closes_what_needs_it() -> None:
    closed: list[str] = []
    slot: _state.Slot[str] = _state.slot("test slot", close=closed.append)
    registry: _state.Registry[str, int] = _state.registry("test registry")
    assert slot.get_or_create(lambda: "made") == "made"
    assert slot.get_or_create(lambda: "again") == "made"
    assert registry.get_or_create("k", lambda: 1) == 1
    assert registry.add("k", 2) is False
    assert {"test slot", "test registry"} <= set(_state.names())
    _state.reset()
    assert slot.get() is None
    assert "k" not in registry
    assert closed == ["made"]


def test_the_packages_state_is_registered() -> None:
    import cms_magic.emulator
    import cms_magic.sending.client  # noqa: F401 - registers its slots

    assert len(_state.names()) >= 1
