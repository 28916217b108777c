"""The plugin contracts, as checks any plugin can run against itself: one set per kind of contribution.

Each check has a name (``cell.state-shapes``, ``task.loss-last-step``, ...; :data:`CHECKS` lists them with what
they verify) and fails with a :class:`ContractError` (an ``AssertionError``, so pytest shows it as a failed
assertion) whose message names the contribution and its plugin, the check, what is wrong and the likely fix::

    cell 'my-cells.mgu' from plugin mgu (distribution my-cells): cell.state-shapes: init_state gives 'h' of
    shape (3, 1), expected [batch, hidden] = (3, 6) (a state that only broadcasts hides a wrong shape); likely
    fix: return one torch.zeros(batch, hidden_size) per name in state_names

Entry points: ``check_cell_spec``, ``check_block_spec``, ``check_task_spec``, ``check_decoder_spec``,
``check_template_spec``, ``check_feature_track_spec`` (a registered spec), ``check_spec`` (any kind) and
:func:`check_registry` (every contribution, what ``seqwb plugins --check`` runs).  ``check_cell(factory,
params)`` checks a cell factory with other parameter values.  The pytest plugin
(:mod:`workbench.testing.pytest_plugin`) turns them into fixtures.

The checks of each kind live in their own module (``cell_contract``, ``block_contract``, ``task_contract``,
``decoder_contract``, ``template_contract``, ``feature_track_contract``, sharing ``contract_base``); this module
is where they are imported from, and it runs them over a whole registry.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass
from typing import Any, Callable, Optional

import torch

from workbench.testing.block_contract import check_block_spec
from workbench.testing.cell_contract import (check_cell, check_cell_spec, check_finite, check_gradcheck,
                                             check_init_and_after_step, check_recurrent_weights, check_state,
                                             check_step_matches_sequence, check_traced_matches_steps)
from workbench.testing.contract_base import CHECKS, ContractError
from workbench.testing.contract_base import who_is as _who
from workbench.testing.decoder_contract import check_decoder_spec
from workbench.testing.feature_track_contract import check_feature_track_spec
from workbench.testing.task_contract import check_task_spec
from workbench.testing.template_contract import check_template_spec

__all__ = [
    "CHECKS", "KINDS", "ContractError", "ContractResult", "check_block_spec", "check_cell", "check_cell_spec",
    "check_decoder_spec", "check_feature_track_spec", "check_finite", "check_gradcheck", "check_init_and_after_step",
    "check_recurrent_weights", "check_registry", "check_spec", "check_state", "check_step_matches_sequence",
    "check_task_spec", "check_template_spec", "check_traced_matches_steps",
]

#: the kinds of contribution, as the registry names them
KINDS = ("cell", "architecture", "task", "decoder", "template", "feature_track")


def check_spec(kind: str, spec: Any, registry: Any) -> None:
    """Run the contract of ``kind`` on ``spec`` with its default parameters."""
    if kind == "cell":
        check_cell_spec(spec)
    elif kind == "architecture":
        check_block_spec(spec, registry)
    elif kind == "task":
        check_task_spec(spec)
    elif kind == "decoder":
        check_decoder_spec(spec)
    elif kind == "template":
        check_template_spec(spec, registry)
    elif kind == "feature_track":
        check_feature_track_spec(spec)
    else:
        raise ValueError(f"unknown kind {kind!r}; kinds: {', '.join(KINDS)}")


@dataclass(frozen=True)
class ContractResult:
    """One contribution checked: ``status`` is "passed", "failed" or "not checked" (a task whose default
    parameters need data), ``check`` the failed check's name and ``message`` the failure's line."""

    kind: str
    id: str
    distribution: str
    plugin: str
    status: str
    check: str = ""
    message: str = ""
    detail: str = ""


def check_registry(registry: Any, *, distributions: Optional[set[str]] = None, builtins: bool = True,
                   progress: Optional[Callable[[int, int], None]] = None) -> list[ContractResult]:
    """Run the contract of every contribution in ``registry`` (of ``distributions`` only, when given; without
    the built-ins when ``builtins`` is False).  Never raises for a plugin's fault: each result says what happened.

    ``progress(done, total)`` is called before each contribution and once at the end; whatever it raises stops the
    run (the window's worker raises there when the user cancels).
    """
    from workbench.plugin_system.user_settings import BUILTIN_DISTRIBUTION, normalize
    wanted = {normalize(d) for d in distributions} if distributions else None
    torch.manual_seed(0)   # the checks draw their own seeded numbers; a plugin's init draws from here
    chosen = [(kind, spec) for kind, spec in registry.all()
              if (wanted is None or normalize(spec.distribution or "") in wanted)
              and (builtins or normalize(spec.distribution or "") != BUILTIN_DISTRIBUTION)]
    results = []
    for done, (kind, spec) in enumerate(chosen):
        if progress is not None:
            progress(done, len(chosen))
        base = dict(kind=kind, id=spec.id, distribution=spec.distribution, plugin=spec.plugin)
        try:
            with torch.random.fork_rng(devices=[]):
                check_spec(kind, spec, registry)
        except ContractError as exc:
            status = "not checked" if exc.needs_setup else "failed"
            results.append(ContractResult(**base, status=status, check=exc.check, message=str(exc),
                                          detail=traceback.format_exc()))
            continue
        except Exception as exc:  # noqa: BLE001 - a plugin's code failing outside what a check expected
            results.append(ContractResult(**base, status="failed", check=f"{_kind_prefix(kind)}.error",
                                          message=f"{_who(kind, spec)}: {type(exc).__name__}: {exc}",
                                          detail=traceback.format_exc()))
            continue
        results.append(ContractResult(**base, status="passed"))
    if progress is not None:
        progress(len(chosen), len(chosen))
    return results


def _kind_prefix(kind: str) -> str:
    return {"architecture": "block", "feature_track": "feature-track"}.get(kind, kind)

