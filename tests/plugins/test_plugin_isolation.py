"""workbench.plugin_system.isolation and the loader's use of it, in process: whatever a plugin raises becomes its
failure (SystemExit and KeyboardInterrupt included), a call that does not finish is given up at the time limit,
and error messages are made defensively.  The same cases as installed distributions, through the real commands
and the window, are in tests/test_hostile_plugins.py."""

from __future__ import annotations

import threading
import time
import types

import pytest

from workbench.hookspecs import hookimpl
from workbench.plugin_system import discover
from workbench.plugin_system.isolation import (DEFAULT_TIME_LIMIT_S, MAX_MESSAGE_CHARS, call_isolated,
                                               call_trusted, clean_line, describe_exception, format_traceback,
                                               time_limit)
from workbench.schema.specs import CellSpec, NoParams


def module_plugin(name: str, **attributes) -> types.ModuleType:
    mod = types.ModuleType(name)
    for attr, value in attributes.items():
        if callable(value) and attr.startswith("seqwb_"):
            value.__name__ = attr
            value = hookimpl(value)
        setattr(mod, attr, value)
    return mod


def good_cells():
    return [CellSpec(id="calm", title="Calm", version="1", params=NoParams, factory="x.y:Z")]


class Unprintable(Exception):
    def __str__(self):
        raise ValueError("no")


class Escaping(Exception):
    def __str__(self):
        return "\x1b[2J\x1b[31mred\x07 and\nmore lines\u202e"


def test_describe_exception_survives_what_an_exception_can_do():
    assert describe_exception(RuntimeError("plain")) == "RuntimeError: plain"
    assert describe_exception(Unprintable()) == "Unprintable: (its message could not be read: str() raised ValueError)"
    assert describe_exception(SystemExit(3)).startswith("SystemExit: the plugin called sys.exit(3)")
    assert describe_exception(KeyboardInterrupt()).startswith("KeyboardInterrupt: raised by the plugin's own code")
    line = describe_exception(Escaping())
    assert "\x1b" not in line and "\x07" not in line and "\u202e" not in line and "\n" not in line
    assert line == "Escaping: ?[2J?[31mred? and; more lines?"
    assert len(describe_exception(ValueError("x" * 10_000))) == MAX_MESSAGE_CHARS
    try:
        raise Unprintable()
    except Unprintable as exc:
        detail = format_traceback(exc)
    assert detail.startswith("Traceback") and detail.endswith("Unprintable: <exception str() failed>\n")


def test_clean_line_keeps_one_readable_line():
    assert clean_line("  a\n\n b\tc  ") == "a; b c"


def test_time_limit_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("SEQWB_PLUGIN_TIME_LIMIT", "2.5")
    assert time_limit() == 2.5
    for bad in ("", "soon", "0", "-1", "inf", "nan"):
        monkeypatch.setenv("SEQWB_PLUGIN_TIME_LIMIT", bad)
        assert time_limit() == DEFAULT_TIME_LIMIT_S


def test_an_isolated_call_turns_every_exception_into_an_outcome():
    def leave():
        raise SystemExit(5)

    def interrupt():
        raise KeyboardInterrupt

    assert call_isolated(lambda: 7, limit=5, what="x").value == 7
    out = call_isolated(leave, limit=5, what="x")
    assert not out.ok and out.error.startswith("SystemExit: the plugin called sys.exit(5)") and "Traceback" in out.detail
    # raised in the plugin's thread: recorded, not re-raised here
    assert call_isolated(interrupt, limit=5, what="x").error.startswith("KeyboardInterrupt: raised by the plugin")


def test_a_trusted_call_re_raises_only_keyboard_interrupt():
    assert call_trusted(lambda: (_ for _ in ()).throw(SystemExit(2))).error.startswith("SystemExit")
    with pytest.raises(KeyboardInterrupt):
        call_trusted(lambda: (_ for _ in ()).throw(KeyboardInterrupt()))


def test_a_call_that_does_not_finish_is_given_up_at_the_limit():
    release = threading.Event()
    started = time.monotonic()
    out = call_isolated(lambda: release.wait(60), limit=0.3, what="the hook seqwb_cells")
    try:
        assert time.monotonic() - started < 5
        assert out.timed_out and out.error.startswith("the hook seqwb_cells did not finish within 0.3 s")
    finally:
        release.set()     # let the abandoned thread end with the test


def test_discovery_records_each_hostile_plugin_and_loads_the_rest():
    release = threading.Event()

    def hang():
        release.wait(60)
        return []

    called = []

    def never_called():
        called.append(True)
        return []

    def getattr_raising(name):
        raise RuntimeError(f"no {name}")

    plugins = [
        ("calm", module_plugin("calm", seqwb_cells=good_cells)),
        ("exits", module_plugin("exits", seqwb_tasks=lambda: (_ for _ in ()).throw(SystemExit(4)))),
        ("interrupts", module_plugin("interrupts", seqwb_decoders=lambda: (_ for _ in ()).throw(KeyboardInterrupt()))),
        ("hangs", module_plugin("hangs", seqwb_cells=hang, seqwb_tasks=never_called)),
        ("unprintable", module_plugin("unprintable", seqwb_tasks=lambda: (_ for _ in ()).throw(Unprintable()))),
        ("api", module_plugin("api", __getattr__=getattr_raising, seqwb_cells=lambda: [])),
    ]
    try:
        started = time.monotonic()
        reg = discover(entry_points=False, extra=plugins, time_limit_s=0.5)
        assert time.monotonic() - started < 10
    finally:
        release.set()
    errors = {f.entry_point: f.error for f in reg.failures}
    assert set(errors) == {"exits", "interrupts", "hangs", "unprintable", "api"}
    assert errors["exits"].startswith("SystemExit: the plugin called sys.exit(4)")
    assert errors["interrupts"].startswith("KeyboardInterrupt: raised by the plugin's own code")
    assert errors["hangs"].startswith("the hook seqwb_cells did not finish within 0.5 s")
    assert errors["unprintable"] == "Unprintable: (its message could not be read: str() raised ValueError)"
    assert errors["api"] == "reading its SEQWB_API raised RuntimeError: no SEQWB_API"
    assert all("\n" not in e for e in errors.values())
    assert reg.has("cell", "calm")
    # the plugin whose hook hung is not asked again: its hooks after the hung one are skipped
    assert called == []
    assert [p[1] for p in reg.plugins] == ["calm", "exits", "interrupts", "hangs", "unprintable"]


def test_update_from_refreshes_a_registry_in_place():
    held = discover(entry_points=False, extra=[("calm", module_plugin("calm", seqwb_cells=good_cells))])
    fresh = discover(entry_points=False)
    assert held.has("cell", "calm")
    held.update_from(fresh)
    assert not held.has("cell", "calm") and held.plugins == []
