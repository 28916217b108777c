"""Deprecated import path, kept so that plugins written for plugin API 1.0 keep working through 1.x.

New code imports from :mod:`workbench.api` (plugins) or :mod:`workbench.schema.params` (the workbench itself).
"""

from workbench.schema.params import *  # noqa: F401,F403
