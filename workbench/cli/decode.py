"""``seqwb decode``: generate with a decoder, as the window's Decoding view does."""

from __future__ import annotations

from pathlib import Path

from workbench.cli.common import EXIT_OK, UsageError, load_model, note, open_project, print_json, registry, settings


def cmd_decode(args) -> int:
    from workbench.core.search import DecodeSession, write_attention, write_document
    from workbench.schema.errors import UnknownContributionError
    from workbench.schema.params import ParamError, field_info, params_from_dict
    reg = registry()
    project = open_project(args.file, reg)
    base_dir = Path(args.file).resolve().parent
    decoder_id = args.decoder or project.decode.decoder
    try:
        spec = reg.decoder(decoder_id)
        chosen = dict(project.decode.params) if decoder_id == project.decode.decoder else {}
        names = {f.name for f in field_info(spec.params)}
        chosen = {k: v for k, v in chosen.items() if k in names}
        chosen.update(settings(args.set))
        params_from_dict(spec.params, chosen, spec.id)
    except (UnknownContributionError, ParamError) as exc:
        raise UsageError(str(exc)) from None
    weights = "best" if args.best else "current"
    # the same session the window's decoding view uses, so --tree writes exactly what the view draws
    session = DecodeSession(reg)
    task = session.task(project, base_dir)
    if not task.generative:
        raise UsageError(f"task {project.task.id!r} does not generate tokens; decoders do not apply")
    loaded = load_model(args, project, reg, weights=weights, session=session.models)
    if not loaded.trained:
        note("this project has no trained weights for its graph: decoding with freshly initialised weights")
    device = loaded.device
    prompt = args.input if args.input is not None else project.decode.prompt
    try:
        doc = session.decode(project, base_dir, spec.id, chosen, prompt, prefix_text=args.prefix or "",
                             weights=weights, device=device, seed=args.seed)
    except ValueError as exc:   # a prefix the task cannot take, an example index out of range
        raise UsageError(str(exc)) from None
    attention = None
    if args.attention:
        best = doc["alternatives"][0] if doc["alternatives"] else {"tokens": doc["tokens"], "finished": False}
        attention = session.attention(project, base_dir, doc["input"], best["tokens"], bool(best.get("finished")),
                                      weights=weights, device=device)
        if attention is None:
            raise UsageError("this model has no attention block: there is no attention map to write")
        write_attention(args.attention, attention)
    if args.tree:
        write_document(doc, args.tree)
    if args.json:
        print_json({"prompt": doc["input"], **doc})
    else:
        print(doc["input"] + doc["text"] if task.continues_prompt else doc["text"])
        for path in (args.tree, args.attention):
            if path:
                print(f"wrote {path}")
    return EXIT_OK


def register(add, sets) -> None:
    """Add this module's sub-commands (``add(name, func, help)`` makes one; ``sets(sp)`` adds ``--set``)."""
    sp = add("decode", cmd_decode, "generate with a decoder")
    sp.add_argument("file")
    sp.add_argument("--decoder", help="decoder id (default: the project's)")
    sp.add_argument("--input", help="prompt / input text (captioning: an example index such as 12 or test:3)")
    sp.add_argument("--prefix", metavar="TEXT", help="force the output to start with TEXT, then decode the rest")
    sp.add_argument("--best", action="store_true", help="use the best weights seen in validation")
    sp.add_argument("--tree", metavar="OUT", help="write the search document (tree, n-best, settings) as JSON, "
                                                  "the data the decoding view draws")
    sp.add_argument("--attention", metavar="OUT", help="write the best hypothesis's attention map to OUT (.npz: "
                                                       "weights [target, source], source, target)")
    sp.add_argument("--seed", type=int, default=0)
    sp.add_argument("--device")
    sp.add_argument("--json", action="store_true")
    sets(sp)
