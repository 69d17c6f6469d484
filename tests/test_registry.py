"""The generic leaf registry (ticketfmt.registry) and the registries built on it."""

from __future__ import annotations

import subprocess
import sys

import pytest

from ticketfmt.errors import DataError, TicketError, UnknownArchError
from ticketfmt.registry import Registry, describe
from ticketfmt.zoo import FAMILIES, ArchSpec, Family, get_arch, get_family, register_family, unregister_family


def _scorer() -> None:
    """A function entry: taken-name errors name it by its qualified name."""


def _numbers() -> Registry[int]:
    """A registry of three numbers, registered out of alphabetical order."""
    reg: Registry[int] = Registry("number")
    for name, value in [("two", 2), ("one", 1), ("three", 3)]:
        reg.register(name, value)
    return reg


def test_a_taken_name_is_refused_and_the_entry_kept() -> None:
    reg: Registry[object] = Registry("widget")
    first = object()
    assert reg.register("a", first) is first
    with pytest.raises(ValueError, match=r"^widget 'a' is registered already \(object\); unregister it first$"):
        reg.register("a", object())
    assert reg.get("a") is first and len(reg) == 1


def test_taken_name_messages_and_error_class_are_the_registrys() -> None:
    reg: Registry[object] = Registry("method", taken_error=DataError, taken="{kind} {name!r} is taken by {old!r}",
                                     taken_fix="pick another name")
    reg.register("m", _scorer)
    with pytest.raises(DataError) as info:
        reg.register("m", _scorer)
    assert str(info.value) == "method 'm' is taken by '_scorer'; pick another name"
    assert describe(_scorer) == "_scorer" and describe(reg) == "Registry"


def test_unregister_returns_the_entry_and_frees_the_name() -> None:
    reg: Registry[int] = Registry("number")
    reg.register("one", 1)
    assert reg.unregister("one") == 1
    assert "one" not in reg and reg.names() == []
    assert reg.register("one", 11) == 11  # the name is free again
    with pytest.raises(KeyError, match="number 'two' is not registered"):
        reg.unregister("two")


def test_unknown_name_error_is_one_line_with_the_known_names() -> None:
    reg = _numbers()
    with pytest.raises(TicketError) as info:
        reg.get("four")
    assert str(info.value) == "unknown number 'four'; known numbers: one, three, two"
    assert "\n" not in str(info.value)


def test_unknown_name_error_class_and_fix_can_be_the_registrys_own() -> None:
    builtin: Registry[int] = Registry("codec", error=ValueError, fix="use one of {names}")
    builtin.register("b", 1)
    with pytest.raises(ValueError, match=r"^unknown codec 'z'; use one of b$"):
        builtin.get("z")
    custom: Registry[int] = Registry("family", error=UnknownArchError, unknown="no {kind} called {name!r}",
                                     fix=lambda: "run `ticket models`")
    with pytest.raises(UnknownArchError, match=r"^no family called 'x'; run `ticket models`$"):
        custom.get("x")


def test_names_are_sorted_iteration_and_items_keep_registration_order() -> None:
    reg = _numbers()
    assert reg.names() == ["one", "three", "two"]
    assert list(reg) == ["two", "one", "three"]
    assert reg.items() == [("two", 2), ("one", 1), ("three", 3)]
    assert dict(reg.view) == {"two": 2, "one": 1, "three": 3}
    with pytest.raises(TypeError):
        reg.view["four"] = 4  # type: ignore[index]  # read-only: only register() adds


def test_add_uses_the_name_attribute_and_refuses_an_unnamed_object() -> None:
    class Named:
        name = "n"

    class Unnamed:
        name = ""

    reg: Registry[object] = Registry("thing")
    entry = Named()
    assert reg.add(entry) is entry and reg.get("n") is entry
    with pytest.raises(ValueError, match="Unnamed has no name"):
        reg.add(Unnamed())


def test_watchers_are_called_on_every_change() -> None:
    calls: list[str] = []
    reg: Registry[int] = Registry("number")
    reg.watch(lambda: calls.append("changed"))
    reg.register("one", 1)
    with pytest.raises(ValueError):
        reg.register("one", 1)  # refused: nothing changed
    reg.unregister("one")
    assert calls == ["changed", "changed"]


class _ParseOnlyFamily(Family):
    """``regtoy-N``: enough of a family for ``get_arch`` to parse its ids."""

    name = "regtoy"
    libraries = ("builtin",)

    def parse(self, name: str, library: str) -> ArchSpec | None:
        return self.make(library, "linear", (int(name[7:]),)) if name.startswith("regtoy-") else None

    def canonical_name(self, block: str, stages: tuple[int, ...]) -> str:
        return f"regtoy-{stages[0]}"


def test_an_unregistered_family_stops_resolving() -> None:
    # get_arch caches parsed ids: unregistering a family must clear that cache, or its ids keep resolving.
    family = register_family(_ParseOnlyFamily())
    try:
        assert get_arch("regtoy-2").family == "regtoy"  # parsed, and cached
    finally:
        unregister_family("regtoy")
    with pytest.raises(UnknownArchError, match="unknown architecture 'regtoy-2'"):
        get_arch("regtoy-2")
    with pytest.raises(UnknownArchError, match=r"unknown architecture family 'regtoy'; known families: cifar_resnet"):
        get_family("regtoy")
    register_family(family)  # registered again: its ids resolve again
    try:
        assert get_arch("regtoy-3").stages == (3,)
    finally:
        unregister_family("regtoy")
    assert "regtoy" not in FAMILIES


def test_the_registry_module_imports_only_errors() -> None:
    code = ("import sys, ticketfmt.registry\n"
            "print(sorted(m for m in sys.modules if m.startswith('ticketfmt')), 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-P", "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['ticketfmt', 'ticketfmt._version', 'ticketfmt.errors', 'ticketfmt.registry'] False"
