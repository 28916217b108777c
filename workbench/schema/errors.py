"""Errors that carry a message meant for the user (one clear line)."""


class WorkbenchError(Exception):
    """Base class: ``str(exc)`` is the one line shown to the user."""


class GraphError(WorkbenchError):
    """The model graph is not valid; ``problems`` lists every reason."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        head = self.problems[0] if self.problems else "invalid graph"
        more = f" (and {len(self.problems) - 1} more problem(s))" if len(self.problems) > 1 else ""
        super().__init__(f"invalid model graph: {head}{more}")


class DataError(WorkbenchError):
    """Input data cannot be read or does not fit the task."""


class ProjectFileError(WorkbenchError):
    """A project file cannot be read (corrupt, truncated, unknown format, newer version...)."""


class MissingPluginError(ProjectFileError):
    """A project needs a plugin that is not installed (or too old)."""


class PluginProviderError(ProjectFileError):
    """A contribution a project uses comes from another distribution than the one the project was saved with, or
    from two distributions at once: using it could silently change what the project computes."""


class TrainingError(WorkbenchError):
    """Training stopped because of a fault (NaN loss, out of memory, plugin exception...)."""


class UnknownContributionError(LookupError):
    """A project or a command names a cell/block/task/decoder/template that no loaded plugin provides."""


class ContributionConflictError(UnknownContributionError):
    """An id that two distributions register: neither is used (which one was meant cannot be known)."""
