"""Entry script of the PyInstaller bundle: the same ``seqwb`` command as the installed console script."""

import multiprocessing
import sys

if __name__ == "__main__":
    multiprocessing.freeze_support()  # a frozen app that ever starts worker processes needs this first
    from workbench.cli import main
    sys.exit(main())
