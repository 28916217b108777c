"""``seqwb plugins``, ``seqwb plugin new`` and ``seqwb templates``: what is installed, and authoring."""

from __future__ import annotations

import sys

from workbench.cli.common import EXIT_FAIL, EXIT_OK, note, print_json, registry
from workbench.plugin_system import user_settings


def cmd_plugins(args) -> int:
    reg = registry()
    if args.markdown:
        from workbench.docgen import catalog_markdown
        sys.stdout.write(catalog_markdown(reg, None if args.all else "sequence-workbench"))
        return EXIT_OK
    only = set(args.only or [])
    rows = []
    for kind, spec in reg.all():
        # "version": the installed distribution's (what pip shows and a project records); the spec's own
        # version, which its author may set, is "spec_version"
        provider = reg.provider(kind, spec.id)
        rows.append({"kind": kind, "id": spec.id, "title": spec.title,
                     "version": (provider.version if provider is not None else "") or spec.version,
                     "spec_version": spec.version, "distribution": spec.distribution, "plugin": spec.plugin,
                     "status": "ok", "error": ""})
    for f in reg.failures:
        # "incompatible": its SEQWB_API range excludes this version's plugin API; it was not loaded.  "conflict":
        # an id another distribution registers too (neither is used), or one in another's namespace
        rows.append({"kind": "plugin", "id": f.entry_point, "title": "", "version": "",
                     "distribution": f.distribution, "plugin": f.entry_point,
                     "status": "incompatible" if f.category == "incompatible" else "error",
                     "error": f.error, "hook": f.hook})
    checks_failed = 0
    if args.check:
        checks_failed = _run_checks(reg, rows, only, args.all)
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
    else:
        width = max((len(r["id"]) for r in rows), default=10)
        for r in rows:
            if r["status"] == "ok":
                print(f"{r['kind']:<13} {r['id']:<{width}}  {r['title']}  [{r['distribution']} {r['version']}]")
        labels = {"error": "FAILED", "incompatible": "INCOMPATIBLE", "unchecked": "NOT CHECKED",
                  "disabled": "DISABLED", "note": "NOTE"}
        for status in labels:
            for r in rows:
                if r["status"] == status:
                    text = r.get("error") or r.get("reason") or r.get("note", "")
                    print(f"{labels[status]:<13} {r['id']:<{width}}  {r['distribution'] or '?'}: {text}")
    load_failed = [f for f in reg.failures
                   if not only or user_settings.normalize(f.distribution) in {user_settings.normalize(d)
                                                                               for d in only}]
    if checks_failed or ((args.strict or args.check) and load_failed):
        what = []
        if checks_failed:
            what.append(f"{checks_failed} contract check(s) failed")
        if load_failed and (args.strict or args.check):
            what.append(f"{len(load_failed)} plugin problem(s) at loading")
        note("; ".join(what))
        return EXIT_FAIL
    return EXIT_OK


def _run_checks(reg, rows: list[dict], only: set[str], builtins: bool) -> int:
    """The contract suite (workbench.testing.contracts) on the third-party contributions (``only`` these
    distributions when given; the built-ins too with ``builtins``), and the build trial on every other cell.
    Adds one row per failed or unchecked contribution; returns how many failed."""
    from workbench.core.plugin_checks import check_cells
    from workbench.testing.contracts import check_registry
    results = check_registry(reg, distributions=only or None, builtins=builtins)
    checked = {(r.kind, r.id) for r in results}
    failed = 0
    for r in results:
        if r.status == "passed":
            continue
        failed += r.status == "failed"
        rows.append({"kind": r.kind, "id": r.id, "title": "", "version": "", "distribution": r.distribution,
                     "plugin": r.plugin, "status": "error" if r.status == "failed" else "unchecked",
                     "error": r.message, "hook": r.check, "check": r.check})
    if not only:   # the quick trial for the cells the suite did not check (the built-ins, without --all)
        _checked, problems = check_cells(_Only(reg, {i for k, i in checked if k == "cell"}))
        for f in problems:
            failed += 1
            rows.append({"kind": "plugin", "id": f.entry_point, "title": "", "version": "",
                         "distribution": f.distribution, "plugin": f.entry_point, "status": "error",
                         "error": f.error, "hook": f.hook, "check": "cell.build"})
    return failed


class _Only:
    """The registry's cells minus ``skip`` (for check_cells, which reads ``items``)."""

    def __init__(self, reg, skip: set[str]):
        self.items = {"cell": {i: s for i, s in reg.items["cell"].items() if i not in skip}}


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
    sp.add_argument("--all", action="store_true", help="with --markdown: include third-party plugins; with "
                                                       "--check: run the contract checks on the built-ins too")
    sp.add_argument("--check", action="store_true",
                    help="run the plugin contract checks (imports torch) on every third-party contribution, and "
                         "the build trial on every other cell; exit 1 if a check fails or a plugin failed to load")
    sp.add_argument("--only", action="append", metavar="DIST",
                    help="with --check or --strict: only this distribution (repeatable), e.g. in the plugin's CI")
    sp.add_argument("--strict", action="store_true",
                    help="exit 1 if a plugin failed to load, is incompatible, or claims an id it does not own")

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
