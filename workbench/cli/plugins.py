"""``seqwb plugins``, ``seqwb plugin new`` and ``seqwb templates``: what is installed, and authoring."""

from __future__ import annotations

import sys

from workbench.cli.common import EXIT_OK, print_json, registry


def cmd_plugins(args) -> int:
    reg = registry()
    if args.markdown:
        from workbench.docgen import catalog_markdown
        sys.stdout.write(catalog_markdown(reg, None if args.all else "sequence-workbench"))
        return EXIT_OK
    rows = []
    for kind, spec in reg.all():
        rows.append({"kind": kind, "id": spec.id, "title": spec.title, "version": spec.version,
                     "distribution": spec.distribution, "plugin": spec.plugin, "status": "ok", "error": ""})
    for f in reg.failures:
        # "incompatible": its SEQWB_API range excludes this version's plugin API; it was not loaded
        rows.append({"kind": "plugin", "id": f.entry_point, "title": "", "version": "",
                     "distribution": f.distribution, "plugin": f.entry_point,
                     "status": "incompatible" if f.category == "incompatible" else "error",
                     "error": f.error, "hook": f.hook})
    if args.check:   # build every cell and run one trial step: wrong shapes are named here, before any project
        from workbench.core.plugin_checks import check_cells
        _checked, problems = check_cells(reg)
        for f in problems:
            rows.append({"kind": "plugin", "id": f.entry_point, "title": "", "version": "",
                         "distribution": f.distribution, "plugin": f.entry_point, "status": "error",
                         "error": f.error, "hook": f.hook})
    for d in reg.disabled:
        rows.append({"kind": "plugin", "id": d.entry_point, "title": "", "version": d.version,
                     "distribution": d.distribution, "plugin": d.entry_point, "status": "disabled",
                     "error": "", "reason": d.reason})
    for n in reg.notes:
        rows.append({"kind": "plugin", "id": n.entry_point, "title": "", "version": "",
                     "distribution": n.distribution, "plugin": n.entry_point, "status": "note",
                     "error": "", "note": n.note})
    if args.json:
        print_json(rows)
        return EXIT_OK
    width = max((len(r["id"]) for r in rows), default=10)
    for r in rows:
        if r["status"] == "ok":
            print(f"{r['kind']:<13} {r['id']:<{width}}  {r['title']}  [{r['distribution']} {r['version']}]")
    labels = {"error": "FAILED", "incompatible": "INCOMPATIBLE", "disabled": "DISABLED", "note": "NOTE"}
    for status in ("error", "incompatible", "disabled", "note"):
        for r in rows:
            if r["status"] == status:
                text = r.get("error") or r.get("reason") or r.get("note", "")
                print(f"{labels[status]:<13} {r['id']:<{width}}  {r['distribution'] or '?'}: {text}")
    return EXIT_OK


def cmd_plugin_new(args) -> int:
    from workbench.scaffold import scaffold
    names, root, written = scaffold(args.name, args.dir)
    if args.json:
        print_json({"distribution": names.distribution, "package": names.package, "cell": names.cell_id,
                     "path": str(root), "files": [str(p.relative_to(root)) for p in written]})
        return EXIT_OK
    print(f"created {root} (distribution {names.distribution}, cell {names.cell_id!r}):")
    for path in written:
        print(f"  {path.relative_to(root)}")
    print(f"next: pip install -e {root}  &&  seqwb plugins  &&  pytest {root}")
    return EXIT_OK


def cmd_templates(args) -> int:
    from workbench.schema.params import field_info
    reg = registry()
    rows = [{"id": s.id, "title": s.title, "task": s.task, "description": s.description,
             "distribution": s.distribution, "version": s.version,
             "params": {i.name: i.default for i in field_info(s.params)}} for s in reg.items["template"].values()]
    if args.json:
        print_json(rows)
    else:
        width = max((len(r["id"]) for r in rows), default=10)
        for r in rows:
            print(f"{r['id']:<{width}}  {r['description'] or r['title']}")
    return EXIT_OK


def register(add, sets) -> None:
    """Add this module's sub-commands (``add(name, func, help)`` makes one; ``sets(sp)`` adds ``--set``)."""
    sp = add("plugins", cmd_plugins, "list every contribution of every plugin, and plugins that failed to load")
    sp.add_argument("--json", action="store_true")
    sp.add_argument("--markdown", action="store_true",
                    help="print the reference of the built-in plugins with their parameters (docs/catalog.md)")
    sp.add_argument("--all", action="store_true", help="with --markdown: include third-party plugins")
    sp.add_argument("--check", action="store_true",
                    help="also build every cell and run a trial step (imports torch): names cells with wrong shapes")

    sp = add("plugin", None, "plugin authoring: `seqwb plugin new NAME` scaffolds a plugin package")
    plugin_sub = sp.add_subparsers(dest="plugin_command", parser_class=type(sp), metavar="ACTION", required=True)
    sp = plugin_sub.add_parser("new", help="create a plugin package (pyproject, entry point, a working cell, tests)",
                               description="create a plugin package (pyproject, entry point, a working cell, "
                                           "tests using the contract checks, README)")
    sp.set_defaults(func=cmd_plugin_new)
    sp.add_argument("name", help="plugin name, e.g. my-cell (the distribution becomes seqwb-my-cell)")
    sp.add_argument("--dir", default=".", help="folder to create the package in (default: the current one)")
    sp.add_argument("--json", action="store_true")

    sp = add("templates", cmd_templates, "list the project templates")
    sp.add_argument("--json", action="store_true")
