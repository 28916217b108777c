"""The training dashboard's predicted-vs-actual plot, for a task that forecasts a series.

The model's forecasts over the validation split against the series and against the naive forecast are computed by
:class:`workbench.core.forecasts.Forecaster` (what ``seqwb forecast`` prints) in a worker thread of the dashboard,
from a snapshot of the project: when the dashboard shows a project, when a run saves a checkpoint or ends, and when
another step of the horizon is chosen.  Whether the task forecasts at all is asked in the worker too (it imports the
task's module), so other projects never pay for it.  A part of :class:`~workbench.gui.dashboard.TrainingDashboard`
(``self`` is the dashboard).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Optional

from workbench.gui.jobs import Job, JobRunner

FORECAST_JOB = "forecast"


def forecast_in_worker(forecaster: Any, registry: Any, project: Any, base_dir: Path, step: int,
                       _job: Job) -> Optional[dict[str, Any]]:
    """The forecast lines, ``{"untrained": True}`` before training, or None for a task that does not forecast."""
    from workbench.core.forecasts import can_forecast
    from workbench.core.project import available_weights
    if not registry.has("task", project.task.id) or not can_forecast(registry.task(project.task.id).load()):
        return None
    if not available_weights(project)["current"]["trained"]:
        return {"untrained": True}
    lines = forecaster.lines(project, base_dir, step=step)
    return lines


class ForecastPlot:
    """The Forecast vs actual plot of :class:`~workbench.gui.dashboard.TrainingDashboard`."""

    def _forecast_setup(self) -> None:
        self.forecast_jobs = JobRunner("forecast", self)
        self._forecaster: Any = None
        self._forecast_key: Any = None
        self.plots.forecast_step.valueChanged.connect(lambda _v: self.refresh_forecast(force=True))

    def refresh_forecast(self, force: bool = False) -> None:
        """Compute the plot again if the project's weights (or the step asked for) changed since the last time."""
        from workbench.core.forecasts import Forecaster
        from workbench.gui.inspect_units import snapshot
        project = self.doc.project
        ckpt = project.checkpoint
        key = (id(project), project.task.id, id(ckpt), ckpt.step if ckpt else 0, project.graph.content_hash(),
               self.plots.forecast_step.value())
        if key == self._forecast_key and not force:
            return
        self._forecast_key = key
        if self._forecaster is None:
            self._forecaster = Forecaster(self.doc.registry)
        base = Path(self.doc.path).resolve().parent if self.doc.path else Path.cwd()
        self.forecast_jobs.submit(
            functools.partial(forecast_in_worker, self._forecaster, self.doc.registry, snapshot(project), base,
                              self.plots.forecast_step.value()),
            key=FORECAST_JOB, on_result=self._forecast_arrived, on_error=self._forecast_failed)

    def _forecast_arrived(self, lines: Optional[dict[str, Any]]) -> None:
        self.plots.show_forecast_panel(lines is not None)
        if lines is None:
            return
        if lines.get("untrained"):
            self.plots.set_forecast(None, "train the model to see its forecasts")
        else:
            self.plots.set_forecast(lines)

    def _forecast_failed(self, message: str) -> None:
        self.plots.set_forecast(None, message)

    def _forecast_project_replaced(self) -> None:
        """Another project: its own model and data (a new session), nothing of the previous plot."""
        self.forecast_jobs.drop(FORECAST_JOB)
        self._forecaster = None
        self._forecast_key = None
        self.plots.show_forecast_panel(False)
        self.plots.set_forecast(None)
