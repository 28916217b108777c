"""What the benchmark scripts share: writing their figures with the command, the date and the machine's load."""

from __future__ import annotations

import datetime
import importlib.metadata
import json
import os
import platform
import sys
from pathlib import Path
from typing import Any, Callable


def figures_writer(script: str) -> Callable[[str, Any, float, "list[str] | None"], None]:
    """``write_figures(target, figures, load_start, argv)`` for the benchmark ``script`` (its ``__file__``)."""

    def write_figures(target: str, figures: Any, load_start: float, argv: list[str] | None) -> None:
        """``--json FILE``: the figures with the command, the date and the load average at the start and the end
        (a speed figure means little without the machine's load), written atomically; ``--json -`` prints the
        figures bare."""
        if target == "-":
            print(json.dumps(figures, indent=1))
            return
        from workbench.atomic import atomic_write
        doc = {"command": " ".join(["python", f"benchmarks/{Path(script).name}",
                                    *(sys.argv[1:] if argv is None else argv)]),
               "measured": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
               "load_average": [round(load_start, 2), round(os.getloadavg()[0], 2)],
               "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                           "torch": importlib.metadata.version("torch")},
               "figures": figures}
        with atomic_write(Path(target), "w") as fh:
            fh.write(json.dumps(doc, indent=1) + "\n")

    return write_figures
