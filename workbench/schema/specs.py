"""Contribution specs: plain data that plugins return from their hooks.

A spec never holds a torch object.  Code is referenced by a ``"module:attr"`` string and imported only when it is
used (:func:`resolve`), so discovering plugins stays cheap and never imports torch or Qt.
"""

from __future__ import annotations

import dataclasses
import importlib
import re
from dataclasses import dataclass, field
from typing import Any, Callable

# Port types for the model graph.  ``[T]`` marks a sequence (one value per timestep).
PORT_TYPES = {
    "tokens[T]": "a sequence of token ids",
    "vectors[T]": "a sequence of feature vectors",
    "vector": "one feature vector per example",
    "state": "a recurrent state (e.g. an encoder's final state)",
    "features": "conditioning features (e.g. image features)",
    "logits[T]": "unnormalised scores per timestep",
    "logits": "unnormalised scores per example",
    "values[T]": "a sequence of real values (regression)",
    "values": "real values per example (regression)",
}


@dataclass(frozen=True)
class PortSpec:
    """A typed input or output of a block.  ``size`` names a task size (``"vocab"``) for task ports."""

    name: str
    type: str
    required: bool = True
    doc: str = ""
    size: str | None = None

    def __post_init__(self) -> None:
        if self.type not in PORT_TYPES:
            raise ValueError(f"port {self.name!r}: unknown port type {self.type!r}; known: {', '.join(PORT_TYPES)}")


#: A namespace: a distribution's name as pip compares names (PEP 503: lower case, runs of ``-_.`` as one ``-``).
NAMESPACE_RE = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")


def split_id(spec_id: str) -> tuple[str, str]:
    """``"seqwb-indrnn.indrnn"`` -> ``("seqwb-indrnn", "indrnn")``; a bare id -> ``("", id)``.

    A third-party id is namespaced by its distribution, ``NAMESPACE.NAME``: a distribution owns the ids under its
    (normalised) name, so two plugins cannot both claim one.  Built-in ids are bare.  The namespace is the part
    before the first dot, because a normalised distribution name never contains one."""
    namespace, dot, name = spec_id.partition(".")
    return (namespace, name) if dot else ("", spec_id)


def id_problem(spec_id: object) -> str:
    """Why ``spec_id`` cannot be an id ("" when it can): non-empty, no white space, and ``NAMESPACE.NAME`` with a
    PEP 503 normalised distribution name when it has a dot."""
    if not isinstance(spec_id, str) or not spec_id or any(c.isspace() for c in spec_id):
        return f"invalid id {spec_id!r}: a non-empty string without spaces is required"
    namespace, name = split_id(spec_id)
    if "." in spec_id and not (NAMESPACE_RE.fullmatch(namespace) and name and "." not in name):
        return (f"invalid id {spec_id!r}: a namespaced id is 'DISTRIBUTION.NAME', with the distribution's name in "
                f"lower case with '-' (as pip normalises it) and a NAME without dots")
    return ""


@dataclass(frozen=True)
class _SpecBase:
    id: str
    title: str
    version: str
    params: type
    factory: str
    description: str = ""
    #: ids this contribution had before (e.g. a bare id from before it was namespaced).  A project file saved
    #: with a former id opens with this contribution when the file says it came from the same distribution.
    former_ids: tuple[str, ...] = ()
    # Filled in by the loader: where the spec came from.
    distribution: str = ""
    plugin: str = ""

    def check(self) -> None:
        problem = id_problem(self.id)
        if problem:
            raise ValueError(problem)
        if isinstance(self.former_ids, str) or not isinstance(self.former_ids, (tuple, list)):
            raise ValueError(f"{self.id}: former_ids must be a tuple of ids, got {self.former_ids!r}")
        for former in self.former_ids:
            problem = id_problem(former)
            if problem:
                raise ValueError(f"{self.id}: former id: {problem}")
            if former == self.id:
                raise ValueError(f"{self.id}: former_ids lists the spec's own id")
        if not (isinstance(self.params, type) and dataclasses.is_dataclass(self.params)):
            raise ValueError(f"{self.id}: params must be a dataclass type, got {self.params!r}")
        if not isinstance(self.factory, str) or ":" not in self.factory:
            raise ValueError(f"{self.id}: factory must be a 'module:attr' string, got {self.factory!r}")
        from workbench.schema.params import field_info
        module, _, attr = self.factory.partition(":")
        if not module or not attr:
            raise ValueError(f"{self.id}: factory must be a 'module:attr' string, got {self.factory!r}")
        field_info(self.params)  # unsupported field types fail here, at discovery, not later in a form
        # Every field needs a default so a spec can be instantiated without arguments.
        try:
            self.params()
        except TypeError as exc:
            raise ValueError(f"{self.id}: every parameter needs a default ({exc})") from None

    def default_params(self) -> Any:
        return self.params()

    def load(self) -> Any:
        return resolve(self.factory)


@dataclass(frozen=True)
class CellSpec(_SpecBase):
    """A recurrent cell.  ``factory(input_size, hidden_size, params) -> workbench.core.cells.Cell``."""

    gates: tuple[str, ...] = ()
    state_names: tuple[str, ...] = ("h",)
    has_fused: bool = False
    paper: str = ""


@dataclass(frozen=True)
class BlockSpec(_SpecBase):
    """A block type for the model graph (an "architecture" contribution).

    ``factory(params, in_sizes, out_sizes, ctx) -> workbench.core.blocks.Block``.
    ``infer`` is an optional torch-free ``"module:attr"`` function
    ``infer(params, in_sizes, wanted) -> out_sizes`` used for size inference; without it every output takes the
    size of the first connected input.
    ``summary`` is a format string over the params for the canvas (``"{cell} · {hidden_size}"``).
    """

    category: str = "other"
    inputs: tuple[PortSpec, ...] = ()
    outputs: tuple[PortSpec, ...] = ()
    infer: str | None = None
    summary: str = ""
    recurrent: bool = False

    def check(self) -> None:
        super().check()
        names = [p.name for p in self.inputs] + [p.name for p in self.outputs]
        if len(set(p.name for p in self.inputs)) != len(self.inputs) or \
                len(set(p.name for p in self.outputs)) != len(self.outputs):
            raise ValueError(f"{self.id}: duplicate port names in {names}")


@dataclass(frozen=True)
class TaskSpec(_SpecBase):
    """A task: data, batching, loss and metrics.  ``factory(params, base_dir) -> workbench.core.tasks.Task``.

    ``inputs`` are the ports the task feeds into the model (the graph's task-input node has them as outputs);
    ``outputs`` are the ports the task reads back (the task-output node has them as inputs).  Their ``size`` names
    one of the task's sizes (e.g. ``"vocab"``), known once the data is read.
    """

    inputs: tuple[PortSpec, ...] = ()
    outputs: tuple[PortSpec, ...] = ()
    metrics: tuple[str, ...] = ()
    generative: bool = False
    #: the input a decoder feeds one token at a time ("" -> the first ``tokens[T]`` input); the other inputs are
    #: context, given once to ``model.start(context=...)``
    step_input: str = ""


@dataclass(frozen=True)
class DecoderSpec(_SpecBase):
    """A decoder.  ``factory(model, task, params, *, prompt, device, generator) -> workbench.core.decode.DecodeResult``."""


@dataclass(frozen=True)
class TemplateSpec(_SpecBase):
    """A pre-wired project.  ``factory(params) -> dict`` (the project JSON); must not import torch."""

    task: str = ""


@dataclass
class NoParams:
    """Parameters of a contribution that has none (feature tracks, usually)."""


@dataclass(frozen=True)
class FeatureTrackSpec(_SpecBase):
    """A feature track for unit search.  ``factory(text) -> numpy array of len(text)``: one number per character.

    The value at character ``i`` describes the situation after reading character ``i`` (1.0/0.0 for yes/no
    features, a count for depths and positions).  The ``id`` is what ``seqwb units --feature ID`` takes: letters,
    digits, ``_`` and ``-``, starting with a letter (after the ``NAMESPACE.`` of a third-party id).  ``params`` is
    usually :class:`NoParams`.
    """

    def check(self) -> None:
        super().check()
        for track_id in (self.id, *self.former_ids):
            if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_\-]*", split_id(track_id)[1]) or track_id == "regex":
                raise ValueError(f"feature track id {track_id!r}: use letters, digits, '_' and '-', starting with a "
                                 f"letter, after the namespace ('regex' is reserved for regex:PATTERN)")


SPEC_KINDS: dict[str, type] = {
    "cell": CellSpec,
    "architecture": BlockSpec,
    "task": TaskSpec,
    "decoder": DecoderSpec,
    "template": TemplateSpec,
    "feature_track": FeatureTrackSpec,
}


class FactoryError(ImportError):
    """A ``"module:attr"`` reference could not be imported."""


def resolve(ref: str) -> Callable[..., Any]:
    """Import ``"package.module:attr.sub"`` and return the attribute."""
    module_name, _, attr = ref.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
    except Exception as exc:  # noqa: BLE001 - any import failure of a plugin module
        raise FactoryError(f"cannot import {module_name!r} (for {ref!r}): {type(exc).__name__}: {exc}") from exc
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise FactoryError(f"{module_name!r} has no attribute {attr!r} (for {ref!r})") from None
    return obj


def with_source(spec: Any, distribution: str, plugin: str) -> Any:
    return dataclasses.replace(spec, distribution=distribution, plugin=plugin)


def empty_params() -> type:
    @dataclass
    class NoParams:
        pass

    return NoParams


_ = field  # re-exported for plugin authors: ``from workbench.schema.specs import field``
