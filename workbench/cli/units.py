"""``seqwb record`` and ``seqwb units``: hidden states and gates over a text, and unit search."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from workbench.cli.common import EXIT_OK, UsageError, note, open_project, print_json, registry


def _inspect_text(args, recorder, project, base_dir: Path) -> str:
    """The text to record: --text, --text-file, or --sample N characters of the validation data."""
    given = [x for x in (args.text is not None, args.text_file is not None, bool(args.sample)) if x]
    if not given:
        raise UsageError("give the text to record with --text TEXT, --text-file FILE or --sample N")
    if len(given) > 1:
        raise UsageError("give only one of --text, --text-file and --sample")
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


def _inspect_record(args, check_text=None) -> tuple[Any, dict[str, Any]]:
    """Open the project and record the chosen text at the chosen weights, as the window's Record button does.
    ``check_text(text)`` may refuse the text before the model runs."""
    from workbench.core.project import available_weights
    from workbench.core.recording import Recorder
    reg = registry()
    project = open_project(args.file, reg)
    base_dir = Path(args.file).resolve().parent
    weights = "best" if args.best else "current"
    if weights not in available_weights(project):
        raise UsageError("this project has no best weights yet: they are kept at the first validation of a run")
    recorder = Recorder(reg)
    text = _inspect_text(args, recorder, project, base_dir)
    if check_text is not None:
        check_text(text)
    if args.device:
        from workbench.core.device import resolve_device
        try:
            resolve_device(args.device)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    rec = recorder.record(project, text, base_dir, weights, args.device)
    if not rec["meta"]["trained"]:
        note("this project has no trained weights for its graph: recording freshly initialised weights")
    return project, rec


def cmd_record(args) -> int:
    from workbench.core import recording
    _, rec = _inspect_record(args)
    text = rec["text"]
    if args.npz:
        recording.save_npz(rec, args.npz)
    saturation = recording.gate_saturation(rec) if args.saturation else None
    summary = {"chars": len(text), "steps": len(rec["tokens"]),
               "layers": {layer: {q: list(a.shape) for q, a in qs.items()} for layer, qs in rec["layers"].items()},
               "weights": rec["meta"]["weights"], "step": rec["meta"]["step"], "trained": rec["meta"]["trained"],
               "npz": args.npz, "saturation": saturation}
    if args.json:
        if args.values:
            summary["values"] = {layer: {q: a.tolist() for q, a in qs.items()} for layer, qs in rec["layers"].items()}
        print_json(summary)
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


def cmd_units(args) -> int:
    from workbench.core import features, recording
    reg = registry()    # the feature tracks of every plugin (seqwb_feature_tracks), built-ins included
    feature = args.feature
    if feature.startswith(features.REGEX_PREFIX):
        try:
            features.track_regex("", feature[len(features.REGEX_PREFIX):])
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    else:
        try:
            features.get_track(feature, reg)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    def check_text(text: str) -> None:
        from workbench.schema.errors import DataError
        track = features.compute_track(feature, text, reg)
        if track.size < 2 or float(track.max() - track.min()) == 0.0:  # before spending time on the model
            raise DataError(recording.constant_message(feature, float(track[0]) if track.size else 0.0, reg))

    _, rec = _inspect_record(args, check_text)
    layers = recording.layer_names(rec)
    if not layers:
        raise UsageError("this model has no recurrent layer to look inside")
    if args.layer and args.layer not in layers:
        raise UsageError(f"no layer {args.layer!r}; layers: {', '.join(layers)}")
    chosen = [args.layer] if args.layer else layers
    quantity = args.quantity
    if not any(quantity in rec["layers"][layer] for layer in chosen):
        have = sorted({q for layer in chosen for q in rec["layers"][layer]})
        raise UsageError(f"no {quantity!r} in {', '.join(chosen)}; choose one of: {', '.join(have)}")
    track = recording.step_track(rec, feature, reg)
    try:
        rows = recording.search_layers(rec, track, quantity, chosen, args.top, registry=reg)
    except ValueError as exc:
        from workbench.schema.errors import DataError
        raise DataError(str(exc).replace("the track", f"the feature “{features.feature_title(feature, reg)}”")) \
            from None
    out = {"feature": feature, "title": features.feature_title(feature, reg), "quantity": quantity, "layers": chosen,
           "steps": len(rec["tokens"]), "chars": len(rec["text"]), "fraction_nonzero": float((track != 0).mean()),
           "weights": rec["meta"]["weights"], "step": rec["meta"]["step"], "trained": rec["meta"]["trained"],
           "units": [{"layer": layer, "unit": unit, "r": r} for layer, unit, r in rows]}
    if args.json:
        print_json(out)
        return EXIT_OK
    print(f"{out['title']} over {out['chars']:,} characters ({100 * out['fraction_nonzero']:.1f} % non-zero); "
          f"{quantity} of {', '.join(chosen)}; {out['weights']} weights, step {out['step']}")
    print(f"{'rank':>4}  {'layer':<12} {'unit':>5}  {'r':>7}")
    for i, row in enumerate(out["units"], 1):
        print(f"{i:>4}  {row['layer']:<12} {row['unit']:>5}  {row['r']:+.4f}")
    return EXIT_OK


def register(add, sets) -> None:
    """Add this module's sub-commands (``add(name, func, help)`` makes one; ``sets(sp)`` adds ``--set``)."""
    def inspect_input(sp):
        sp.add_argument("file")
        sp.add_argument("--text", help="the text to record")
        sp.add_argument("--text-file", metavar="FILE", help="record the contents of FILE (UTF-8)")
        sp.add_argument("--sample", type=int, metavar="N", help="record N characters of the validation data")
        sp.add_argument("--best", action="store_true", help="the best weights seen in validation (default: current)")
        sp.add_argument("--device")
        sp.add_argument("--json", action="store_true")

    sp = add("record", cmd_record, "record hidden states, cell states and gates over a text")
    inspect_input(sp)
    sp.add_argument("--npz", metavar="OUT",
                    help="write what the hidden-unit views show to OUT (.npz; keys in 'Looking inside', README)")
    sp.add_argument("--saturation", action="store_true", help="gate saturation fractions per unit")
    sp.add_argument("--values", action="store_true", help="with --json: include every value")

    sp = add("units", cmd_units, "rank hidden units by how well they track a feature of the text (unit search)")
    inspect_input(sp)
    sp.add_argument("--feature", required=True, metavar="FEATURE",
                    help="quotes | comment | brackets | line_position | indent | word_start | regex:PATTERN "
                         "(or a feature track a plugin registered)")
    sp.add_argument("--layer", help="only this layer (default: every recurrent layer)")
    sp.add_argument("--quantity", default="h", help="h (default), c, or a gate (i, f, g, o; r, z, n)")
    sp.add_argument("--top", type=int, default=10, help="show the K best units (0: all; default 10)")
