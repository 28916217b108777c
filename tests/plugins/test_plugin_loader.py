"""workbench.plugin_system.loader and the hook contract (workbench.hookspecs).

Plugins here are in-test objects and modules passed as ``discover(entry_points=False, extra=[...])``, plus one
in-process entry-point test over a throw-away ``*.dist-info`` folder on ``sys.path`` (a custom group, so the
installed plugins of the environment never take part).
"""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
import textwrap
import types
import typing
from dataclasses import dataclass

import pluggy
import pytest

from workbench import hookspecs
from workbench.hookspecs import hookimpl
from workbench.plugin_system import (BlockSpec, CellSpec, DecoderSpec, FeatureTrackSpec, PluginFailure, PortSpec,
                                     Registry, TaskSpec, TemplateSpec, UnknownContributionError, discover,
                                     make_plugin_manager, param, resolve)
from workbench.schema.errors import ContributionConflictError
from workbench.schema.specs import SPEC_KINDS, FactoryError

IN_CODE = "(registered in code)"


@dataclass
class SizeParams:
    size: int = param(4, min=1, help="a size")


@dataclass
class NoParams:
    pass


@dataclass
class RequiredParams:
    size: int  # no default: not allowed in a spec


def cell(id: str = "t-cell", **kw) -> CellSpec:
    kw.setdefault("factory", "tests_fake.cells:Cell")
    return CellSpec(id=id, title=f"cell {id}", version="1.0", params=kw.pop("params", SizeParams), **kw)


def block(id: str = "t-block", **kw) -> BlockSpec:
    kw.setdefault("inputs", (PortSpec("x", "vectors[T]"),))
    kw.setdefault("outputs", (PortSpec("y", "vectors[T]"),))
    return BlockSpec(id=id, title=f"block {id}", version="1.0", params=SizeParams, factory="tests_fake.blocks:B",
                     **kw)


def task(id: str = "t-task") -> TaskSpec:
    return TaskSpec(id=id, title=f"task {id}", version="1.0", params=NoParams, factory="tests_fake.tasks:T",
                    inputs=(PortSpec("tokens", "tokens[T]", size="vocab"),),
                    outputs=(PortSpec("logits", "logits[T]", size="vocab"),), generative=True)


def decoder(id: str = "t-decoder") -> DecoderSpec:
    return DecoderSpec(id=id, title=f"decoder {id}", version="1.0", params=NoParams, factory="tests_fake.dec:D")


def feature_track(id: str = "t-track") -> FeatureTrackSpec:
    return FeatureTrackSpec(id=id, title=f"track {id}", version="1.0", params=NoParams,
                            factory="tests_fake.tracks:track")


def template(id: str = "t-template") -> TemplateSpec:
    return TemplateSpec(id=id, title=f"template {id}", version="1.0", params=NoParams,
                        factory="tests_fake.templates:make", task="t-task")


class GoodPlugin:
    """A plugin object contributing one of every kind."""

    @hookimpl
    def seqwb_cells(self):
        return [cell()]

    @hookimpl
    def seqwb_architectures(self):
        return [block()]

    @hookimpl
    def seqwb_tasks(self):
        return [task()]

    @hookimpl
    def seqwb_decoders(self):
        return [decoder()]

    @hookimpl
    def seqwb_templates(self):
        return (template(),)  # a tuple is taken as well as a list

    @hookimpl
    def seqwb_feature_tracks(self):
        return [feature_track()]


def module_plugin(name: str, **hooks) -> types.ModuleType:
    """A module object whose attributes are ``@hookimpl`` functions, like a real plugin module."""
    mod = types.ModuleType(name)
    for hook_name, fn in hooks.items():
        fn.__name__ = hook_name
        setattr(mod, hook_name, hookimpl(fn))
    return mod


def failures_of(registry: Registry, plugin: str) -> list[PluginFailure]:
    return [f for f in registry.failures if f.entry_point == plugin]


# ---- discovery -------------------------------------------------------------------------------------------------

def test_discovery_registers_every_kind():
    mod = module_plugin("more_cells", seqwb_cells=lambda: [cell("m-cell", gates=("z",), state_names=("h", "c"))])
    reg = discover(entry_points=False, extra=[("good", GoodPlugin()), ("more", mod)])
    assert reg.failures == []
    assert reg.plugins == [(IN_CODE, "good", ""), (IN_CODE, "more", "")]
    expected = {"cell": {"t-cell", "m-cell"}, "architecture": {"t-block"}, "task": {"t-task"},
                "decoder": {"t-decoder"}, "template": {"t-template"}, "feature_track": {"t-track"}}
    assert {kind: set(table) for kind, table in reg.items.items()} == expected
    for kind, spec in reg.all():
        assert isinstance(spec, SPEC_KINDS[kind])
        assert spec.distribution == IN_CODE
        assert spec.plugin == ("more" if spec.id == "m-cell" else "good")
    assert reg.cell("m-cell").state_names == ("h", "c")
    assert reg.block("t-block").outputs[0].name == "y"
    assert reg.task("t-task").generative
    assert reg.decoder("t-decoder").title == "decoder t-decoder"
    assert reg.template("t-template").task == "t-task"
    assert reg.has("cell", "t-cell") and not reg.has("cell", "t-block")


def test_discovery_keeps_the_spec_data_and_does_not_resolve_factories():
    # The factories name modules that do not exist: discovery must not import them.
    reg = discover(entry_points=False, extra=[("good", GoodPlugin())])
    spec = reg.cell("t-cell")
    assert spec.factory == "tests_fake.cells:Cell"
    assert spec.default_params() == SizeParams(4)
    assert "tests_fake" not in sys.modules
    with pytest.raises(FactoryError):
        spec.load()


def test_hooks_returning_none_or_nothing_are_fine():
    mod = module_plugin("quiet", seqwb_cells=lambda: None, seqwb_tasks=lambda: [])
    reg = discover(entry_points=False, extra=[("quiet", mod)])
    assert reg.failures == [] and list(reg.all()) == []
    assert reg.plugins == [(IN_CODE, "quiet", "")]


def test_no_plugins():
    reg = discover(entry_points=False)
    assert reg.failures == [] and reg.plugins == [] and list(reg.all()) == []
    assert set(reg.items) == set(SPEC_KINDS)


# ---- failures --------------------------------------------------------------------------------------------------

class RaisingPlugin:
    @hookimpl
    def seqwb_cells(self):
        raise RuntimeError("kaboom")

    @hookimpl
    def seqwb_tasks(self):
        return [task("raiser-task")]


def test_a_raising_hook_is_recorded_and_the_rest_loads():
    reg = discover(entry_points=False, extra=[("raiser", RaisingPlugin()), ("good", GoodPlugin())])
    assert len(reg.failures) == 1
    failure = reg.failures[0]
    assert failure.entry_point == "raiser"
    assert failure.distribution == IN_CODE
    assert failure.hook == "seqwb_cells"
    assert failure.error == "RuntimeError: kaboom"
    assert "Traceback" in failure.detail and "kaboom" in failure.detail
    assert failure.message() == f"plugin {IN_CODE} (raiser, seqwb_cells) failed: RuntimeError: kaboom"
    # the raising plugin's other hook and the other plugin still contribute
    assert reg.has("task", "raiser-task")
    assert {kind for kind, _ in reg.all()} == set(SPEC_KINDS)
    assert ("(registered in code)", "raiser", "") in reg.plugins


def _endless_generator():
    while True:   # never consumed: only a finished list (or tuple) is taken from a hook
        yield cell("g1")


# (case, the hook's body, expected part of the recorded error); bodies run inside the hook, at discovery
BAD_RESULTS = [
    ("wrong-spec-kind", lambda: [task("sneaky")], "TypeError: seqwb_cells returned TaskSpec, expected CellSpec"),
    ("not-a-spec", lambda: [{"id": "dict"}], "TypeError: seqwb_cells returned dict, expected CellSpec"),
    ("not-iterable", lambda: 42, "TypeError"),
    ("space-in-id", lambda: [cell("has space")], "invalid id 'has space'"),
    ("empty-id", lambda: [cell("")], "invalid id ''"),
    ("non-str-id", lambda: [cell(7)], "invalid id 7"),
    ("params-not-dataclass", lambda: [cell("p1", params=dict)], "params must be a dataclass type"),
    ("params-instance", lambda: [cell("p2", params=SizeParams())], "params must be a dataclass type"),
    ("params-without-default", lambda: [cell("p3", params=RequiredParams)], "every parameter needs a default"),
    ("factory-no-colon", lambda: [cell("f1", factory="tests_fake.cells.Cell")], "factory must be a 'module:attr'"),
    ("factory-callable", lambda: [cell("f2", factory=print)], "factory must be a 'module:attr'"),
    ("endless-generator", _endless_generator,
     "TypeError: seqwb_cells must return a list of CellSpec, got generator (a generator is not taken"),
    ("a-set", lambda: {cell("s1")}, "TypeError: seqwb_cells must return a list of CellSpec, got set"),
    ("too-many", lambda: [cell(f"c{i}") for i in range(1001)],
     "ValueError: seqwb_cells returned 1,001 items; at most 1,000 are taken from one hook"),
]


@pytest.mark.parametrize("name, body, error", BAD_RESULTS, ids=[c[0] for c in BAD_RESULTS])
def test_a_bad_contribution_is_recorded_and_the_rest_loads(name, body, error):
    mod = module_plugin(name, seqwb_cells=body, seqwb_decoders=lambda: [decoder(f"{name}-decoder")])
    reg = discover(entry_points=False, extra=[("good", GoodPlugin()), (name, mod)])
    assert len(reg.failures) == 1, reg.failures
    failure = reg.failures[0]
    assert (failure.entry_point, failure.hook, failure.distribution) == (name, "seqwb_cells", IN_CODE)
    assert error in failure.error
    assert "\n" not in failure.error
    assert failure.detail
    assert set(reg.items["cell"]) == {"t-cell"}
    assert reg.has("decoder", f"{name}-decoder")
    assert {kind for kind, _ in reg.all()} == set(SPEC_KINDS)


def test_one_bad_spec_does_not_drop_its_siblings():
    mod = module_plugin("mixed", seqwb_cells=lambda: [cell("a"), cell("b c"), task("x"), cell("d")])
    reg = discover(entry_points=False, extra=[("mixed", mod)])
    assert set(reg.items["cell"]) == {"a", "d"}
    assert [f.hook for f in reg.failures] == ["seqwb_cells", "seqwb_cells"]
    assert "invalid id 'b c'" in reg.failures[0].error
    assert "returned TaskSpec" in reg.failures[1].error


def test_invalid_block_ports_are_a_failure():
    mod = module_plugin("ports", seqwb_architectures=lambda: [
        block("dup-ports", inputs=(PortSpec("x", "vectors[T]"), PortSpec("x", "state"))), block("fine")])
    reg = discover(entry_points=False, extra=[("ports", mod)])
    assert set(reg.items["architecture"]) == {"fine"}
    assert len(reg.failures) == 1 and "duplicate port names" in reg.failures[0].error


def test_unknown_port_type_fails_inside_the_hook():
    def bad_ports():
        return [block("weird", inputs=(PortSpec("x", "pixels"),))]

    reg = discover(entry_points=False, extra=[("weird", module_plugin("weird", seqwb_architectures=bad_ports))])
    assert reg.items["architecture"] == {}
    assert reg.failures[0].hook == "seqwb_architectures"
    assert "unknown port type 'pixels'" in reg.failures[0].error


def test_an_id_two_plugins_register_is_used_by_neither_and_both_are_reported():
    first = module_plugin("first", seqwb_cells=lambda: [cell("dup", description="first")])
    second = module_plugin("second", seqwb_cells=lambda: [cell("dup", description="second"), cell("other")],
                           seqwb_tasks=lambda: [task("dup")])  # the same id in another kind is no clash
    for order in ([("first", first), ("second", second)], [("second", second), ("first", first)]):
        reg = discover(entry_points=False, extra=order)
        assert not reg.has("cell", "dup")      # whichever plugin was found first
        assert reg.has("cell", "other") and reg.has("task", "dup")
        assert sorted(f.entry_point for f in reg.failures) == ["first", "second"]
        assert {f.category for f in reg.failures} == {"conflict"} and {f.hook for f in reg.failures} == {"seqwb_cells"}
        assert "cell 'dup' is registered by (registered in code) (first) and (registered in code) (second), so " \
               "neither is used" in reg.failures[0].error
        assert [s.description for s in reg.conflicts["cell"]["dup"]] == [
            dict(order)[name].seqwb_cells()[0].description for name, _ in order]
        with pytest.raises(ContributionConflictError, match="neither is used"):
            reg.cell("dup")


def test_duplicate_id_within_one_plugin():
    mod = module_plugin("twice", seqwb_cells=lambda: [cell("same"), cell("same")])
    reg = discover(entry_points=False, extra=[("twice", mod)])
    assert set(reg.items["cell"]) == {"same"} and len(reg.failures) == 1


def test_a_plugin_that_cannot_register_is_recorded():
    def seqwb_cells(unexpected_argument):  # hooks take no arguments: pluggy refuses the plugin
        return [cell("never")]

    bad = module_plugin("bad_signature", seqwb_cells=seqwb_cells)
    reg = discover(entry_points=False, extra=[("bad", bad), ("good", GoodPlugin())])
    assert not reg.has("cell", "never") and reg.has("cell", "t-cell")
    assert len(reg.failures) == 1
    failure = reg.failures[0]
    assert failure.entry_point == "bad" and failure.hook == ""
    assert "unexpected_argument" in failure.error
    assert [p[1] for p in reg.plugins] == ["good"]


def test_the_same_plugin_name_twice_is_recorded():
    reg = discover(entry_points=False, extra=[("same", GoodPlugin()), ("same", RaisingPlugin())])
    assert reg.has("cell", "t-cell") and not reg.has("task", "raiser-task")
    assert [f.entry_point for f in reg.failures] == ["same"]
    assert "ValueError" in reg.failures[0].error


# ---- entry points (in process, over a throw-away distribution) -------------------------------------------------

GROUP = "seqwb.loader-test.plugins"


@pytest.fixture()
def fake_distribution(tmp_path, monkeypatch):
    """``loader-test-dist`` 2.5 with three entry points in GROUP: a good module, a broken import, a bad target."""
    pkg = tmp_path / "loader_test_pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "good.py").write_text(textwrap.dedent("""
        from dataclasses import dataclass
        from workbench.hookspecs import hookimpl
        from workbench.schema.specs import CellSpec

        @dataclass
        class P:
            size: int = 3

        @hookimpl
        def seqwb_cells():
            return [CellSpec(id="ep-cell", title="EP cell", version="2.5", params=P, factory="x.y:Z")]
    """))
    (pkg / "broken.py").write_text("raise ImportError('needs libfoo')\n")
    info = tmp_path / "loader_test_dist-2.5.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: loader-test-dist\nVersion: 2.5\n")
    (info / "entry_points.txt").write_text(
        f"[{GROUP}]\ngood = loader_test_pkg.good\nbroken = loader_test_pkg.broken\n"
        "missing = loader_test_pkg.nowhere\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield
    for name in [m for m in sys.modules if m.startswith("loader_test_pkg")]:
        del sys.modules[name]


def test_entry_points_are_loaded_with_their_distribution(fake_distribution):
    reg = discover(group=GROUP)
    spec = reg.cell("ep-cell")
    assert (spec.distribution, spec.plugin) == ("loader-test-dist", "good")
    assert ("loader-test-dist", "good", "2.5") in reg.plugins
    by_name = {f.entry_point: f for f in reg.failures}
    assert set(by_name) == {"broken", "missing"}
    assert by_name["broken"].distribution == "loader-test-dist"
    assert by_name["broken"].error == "ImportError: needs libfoo"
    assert by_name["broken"].hook == ""
    assert by_name["missing"].error.startswith("ModuleNotFoundError")


def test_entry_points_and_extras_together(fake_distribution):
    reg = discover(group=GROUP, extra=[("good-extra", GoodPlugin())])
    assert reg.cell("ep-cell").distribution == "loader-test-dist"
    assert reg.cell("t-cell").distribution == IN_CODE
    assert not discover(group=GROUP, entry_points=False).has("cell", "ep-cell")


def test_an_unknown_group_finds_nothing():
    reg = discover(group="seqwb.no-such-group-anywhere")
    assert reg.failures == [] and reg.plugins == [] and list(reg.all()) == []


# ---- Registry.get ----------------------------------------------------------------------------------------------

def test_unknown_id_suggests_the_closest():
    reg = discover(entry_points=False, extra=[("good", GoodPlugin())])
    with pytest.raises(UnknownContributionError) as info:
        reg.get("cell", "t-cel")
    msg = str(info.value)
    assert "unknown cell 't-cel'" in msg
    assert "(did you mean 't-cell'?)" in msg
    assert "installed cells: t-cell" in msg
    with pytest.raises(UnknownContributionError, match="did you mean 't-task'"):
        reg.task("t-tsk")
    with pytest.raises(UnknownContributionError) as info:
        reg.decoder("beam-search-9000")
    assert "did you mean" not in str(info.value)
    assert issubclass(UnknownContributionError, LookupError)


def test_unknown_id_in_an_empty_registry():
    with pytest.raises(UnknownContributionError, match=r"installed templates: \(none\)"):
        Registry().template("char-lm")


# ---- no global state -------------------------------------------------------------------------------------------

def test_each_discover_gives_a_fresh_registry():
    one = discover(entry_points=False, extra=[("good", GoodPlugin())])
    two = discover(entry_points=False, extra=[("raiser", RaisingPlugin())])
    assert one is not two
    assert one.items is not two.items and one.failures is not two.failures
    assert all(one.items[k] is not two.items[k] for k in SPEC_KINDS)
    assert one.has("cell", "t-cell") and not two.has("cell", "t-cell")
    assert two.has("task", "raiser-task") and not one.has("task", "raiser-task")
    assert one.failures == [] and len(two.failures) == 1
    one.add("cell", cell("added-later"))
    assert not discover(entry_points=False, extra=[("good", GoodPlugin())]).has("cell", "added-later")
    # the same plugin object can be used again (no manager is shared between calls)
    plugin = GoodPlugin()
    assert discover(entry_points=False, extra=[("p", plugin)]).has("cell", "t-cell")
    assert discover(entry_points=False, extra=[("p", plugin)]).has("cell", "t-cell")


def test_fresh_registries_do_not_share_defaults():
    a, b = Registry(), Registry()
    a.add("cell", cell("only-in-a"))
    a.failures.append(PluginFailure("d", "e", "err"))
    assert b.items["cell"] == {} and b.failures == [] and b.plugins == []


def test_make_plugin_manager_is_fresh_and_knows_every_hook():
    pm1, pm2 = make_plugin_manager(), make_plugin_manager()
    assert pm1 is not pm2
    assert isinstance(pm1, pluggy.PluginManager) and pm1.project_name == hookspecs.PROJECT_NAME
    pm1.register(GoodPlugin(), name="good")
    assert pm2.get_plugins() == set()
    for hook_name in hookspecs.HOOKS:
        assert getattr(pm2.hook, hook_name).spec is not None


# ---- resolve ---------------------------------------------------------------------------------------------------

def test_resolve():
    assert resolve("json:dumps") is json.dumps
    assert resolve("os.path:join") is __import__("os").path.join
    assert resolve("collections:OrderedDict.fromkeys") == __import__("collections").OrderedDict.fromkeys
    assert cell(factory="json:loads").load() is json.loads


def test_resolve_missing_module():
    with pytest.raises(FactoryError) as info:
        resolve("no_such_module_for_seqwb_tests:thing")
    msg = str(info.value)
    assert msg == ("cannot import 'no_such_module_for_seqwb_tests' (for 'no_such_module_for_seqwb_tests:thing'): "
                   "ModuleNotFoundError: No module named 'no_such_module_for_seqwb_tests'")
    assert isinstance(info.value, ImportError)


def test_resolve_missing_attribute():
    with pytest.raises(FactoryError) as info:
        resolve("json:no_such_function")
    assert str(info.value) == "'json' has no attribute 'no_such_function' (for 'json:no_such_function')"
    with pytest.raises(FactoryError, match="has no attribute 'OrderedDict.nope'"):
        resolve("collections:OrderedDict.nope")


def test_resolve_module_that_fails_on_import(tmp_path, monkeypatch):
    (tmp_path / "seqwb_test_explodes.py").write_text("raise RuntimeError('exploded at import')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(FactoryError, match="cannot import 'seqwb_test_explodes'.*RuntimeError: exploded at import"):
        resolve("seqwb_test_explodes:X")
    sys.modules.pop("seqwb_test_explodes", None)


# ---- the hook contract -----------------------------------------------------------------------------------------

def _defined_hooks() -> dict[str, typing.Callable]:
    return {name: fn for name, fn in vars(hookspecs.SeqwbHookSpecs).items()
            if callable(fn) and not name.startswith("_")}


def test_hooks_names_exactly_the_defined_hooks():
    defined = _defined_hooks()
    assert list(hookspecs.HOOKS) == list(defined)  # same hooks, in definition order
    assert all(name.startswith(hookspecs.PROJECT_NAME + "_") for name in defined)
    assert sorted(hookspecs.HOOKS.values()) == sorted(SPEC_KINDS)
    pm = make_plugin_manager()
    registered = {name for name in vars(pm.hook) if name.startswith(hookspecs.PROJECT_NAME + "_")}
    assert registered == set(defined)


@pytest.mark.parametrize("hook_name", list(hookspecs.HOOKS))
def test_every_hook_is_documented(hook_name):
    fn = _defined_hooks()[hook_name]
    assert getattr(fn, hookspecs.PROJECT_NAME + "_spec", None) is not None, f"{hook_name} is not a @hookspec"
    doc = inspect.getdoc(fn)
    assert doc and len(doc.split()) >= 5, f"{hook_name} needs a docstring"
    assert "factory" in doc  # every hook says how its specs' factory is called


@pytest.mark.parametrize("hook_name", list(hookspecs.HOOKS))
def test_every_hook_takes_no_arguments(hook_name):
    fn = _defined_hooks()[hook_name]
    assert list(inspect.signature(fn).parameters) == ["self"]
    # what plugins implement: pluggy sees no arguments at all
    assert getattr(make_plugin_manager().hook, hook_name).spec.argnames == ()


@pytest.mark.parametrize("hook_name", list(hookspecs.HOOKS))
def test_every_hook_returns_a_list_of_its_spec_type(hook_name):
    fn = _defined_hooks()[hook_name]
    ret = typing.get_type_hints(fn, globalns=vars(hookspecs))["return"]
    assert typing.get_origin(ret) is list
    assert typing.get_args(ret) == (SPEC_KINDS[hookspecs.HOOKS[hook_name]],)


def test_module_docstring_example_works():
    assert hookspecs.__doc__ and "@hookimpl" in hookspecs.__doc__
    assert hookspecs.ENTRY_POINT_GROUP == "seqwb.plugins"


def test_hookimpl_can_be_imported_first(subprocess_env):
    # A plugin module's first line is usually ``from workbench.hookspecs import hookimpl``; that must work in a
    # fresh interpreter (hookspecs and the loader import each other).
    code = ("from workbench.hookspecs import hookimpl\n"
            "from workbench.plugin_system import discover\n"
            "print(type(discover(entry_points=False)).__name__)\n")
    proc = subprocess.run([sys.executable, "-c", code], env=subprocess_env(), capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "Registry"
