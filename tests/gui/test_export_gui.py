"""Export from the window: File ▸ Export ▸ Model (ONNX / TorchScript), run metrics as CSV, samples as text, and
every dashboard plot as PNG / SVG / CSV (pytest-qt, offscreen, a tiny char-LM trained for a few steps)."""

from __future__ import annotations

import csv
import io
import xml.etree.ElementTree as ET

import pytest

pytest.importorskip("pytestqt")

import torch  # noqa: E402
from PySide6.QtGui import QImage  # noqa: E402
from PySide6.QtWidgets import QMessageBox  # noqa: E402

from tests.gui.window_helpers import isolated_settings, make_window  # noqa: E402,F401
from tests.helpers import small_project  # noqa: E402
from workbench.core.projectfile import load_project, save_project  # noqa: E402
from workbench.core.training.trainer import Trainer  # noqa: E402
from workbench.gui import export_menu, plot_export  # noqa: E402



@pytest.fixture(scope="module")
def trained_file(reg, tmp_path_factory):
    """A char-LM (hidden 16) trained 12 steps: series, validation, probes and samples in its history."""
    torch.set_num_threads(1)
    folder = tmp_path_factory.mktemp("export-gui")
    project = small_project(reg, hidden_size=16, layers=1, batch_size=4, chunk_len=16, eval_every=4,
                            eval_batches=1, probe_every=4, sample_every=6, sample_len=30, threads=1)
    trainer = Trainer(project, reg, base_dir=folder)
    trainer.fit(steps=12)
    trainer.checkpoint()
    path = folder / "tiny.seqwb"
    save_project(project, path)
    return path


class Dialogs:
    """Stand-ins for the modal dialogs: the next save path, and a record of every message box."""

    def __init__(self, monkeypatch):
        self.next_path = ("", "")
        self.messages: list[tuple[str, str, str]] = []
        self.answer = QMessageBox.StandardButton.Yes
        save = lambda *a, **k: self.next_path  # noqa: E731
        for module in (export_menu, plot_export):
            monkeypatch.setattr(module.QFileDialog, "getSaveFileName", staticmethod(save))
        for kind in ("information", "warning"):
            monkeypatch.setattr(QMessageBox, kind, staticmethod(
                lambda parent, title, text, *a, _k=kind, **kw: self.messages.append((_k, title, text))))
        monkeypatch.setattr(QMessageBox, "question", staticmethod(lambda *a, **k: self.answer))


@pytest.fixture
def dialogs(monkeypatch):
    return Dialogs(monkeypatch)


def _open(make_window, reg, path):
    win = make_window(reg, load_project(path, registry=reg), str(path))
    win.resize(1280, 800)
    return win


def test_file_export_model_writes_a_checked_torchscript_file(make_window, reg, trained_file, dialogs, tmp_path,
                                                             qtbot):
    win = _open(make_window, reg, trained_file)
    assert [a.text() for a in win.views["export"].menu.actions()][:1] == ["&Model (ONNX or TorchScript)…"]
    file_menu = win.menuBar().actions()[0].menu()
    assert win.views["export"].menu.menuAction() in file_menu.actions()

    out = tmp_path / "lm.pt"
    dialogs.next_path = (str(out), export_menu.MODEL_FILTERS["torchscript"])
    win.views["export"].actions["model"].trigger()
    assert out.exists(), dialogs.messages
    assert win.last_export["ok"] and win.last_export["format"] == "torchscript"
    assert win.last_export["max_abs_diff"] <= 1e-5
    kind, title, text = dialogs.messages[-1]
    assert kind == "information" and "tokens" in text and "logits" in text

    # the file is the trained model: it scores a batch exactly as the project's model does
    from workbench.core.training.session import ModelSession
    model = ModelSession(reg).load(win.doc.project, trained_file.parent, "current", "cpu").model
    tokens = torch.randint(0, 10, (9, 3))
    with torch.no_grad():
        expected = model({"tokens": tokens}, None)[0]["logits"]
        (got,) = torch.jit.load(str(out))(tokens)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)


def test_export_model_failures_are_shown_and_write_nothing(make_window, reg, trained_file, dialogs, tmp_path):
    win = _open(make_window, reg, trained_file)
    missing = tmp_path / "no-such-folder" / "lm.onnx"
    dialogs.next_path = (str(missing), export_menu.MODEL_FILTERS["onnx"])
    win.views["export"].actions["model"].trigger()
    assert not missing.exists()
    kind, title, text = dialogs.messages[-1]
    assert kind == "warning" and title == "Cannot export the model" and "does not exist" in text
    assert not win.last_export["ok"]

    # an untrained model asks first; Cancel writes nothing
    fresh = make_window(reg, small_project(reg, hidden_size=8))
    dialogs.answer = QMessageBox.StandardButton.Cancel
    out = tmp_path / "fresh.pt"
    dialogs.next_path = (str(out), export_menu.MODEL_FILTERS["torchscript"])
    before = len(dialogs.messages)
    fresh.views["export"].actions["model"].trigger()
    assert not out.exists() and len(dialogs.messages) == before


def test_run_metrics_csv_and_samples_text(make_window, reg, trained_file, dialogs, tmp_path):
    win = _open(make_window, reg, trained_file)
    run = win.doc.project.history.current
    win.views["export"].menu.aboutToShow.emit()         # what opening the menu does
    assert win.views["export"].actions["metrics"].isEnabled() and win.views["export"].actions["samples"].isEnabled()

    csv_path = tmp_path / "metrics.csv"
    dialogs.next_path = (str(csv_path), "CSV table (*.csv)")
    win.views["export"].actions["metrics"].trigger()
    rows = list(csv.DictReader(io.StringIO(csv_path.read_text())))
    assert len(rows) == sum(len(s.step) for s in run.series.values())
    assert {r["series"] for r in rows} == set(run.series)
    loss = [(int(r["step"]), float(r["value"])) for r in rows if r["series"] == "train/loss"]
    assert loss == list(zip(run.series["train/loss"].step, run.series["train/loss"].value))

    txt_path = tmp_path / "samples"
    dialogs.next_path = (str(txt_path), "Text file (*.txt)")
    win.views["export"].actions["samples"].trigger()
    written = (tmp_path / "samples.txt").read_text(encoding="utf-8")
    assert run.samples and all(s["text"] in written and f"step {s['step']}" in written for s in run.samples)


def test_every_dashboard_plot_exports_png_svg_and_csv(make_window, reg, trained_file, dialogs, tmp_path, qtbot):
    win = _open(make_window, reg, trained_file)
    win.show_dashboard()
    dash = win.dashboard
    qtbot.waitUntil(lambda: bool(dash.plots.loss_panel.curves) and dash.plots.heat_panel.image.image is not None,
                    timeout=15000)
    panels = [w for w in dash.findChildren(plot_export.QWidget) if hasattr(w, "export_button")]
    assert len(panels) >= 8
    for panel in panels:
        menu_actions = {a.objectName(): a for a in panel.export_button.menu().actions()}
        assert set(menu_actions) == {"plotExport:png", "plotExport:svg", "plotExport:csv"}

    panel = dash.plots.loss_panel
    acts = {a.objectName(): a for a in panel.export_button.menu().actions()}
    for fmt in ("png", "svg", "csv"):
        dialogs.next_path = (str(tmp_path / f"loss.{fmt}"), plot_export.FORMATS[fmt])
        acts[f"plotExport:{fmt}"].trigger()
    image = QImage(str(tmp_path / "loss.png"))
    assert image.width() == 2 * panel.width() and image.height() == 2 * panel.height()
    svg = ET.parse(tmp_path / "loss.svg").getroot()
    assert svg.tag.endswith("svg") and any(el.tag.endswith("polyline") for el in svg.iter())
    rows = list(csv.DictReader(io.StringIO((tmp_path / "loss.csv").read_text())))
    assert rows and set(rows[0]) == {"series", "step", "value"}
    run = win.doc.project.history.current
    assert len(rows) >= len(run.series["train/loss"].step)   # the every-step curve alone has that many

    # an unticked legend entry hides its curve, and hidden curves are left out of the CSV
    first_box = next(iter(panel.legend_entries.values()))
    first_box.setChecked(False)
    plot_export.export_panel(panel, tmp_path / "loss2.csv", "csv")
    rows2 = list(csv.DictReader(io.StringIO((tmp_path / "loss2.csv").read_text())))
    assert first_box.text() not in {r["series"] for r in rows2} and len(rows2) < len(rows)

    # the heatmap's CSV is its matrix: a row per probe, a column per timestep
    plot_export.export_panel(dash.plots.heat_panel, tmp_path / "heat.csv", "csv")
    table = list(csv.reader(io.StringIO((tmp_path / "heat.csv").read_text())))
    image = dash.plots.heat_panel.image.image
    assert table[0][0] == "step" and len(table) - 1 == image.shape[0] and len(table[1]) - 1 == image.shape[1]

    # the dashboard's own Export button does the same for the selected runs
    actions = {a.objectName(): a for a in dash.export_button.menu().actions()}
    dialogs.next_path = (str(tmp_path / "dash.csv"), "CSV table (*.csv)")
    actions["runsExport:metrics"].trigger()
    assert (tmp_path / "dash.csv").read_text().startswith("run,series,step,value\n")
