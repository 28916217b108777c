"""``seqwb record`` and ``seqwb units``: hidden states and gates over a text, unit search, and where chosen units
switch on across the validation split.

A model that reads a context first (an encoder–decoder, a captioner) is recorded on an input as the decoding view
takes it (``--text``: a source sentence, or a captioning example's number; by default the project's decode prompt):
its encoder over the source and its decoder over the output the project's decoder produces (the window's Hidden
units tab shows the same).  ``seqwb units`` searches the whole validation split unless a text is given, as the
window's unit search does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from workbench.cli.common import EXIT_OK, UsageError, note, open_project, print_json, registry


def _given(args) -> list[bool]:
    return [x for x in (args.text is not None, args.text_file is not None, bool(args.sample)) if x]


def _inspect_text(args, recorder, project, base_dir: Path, context: bool) -> str:
    """The text to record: --text, --text-file, or --sample N characters of the validation data; a context
    model's input (--text, or the project's decode prompt)."""
    given = _given(args)
    if len(given) > 1:
        raise UsageError("give only one of --text, --text-file and --sample")
    if context:
        if args.sample or args.text_file is not None:
            raise UsageError("this model reads a source (or an image) and writes its own output: give its input "
                             "with --text (a source sentence, or a captioning example's number such as 12)")
        return args.text or project.decode.prompt or ""
    if not given:
        raise UsageError("give the text to record with --text TEXT, --text-file FILE or --sample N")
    if args.text_file:
        from workbench.schema.errors import DataError
        try:
            return Path(args.text_file).read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise DataError(f"{args.text_file} is not valid UTF-8 (byte offset {exc.start})") from None
    if args.sample:
        return recorder.sample_text(project, base_dir, args.sample)
    if not args.text:
        raise UsageError("the text to record is empty")
    return args.text


def _open(args) -> tuple[Any, Any, Path, str, Any]:
    """The registry, the project, its folder, the weights asked for and a recorder (``--device`` checked)."""
    from workbench.core.project import available_weights
    from workbench.core.recording import Recorder
    reg = registry()
    project = open_project(args.file, reg)
    base_dir = Path(args.file).resolve().parent
    weights = "best" if args.best else "current"
    if weights not in available_weights(project):
        raise UsageError("this project has no best weights yet: they are kept at the first validation of a run")
    if args.device:
        from workbench.core.device import resolve_device
        try:
            resolve_device(args.device)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    return reg, project, base_dir, weights, Recorder(reg)


def _reads_context(recorder, project, base_dir: Path, weights: str, device: Any) -> bool:
    from workbench.core.record_context import reads_context
    return reads_context(recorder.session.load(project, base_dir, weights, device).model)


def _inspect_record(args, check_text=None) -> tuple[Any, dict[str, Any]]:
    """Open the project and record the chosen text at the chosen weights, as the window's Record button does.
    ``check_text(text)`` may refuse the text before the model runs (not a context model's input)."""
    _, project, base_dir, weights, recorder = _open(args)
    context = _reads_context(recorder, project, base_dir, weights, args.device)
    text = _inspect_text(args, recorder, project, base_dir, context)
    if check_text is not None and not context:
        check_text(text)
    rec = recorder.record(project, text, base_dir, weights, args.device)
    _untrained_note(rec)
    return project, rec


def _untrained_note(rec: dict[str, Any]) -> None:
    if not rec["meta"]["trained"]:
        note("this project has no trained weights for its graph: recording freshly initialised weights")
    if rec["meta"].get("precision", "fp32") != "fp32":
        note(f"recorded in {rec['meta']['precision']} autocast, the project's precision (values to about 3 "
             f"significant digits; precision=fp32 for exact float32 values)")


def _shapes(layers: dict[str, dict[str, Any]]) -> dict[str, dict[str, list[int]]]:
    return {layer: {q: list(a.shape) for q, a in qs.items()} for layer, qs in layers.items()}


def record_summary(rec: dict[str, Any]) -> dict[str, Any]:
    """What ``seqwb record --json`` prints about a recording (without its values)."""
    from workbench.core import recording
    meta = rec["meta"]
    out: dict[str, Any] = {"weights": meta["weights"], "step": meta["step"], "trained": meta["trained"],
                           "precision": meta.get("precision", "fp32")}
    if not recording.is_multipart(rec):
        out.update(chars=len(rec["text"]), steps=len(rec["tokens"]), layers=_shapes(rec["layers"]))
        return out
    out["parts"] = {name: {"text": part["text"], "chars": len(part["text"]), "steps": len(part["tokens"]),
                           "labels": list(part["labels"]), "layers": _shapes(part["layers"])}
                    for name, part in recording.parts(rec).items()}
    out["layers"] = {layer: shapes for p in out["parts"].values() for layer, shapes in p["layers"].items()}
    out["attention"] = {node: list(w.shape) for node, w in (rec.get("attention") or {}).items()}
    for key in ("prompt", "output", "finished", "reference", "decoder"):
        out[key] = meta.get(key)
    return out


def cmd_record(args) -> int:
    from workbench.core import recording
    _, rec = _inspect_record(args)
    if args.npz:
        recording.save_npz(rec, args.npz)
    saturation = recording.gate_saturation(rec) if args.saturation else None
    summary = {**record_summary(rec), "npz": args.npz, "saturation": saturation}
    if args.json:
        if args.values:
            summary["values"] = {layer: {q: recording.activations(rec, layer, q).tolist()
                                         for q in recording.quantities(rec, layer)}
                                 for layer in recording.layer_names(rec)}
            if rec.get("attention"):
                summary["attention_values"] = {node: w.tolist() for node, w in rec["attention"].items()}
        print_json(summary)
        return EXIT_OK
    if recording.is_multipart(rec):
        print(f"input {summary['prompt']!r} -> output {summary['output']!r}"
              + ("" if summary["finished"] else " (no <eos> within max_len)") + f" ({summary['decoder']})")
        for name, part in summary["parts"].items():
            print(f"{name}: {part['steps']} steps")
            for layer, qs in part["layers"].items():
                print(f"  {layer}: " + ", ".join(f"{q} {tuple(s)}" for q, s in qs.items()))
        for node, shape in summary["attention"].items():
            print(f"attention {node}: {tuple(shape)} (output steps x source positions)")
    else:
        for layer, qs in summary["layers"].items():
            print(f"{layer}: " + ", ".join(f"{q} {tuple(s)}" for q, s in qs.items()))
    for layer, gates in (saturation or {}).items():
        for g, v in gates.items():
            left, right = sum(v["left"]) / len(v["left"]), sum(v["right"]) / len(v["right"])
            print(f"saturation {layer}/{g} ({v['range']}: left < {v['low']:g}, right > {v['high']:g}): "
                  f"mean left {left:.3f}, mean right {right:.3f}")
    if args.npz:
        print(f"wrote {args.npz}")
    return EXIT_OK


def _check_feature(feature: str, reg: Any) -> None:
    from workbench.core import features
    try:
        if feature.startswith(features.REGEX_PREFIX):
            features.track_regex("", feature[len(features.REGEX_PREFIX):])
        else:
            features.get_track(feature, reg)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _units_recording(args, reg: Any, feature: str) -> dict[str, Any]:
    """The recording ``seqwb units`` searches: the given text, or the whole validation split."""
    from workbench.core import features, recording
    if _given(args):
        def check_text(text: str) -> None:
            from workbench.schema.errors import DataError
            if not feature:
                return
            track = features.compute_track(feature, text, reg)
            if track.size < 2 or float(track.max() - track.min()) == 0.0:  # before spending time on the model
                raise DataError(recording.constant_message(feature, float(track[0]) if track.size else 0.0, reg))

        return _inspect_record(args, check_text)[1]
    _, project, base_dir, weights, recorder = _open(args)
    rec = recorder.record_corpus(project, base_dir, weights, args.quantity, args.device)
    _untrained_note(rec)
    if rec["meta"].get("truncated"):
        note(f"the validation split is longer than a search holds: searched its first "
             f"{rec['meta'].get('chars', 0):,} characters")
    return rec


def _parse_units(text: str) -> list[int]:
    try:
        units = [int(u) for u in text.replace(" ", "").split(",") if u]
    except ValueError:
        raise UsageError(f"--match takes unit numbers separated by commas (3,17), not {text!r}") from None
    if not units:
        raise UsageError("--match needs at least one unit number")
    return units


def cmd_units(args) -> int:
    from workbench.core import features, recording
    reg = registry()    # the feature tracks of every plugin (seqwb_feature_tracks), built-ins included
    feature = args.feature or ""
    if not feature and not args.match:
        raise UsageError("give --feature FEATURE to rank units, or --match UNITS to list where they switch on")
    if feature:
        _check_feature(feature, reg)
    units = _parse_units(args.match) if args.match else []
    rec = _units_recording(args, reg, feature)
    layers = recording.layer_names(rec)
    if not layers:
        raise UsageError("this model has no recurrent layer to look inside")
    if args.layer and args.layer not in layers:
        raise UsageError(f"no layer {args.layer!r}; layers: {', '.join(layers)}")
    chosen = [args.layer] if args.layer else layers
    quantity = args.quantity
    if not any(quantity in recording.quantities(rec, layer) for layer in chosen):
        have = sorted({q for layer in chosen for q in recording.quantities(rec, layer)})
        raise UsageError(f"no {quantity!r} in {', '.join(chosen)}; choose one of: {', '.join(have)}")
    meta = rec["meta"]
    scope = "valid" if meta.get("corpus") else "text"
    out: dict[str, Any] = {"quantity": quantity, "layers": chosen, "scope": scope,
                           "chars": sum(len(p["text"]) for p in recording.parts(rec).values()),
                           "steps": sum(len(p["tokens"]) for p in recording.parts(rec).values()),
                           "truncated": bool(meta.get("truncated", False)), "weights": meta["weights"],
                           "step": meta["step"], "trained": meta["trained"]}
    if feature:
        try:
            rows = recording.search_parts(rec, feature, quantity, chosen, args.top, registry=reg)
        except ValueError as exc:
            from workbench.schema.errors import DataError
            raise DataError(str(exc).replace("the track", f"the feature “{features.feature_title(feature, reg)}”")) \
                from None
        out.update(feature=feature, title=features.feature_title(feature, reg),
                   fraction_nonzero=recording.feature_share(rec, feature, chosen, reg),
                   units=[{"layer": layer, "unit": unit, "r": r} for layer, unit, r in rows])
    if units:
        out["match"] = _matches(args, rec, chosen, quantity, units)
    if args.json:
        print_json(out)
        return EXIT_OK
    where = "the validation split" if scope == "valid" else "the text"
    if feature:
        span = (f"the validation split ({out['chars']:,} characters" if scope == "valid"
                else f"{out['chars']:,} characters (")
        print(f"{out['title']} over {span}{'; ' if scope == 'valid' else ''}"
              f"{100 * out['fraction_nonzero']:.1f} % non-zero); {quantity} of {', '.join(chosen)}; "
              f"{out['weights']} weights, step {out['step']}")
        print(f"{'rank':>4}  {'layer':<12} {'unit':>5}  {'r':>7}")
        for i, row in enumerate(out["units"], 1):
            print(f"{i:>4}  {row['layer']:<12} {row['unit']:>5}  {row['r']:+.4f}")
    if units:
        m = out["match"]
        print(f"units {', '.join(map(str, units))} of {m['layer']} {quantity} on (>= {m['threshold']:g}) together "
              f"for at least {m['min_length']} steps: {len(m['spans'])} places in {where}")
        for span in m["spans"][:args.top or None]:
            print(f"{span['start']:>8,}  «{span['text']}»")
    return EXIT_OK


def _matches(args, rec: dict[str, Any], chosen: list[str], quantity: str, units: list[int]) -> dict[str, Any]:
    """Every place where all ``units`` are on together (hypothesis selection's matches, over what was recorded)."""
    from workbench.core import recording
    if len(chosen) != 1:
        raise UsageError("--match needs --layer: the units are numbered within one layer")
    layer = chosen[0]
    width = recording.activations(rec, layer, quantity).shape[1]
    bad = [u for u in units if not 0 <= u < width]
    if bad:
        raise UsageError(f"{layer} has units 0 to {width - 1}; not {', '.join(map(str, bad))}")
    threshold = args.threshold if args.threshold is not None else recording.default_threshold(rec, layer, quantity)
    part = recording.part_for(rec, layer)
    spans = recording.matching_spans(part, layer, quantity, units, threshold, max(1, args.min_length))
    return {"layer": layer, "units": units, "threshold": threshold, "min_length": max(1, args.min_length),
            "spans": [{"start": a, "end": b, "text": recording.span_text(part, a, b)} for a, b in spans]}


def register(add, sets) -> None:
    """Add this module's sub-commands (``add(name, func, help)`` makes one; ``sets(sp)`` adds ``--set``)."""
    def inspect_input(sp, *, corpus: bool):
        sp.add_argument("file")
        where = " (default: the whole validation split)" if corpus else ""
        sp.add_argument("--text", help="the text to record" + where + "; for an encoder-decoder its source "
                                       "sentence, for a captioner an example's number (default: the project's "
                                       "decode prompt)")
        sp.add_argument("--text-file", metavar="FILE", help="record the contents of FILE (UTF-8)")
        sp.add_argument("--sample", type=int, metavar="N", help="record N characters of the validation data")
        sp.add_argument("--best", action="store_true", help="the best weights seen in validation (default: current)")
        sp.add_argument("--device")
        sp.add_argument("--json", action="store_true")

    sp = add("record", cmd_record, "record hidden states, cell states and gates over a text (an encoder-decoder: "
                                   "over its source and its output)")
    inspect_input(sp, corpus=False)
    sp.add_argument("--npz", metavar="OUT",
                    help="write what the hidden-unit views show to OUT (.npz; keys in 'Looking inside', README)")
    sp.add_argument("--saturation", action="store_true", help="gate saturation fractions per unit")
    sp.add_argument("--values", action="store_true", help="with --json: include every value (and attention)")

    sp = add("units", cmd_units, "rank hidden units by how well they track a feature of the text (unit search), "
                                 "over the validation split by default; --match: where chosen units switch on")
    inspect_input(sp, corpus=True)
    sp.add_argument("--feature", metavar="FEATURE",
                    help="quotes | comment | brackets | line_position | indent | word_start | regex:PATTERN "
                         "(or a feature track a plugin registered)")
    sp.add_argument("--layer", help="only this layer (default: every recurrent layer)")
    sp.add_argument("--quantity", default="h", help="h (default), c, or a gate (i, f, g, o; r, z, n)")
    sp.add_argument("--top", type=int, default=10, help="show the K best units (0: all; default 10)")
    sp.add_argument("--match", metavar="UNITS",
                    help="units of --layer (3,17): every place where all of them are on together (LSTMVis)")
    sp.add_argument("--threshold", type=float, help="with --match: 'on' from this value (default: 30 %% of the "
                                                    "way from the colour map's centre to its top)")
    sp.add_argument("--min-length", type=int, default=1, help="with --match: the shortest span listed (steps)")
