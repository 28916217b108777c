"""``seqwb export FILE --format onnx|torchscript -o OUT``: the command-line side of :mod:`workbench.core.export`."""

from __future__ import annotations

from pathlib import Path

from workbench.cli.common import EXIT_OK, UsageError, apply_settings, note, open_project, print_json, registry


def register(add, sets) -> None:
    """Add the ``export`` sub-command (``add(name, func, help)`` makes one)."""
    sp = add("export", cmd_export, "export the trained model's forward pass to ONNX or TorchScript, checked "
                                   "against the model before it is written")
    sp.add_argument("file")
    sp.add_argument("--format", "-f", choices=["onnx", "torchscript"], default=None,
                    help="default: from OUT's suffix (.onnx: onnx, .pt/.ts: torchscript)")
    sp.add_argument("-o", "--output", required=True, metavar="OUT")
    sp.add_argument("--best", action="store_true", help="export the best weights seen in validation")
    sp.add_argument("--force", action="store_true", help="overwrite OUT if it exists")
    sp.add_argument("--allow-untrained", action="store_true",
                    help="export even when the project has no trained weights for its graph")
    sp.add_argument("--json", action="store_true")
    sp.add_argument("--set", action="append", metavar="KEY=VALUE",
                    help="change a setting first (repeatable), e.g. threads=1")


def _format_for(path: str, chosen: str | None) -> str:
    if chosen:
        return chosen
    suffix = Path(path).suffix.lower()
    if suffix == ".onnx":
        return "onnx"
    if suffix in (".pt", ".ts", ".torchscript"):
        return "torchscript"
    raise UsageError(f"cannot tell the format from {path!r}: add --format onnx or --format torchscript")


def cmd_export(args) -> int:
    from workbench.core.export import export_model
    fmt = _format_for(args.output, args.format)
    out = Path(args.output)
    if out.exists() and not args.force:
        raise UsageError(f"{out} exists already; use --force to overwrite it")
    reg = registry()
    project = open_project(args.file, reg)
    if args.best and not any(k.startswith("best/") for k in (project.checkpoint.tensors if project.checkpoint
                                                               else {})):
        raise UsageError("this project has no best weights yet: they are kept at the first validation of a run")
    apply_settings(project, args.set, reg)     # the settings apply to this export only; the file is not rewritten
    ckpt = project.checkpoint
    trained = bool(ckpt is not None and ckpt.weights and ckpt.graph_hash == project.graph.content_hash())
    if not trained and not args.allow_untrained:
        raise UsageError("this project has no trained weights for its graph: train it first, or pass "
                         "--allow-untrained to export freshly initialised weights")
    result = export_model(project, reg, out, fmt, base_dir=Path(args.file).resolve().parent, best=args.best,
                          require_trained=False)
    if args.json:
        print_json(result.to_dict())
        return EXIT_OK
    for text in result.notes:
        note(text)
    def shape(row):
        return "[" + ", ".join(str(d) for d in row["shape"]) + "]"
    print(f"wrote {result.path} ({fmt})")
    print("  inputs:  " + ", ".join(f"{r['name']} {r['dtype']} {shape(r)}" for r in result.inputs))
    print("  outputs: " + ", ".join(f"{r['name']} {r['dtype']} {shape(r)}" for r in result.outputs))
    if result.max_abs_diff is not None:
        print(f"  checked with {result.checked_with}: largest difference from the model {result.max_abs_diff:.3g}")
    return EXIT_OK
