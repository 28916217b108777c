"""The plugin contracts (workbench.testing.contracts): every deliberately broken contribution of every kind in
tests/fixtures/contract_breakers is caught by the check it breaks, with that check's name, its plugin and a fix;
the good ones and the built-ins pass; the pytest fixtures run the same checks; the template format."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
import torch

from workbench.plugin_system import discover
from workbench.testing import contracts
from workbench.testing.contracts import CHECKS, ContractError, check_registry

torch.set_num_threads(1)

BREAKERS = Path(__file__).resolve().parents[1] / "fixtures" / "contract_breakers"
IN_CODE = "(registered in code)"


@pytest.fixture(scope="module")
def breakers():
    """The breakers' registration module, and a registry with it and the built-ins."""
    sys.path.insert(0, str(BREAKERS))
    try:
        import seqwb_contract_breakers.plugin as plugin
        yield plugin, discover(extra=[("breakers", plugin)])
    finally:
        sys.path.remove(str(BREAKERS))
        for name in [m for m in sys.modules if m.startswith("seqwb_contract_breakers")]:
            del sys.modules[name]


@pytest.fixture(scope="module")
def breaker_results(breakers):
    _, reg = breakers
    return {r.id: r for r in check_registry(reg, distributions={IN_CODE})}


def test_every_check_has_a_breaker_and_every_kind_a_good_contribution(breakers):
    plugin, reg = breakers
    assert not reg.failures
    assert set(plugin.EXPECTED.values()) - {None} == set(CHECKS)
    good = [i for i, check in plugin.EXPECTED.items() if check is None]
    assert sorted(kind for kind in contracts.KINDS for i in good if reg.has(kind, i)) == sorted(contracts.KINDS)


def test_each_breaker_is_caught_by_its_check_with_a_named_message(breakers, breaker_results):
    plugin, _ = breakers
    assert set(breaker_results) == set(plugin.EXPECTED)
    for spec_id, check in plugin.EXPECTED.items():
        result = breaker_results[spec_id]
        if check is None:
            assert result.status == "passed", result.message
            continue
        assert (result.status, result.check) == ("failed", check), (spec_id, result.message)
        kind = {"block": "block", "feature-track": "feature track"}.get(check.split(".")[0], check.split(".")[0])
        # names the contribution and its plugin, the check, what is wrong and the fix, on one line
        assert result.message.startswith(f"{kind} {spec_id!r} from plugin breakers (distribution {IN_CODE}): "
                                         f"{check}: "), result.message
        assert "; likely fix: " in result.message and "\n" not in result.message


@pytest.mark.parametrize("spec_id, words", [
    ("broadcast-state", "init_state gives 'h' of shape (3, 1), expected [batch, hidden] = (3, 6)"),
    ("non-finite", "step 0 gives non-finite values from finite inputs"),
    ("wrong-fused", "sequence() and step() outputs differ by"),
    ("old-default-loss-last-step", "loss_last_step() of the probe's per-step outputs raised ValueError"),
    ("batch-first-task", "input 'tokens' (tokens[T]) has shape (4, 6) in a batch of 4"),
    ("width-not-greedy", "width 1 gives"),
    ("ignores-eos", "the result holds the end token"),
    ("train-typo", "unknown setting 'batchsize' (did you mean 'batch_size'?)"),
    ("bad-ui-hint", "parameter 'colour' has ui='colour', which the window does not know"),
])
def test_the_messages_say_what_is_wrong(breaker_results, spec_id, words):
    assert words in breaker_results[f"seqwb-contract-breakers.{spec_id}"].message


def test_the_check_functions_raise_contract_errors_that_are_assertions(breakers):
    _, reg = breakers
    with pytest.raises(AssertionError) as info:
        contracts.check_cell_spec(reg.cell("seqwb-contract-breakers.bad-recurrent"))
    assert isinstance(info.value, ContractError) and info.value.check == "cell.recurrent-weights"
    assert info.value.fix.startswith("name only the hidden-to-hidden matrices")
    # a bare factory is named by its class
    factory = reg.cell("seqwb-contract-breakers.non-finite").load()
    with pytest.raises(ContractError, match=r"^cell NonFinite: cell\.finite: "):
        contracts.check_cell(factory, None)


def test_the_builtins_pass_except_what_needs_data(breakers):
    _, reg = breakers
    results = check_registry(reg, distributions={"sequence-workbench"})
    assert len(results) == sum(1 for _ in reg.all()) - len(breakers[0].EXPECTED)
    failed = {(r.kind, r.id, r.check) for r in results if r.status == "failed"}
    assert failed == set()
    unchecked = {(r.kind, r.id): r.message for r in results if r.status == "not checked"}
    assert set(unchecked) == {("architecture", "image-encoder"), ("task", "word-lm")}
    assert "pass in_sizes= that fit the block's parameters" in unchecked[("architecture", "image-encoder")]
    assert "no word-LM data" in unchecked[("task", "word-lm")]
    # with the arguments it needs, the image encoder passes
    contracts.check_block_spec(reg.block("image-encoder"), reg, in_sizes={"x": 3 * 32 * 32})


def test_a_plugin_error_outside_a_check_is_reported_not_raised():
    from workbench.api import CellSpec, NoParams, hookimpl

    class Plugin:
        @hookimpl
        def seqwb_cells(self):
            return [CellSpec(id="import-fails", title="x", version="1", params=NoParams,
                             factory="no_such_module_anywhere:Cell")]

    (result,) = check_registry(discover(entry_points=False, extra=[("p", Plugin())]))
    assert (result.status, result.check) == ("failed", "cell.build")
    assert "cannot import 'no_such_module_anywhere'" in result.message


# ---- the pytest fixtures -------------------------------------------------------------------------------------------

def test_the_fixtures_run_the_same_checks(pytester_free_registry):
    reg, fixtures = pytester_free_registry
    fixtures["seqwb_check_cell"]("gru")
    fixtures["seqwb_check_cell"]("lstm", {"fused": False})
    fixtures["seqwb_check_block"]("rnn", {"cell": "gru", "hidden_size": 3})
    task = fixtures["seqwb_check_task"]("temporal-order", {"length": 12})
    assert task.params.length == 12
    fixtures["seqwb_check_decoder"]("beam", {"width": 2})
    doc = fixtures["seqwb_check_template"]("adding-problem-gru")
    assert doc["task"]["id"] == "adding"
    fixtures["seqwb_check_feature_track"]("quotes")
    fixtures["seqwb_check_plugin"]("sequence-workbench")
    with pytest.raises(pytest.fail.Exception, match="no contribution of the distribution 'nobody'"):
        fixtures["seqwb_check_plugin"]("nobody")


@pytest.fixture()
def pytester_free_registry():
    """The fixtures of workbench.testing.pytest_plugin, called as pytest would (their functions take the
    registry fixture as argument)."""
    from workbench.testing import pytest_plugin
    reg = discover()
    names = ["seqwb_check_cell", "seqwb_check_block", "seqwb_check_task", "seqwb_check_decoder",
             "seqwb_check_template", "seqwb_check_feature_track", "seqwb_check_plugin"]
    return reg, {n: getattr(pytest_plugin, n).__wrapped__(reg) for n in names}


# ---- the template format -------------------------------------------------------------------------------------------

def test_template_problems_lists_every_fault_in_a_document():
    from workbench.core.plugin_checks import template_problems
    reg = discover()
    spec = reg.template("char-lm")
    good = spec.load()(spec.params())
    assert template_problems(good, reg, spec) == []
    bad = {**good, "trian": {}, "train": {"lr": -1.0}, "decode": {"decoder": "greedy", "params": {"max_len": 0},
                                                                   "promt": "x"}}
    problems = template_problems(bad, reg, spec)
    assert "unknown key 'trian' (did you mean 'train'?)" in problems[0]
    assert any(re.search(r"train\.lr: -1\.0 is below the minimum 0", p) for p in problems), problems
    assert any("unknown decode key 'promt' (did you mean 'prompt'?)" in p for p in problems)
    assert any("decode.max_len: 0 is below the minimum 1" in p for p in problems)
    other = {**good, "task": {"id": "sentiment", "params": {}}}
    assert "the document's task is 'sentiment', the spec says 'char-lm'" in template_problems(other, reg, spec)
    wired = {**good, "graph": {"nodes": good["graph"]["nodes"], "links": good["graph"]["links"][:-1]}}
    assert any("required input" in p or "not connected" in p or "output" in p
               for p in template_problems(wired, reg, spec)), template_problems(wired, reg, spec)
    assert template_problems([], reg) == ["the factory returned list, not a project document (a dict)"]
