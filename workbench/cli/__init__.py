"""``seqwb``: the headless twin of every GUI action that computes something.

Exit codes: 0 success, 2 usage error (bad command line, unknown template or setting), 1 failure (a file, the
data or training went wrong).  Errors are one line on stderr; ``--debug`` adds the traceback.  Each module of this
package holds one group of commands and adds them to the parser with its ``register(add, sets)``.
"""

from __future__ import annotations

import argparse
import sys
import traceback

from workbench import __version__
from workbench.cli import decode, evaluate, export, forecast, plugins, project, train, units
from workbench.cli.common import EXIT_FAIL, EXIT_OK, EXIT_USAGE, UsageError, add_data_flags

__all__ = ["EXIT_FAIL", "EXIT_OK", "EXIT_USAGE", "UsageError", "build_parser", "gui_main", "main"]


def cmd_gui(args) -> int:
    from workbench.gui.app import run_app
    return run_app(getattr(args, "file", None))


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one clear line, exit code 2
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n(see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="seqwb", description="Sequence Workbench: build, train and look inside recurrent models.")
    p.add_argument("--version", action="version", version=f"seqwb {__version__}")
    p.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = p.add_subparsers(dest="command", parser_class=_Parser, metavar="COMMAND")

    def add(name, func, help_text):
        sp = sub.add_parser(name, help=help_text, description=help_text)
        sp.set_defaults(func=func)
        sp.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks on errors")
        if name not in ("gui", "plugins", "plugin", "templates", "new"):    # the commands that read a project file
            add_data_flags(sp)
        return sp

    def sets(sp):
        sp.add_argument("--set", action="append", metavar="KEY=VALUE",
                        help="change a setting (repeatable): lr=0.1, rnn.hidden_size=512, task.corpus=FILE")

    sp = add("gui", cmd_gui, "open the desktop window (on FILE, or on the default project)")
    sp.add_argument("file", nargs="?")

    for group in (plugins, project, train, evaluate, decode, units, forecast, export):
        group.register(add, sets)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if argv and argv[0].endswith(".seqwb") and not argv[0].startswith("-"):
        argv = ["gui", *argv]  # `seqwb FILE` opens FILE in the window (a file name is never a command name)
    args = parser.parse_args(argv)
    if args.command is None:
        args.func, args.file = cmd_gui, None
    debug = bool(getattr(args, "debug", False))
    try:
        return int(args.func(args) or 0)
    except UsageError as exc:
        sys.stderr.write(f"seqwb: error: {exc}\n")
        return EXIT_USAGE
    except KeyboardInterrupt:
        sys.stderr.write("seqwb: interrupted\n")
        return 130
    except BrokenPipeError:
        # the reader of our output went away (`seqwb history --json | head`): not an error of ours; point stdout
        # at nothing so that Python's flush at exit does not complain again
        import os
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except Exception as exc:  # noqa: BLE001 - one clear line unless --debug
        from workbench.schema.errors import WorkbenchError
        if debug:
            traceback.print_exc()
        msg = str(exc) if isinstance(exc, (WorkbenchError, FileNotFoundError, OSError)) else \
            f"{type(exc).__name__}: {exc}"
        sys.stderr.write(f"seqwb: error: {msg.splitlines()[0] if msg else type(exc).__name__}\n")
        if not debug and not isinstance(exc, (WorkbenchError, FileNotFoundError)):
            sys.stderr.write("seqwb: (run with --debug for the traceback)\n")
        return EXIT_FAIL


def gui_main() -> int:
    return main(["gui", *sys.argv[1:]])


if __name__ == "__main__":
    sys.exit(main())


if __name__ == "__main__":
    sys.exit(main())
