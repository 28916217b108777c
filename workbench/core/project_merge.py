"""Merging two versions of one project: what a writer does when the file it saves to was changed by someone else
since it read it (another ``seqwb train``, a window's save, a file synced from another machine).

A run is append-only history, so two versions can always be merged without losing one: every run of either
version is kept.  The design (graph, task and settings, notes, views) is the saver's own: it is what the saver
is looking at and chose to keep.  The checkpoint (weights, optimizer, position) is the newer one: the checkpoint
of the run that started last, or of the same run further on; the vocabulary and the data description go with it.

Plain Python: no torch, no files.  The caller reads the other version and writes the result.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from workbench.core.project import Project, Run


@dataclass
class MergeResult:
    """What :func:`merge_projects` did, for the user: runs added from the other version (with their ids in the
    result), runs renamed because both versions used an id for different runs, and whose checkpoint was kept."""

    added: list[str] = field(default_factory=list)
    renamed: list[tuple[str, str]] = field(default_factory=list)      # (id in the other version, id now)
    checkpoint_from_theirs: bool = False

    @property
    def changed(self) -> bool:
        return bool(self.added or self.renamed or self.checkpoint_from_theirs)

    def describe(self, theirs_name: str = "the file on disk") -> str:
        """One line: ``kept run-2 (trained meanwhile) from the file on disk; its checkpoint (newer) too``."""
        if not self.changed:
            return f"nothing new in {theirs_name}"
        parts = []
        if self.added:
            parts.append(f"kept {', '.join(self.added)} from {theirs_name}")
        if self.renamed:
            parts.append("; ".join(f"its {old} is now {new} (this version has another {old})"
                                   for old, new in self.renamed))
        if self.checkpoint_from_theirs:
            parts.append(f"the newer checkpoint is {theirs_name}'s")
        return "; ".join(parts)


def _last_step(run: Run) -> int:
    return max((s.step[-1] for s in run.series.values() if s.step), default=-1)


def _same_number(x: float, y: float) -> bool:
    return x == y or (x != x and y != y)          # NaN (a diverged run) equals NaN here


def _same_run(a: Run, b: Run) -> bool:
    """Two records of one run: the same id, start and settings, and where both have numbers, the same first ones
    (a run resumed from a checkpoint has the same beginning; two runs that happened to get the same id in the same
    second, in two processes, differ in their settings or their first losses)."""
    if a.id != b.id or a.started != b.started or a.settings != b.settings:
        return False
    for name in set(a.series) & set(b.series):
        sa, sb = a.series[name], b.series[name]
        n = min(len(sa.step), len(sb.step), 3)
        if sa.step[:n] != sb.step[:n] or not all(map(_same_number, sa.value[:n], sb.value[:n])):
            return False
    return True


def _free_id(taken: set[str]) -> str:
    n = 1 + max((int(i.rsplit("-", 1)[-1]) for i in taken if i.rsplit("-", 1)[-1].isdigit()), default=0)
    return f"run-{n}"


def _checkpoint_run(project: Project) -> Run | None:
    ckpt = project.checkpoint
    if ckpt is None:
        return None
    run_id = (ckpt.trainer_state or {}).get("run_id")
    for run in reversed(project.history.runs):
        if run.id == run_id:
            return run
    return project.history.runs[-1] if project.history.runs and not run_id else None


def _theirs_is_newer(mine: Project, theirs: Project) -> bool:
    """Whether the other version's checkpoint is newer than the saver's (see the module docstring)."""
    a, b = mine.checkpoint, theirs.checkpoint
    if b is None or not b.weights:
        return False
    if a is None or not a.weights:
        return True
    run_a, run_b = _checkpoint_run(mine), _checkpoint_run(theirs)
    start_a = run_a.started if run_a is not None else ""
    start_b = run_b.started if run_b is not None else ""
    if run_a is not None and run_b is not None and _same_run(run_a, run_b):
        return b.step > a.step
    return start_b > start_a


def merge_projects(mine: Project, theirs: Project) -> MergeResult:
    """Put into ``mine`` everything of ``theirs`` that it lacks (see the module docstring); ``theirs`` is not
    changed.  Runs stay in the order they started."""
    result = MergeResult()
    runs = list(mine.history.runs)
    taken = {r.id for r in runs}
    renames: dict[str, str] = {}
    for run in theirs.history.runs:
        twin = next((i for i, r in enumerate(runs) if _same_run(r, run)), None)
        if twin is not None:
            if _last_step(run) > _last_step(runs[twin]):
                runs[twin] = run           # the same run, further on in the other version
            continue
        if run.id in taken:
            new_id = _free_id(taken)
            renames[run.id] = new_id
            result.renamed.append((run.id, new_id))
            run = Run(id=new_id, started=run.started, settings=run.settings, status=run.status,
                      message=run.message, series=run.series, gtt=run.gtt, samples=run.samples)
        taken.add(run.id)
        runs.append(run)
        result.added.append(run.id)
    newer = _theirs_is_newer(mine, theirs)
    # in the order they started (a stable sort: runs started in the same second keep the order they had)
    order = {id(r): i for i, r in enumerate(runs)}
    runs.sort(key=lambda r: (r.started, order[id(r)]))
    mine.history.runs = runs
    if newer:
        ckpt = theirs.checkpoint
        assert ckpt is not None
        old_id = (ckpt.trainer_state or {}).get("run_id")
        if old_id in renames:      # the checkpoint names its run by the id it has now
            ckpt.trainer_state = {**ckpt.trainer_state, "run_id": renames[old_id]}
        mine.checkpoint = ckpt
        mine.vocab = list(theirs.vocab) if theirs.vocab is not None else None
        if theirs.data:
            mine.data = dict(theirs.data)
        result.checkpoint_from_theirs = True
    return result
