"""The training device, found off the GUI thread: importing torch takes a second or two, and the window must have
painted before anything imports it."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QObject, Signal

from workbench.gui.jobs import JobRunner


def probe_devices() -> tuple[str, list[tuple[str, str]]]:
    """What a run started now would train on, in words, and ``[(value, label)]`` of the accelerators found (CUDA
    devices, Apple MPS) for the dashboard's device chooser.  A broken torch is described, not raised."""
    devices: list[tuple[str, str]] = []
    try:
        from workbench.core.device import (available_devices, cpu_count, default_threads, describe_device,
                                           resolve_device)
        device = resolve_device("auto")
        if device.type == "cpu":    # what a run started here will use by default, not torch's own count
            n = default_threads(True)
            text = f"CPU (trains on {n} of {cpu_count()} cores by default)"
        else:
            text = describe_device(device)
        for name in available_devices():
            if name.startswith("cuda:"):
                import torch
                devices.append((name, f"CUDA {name[5:]}: {torch.cuda.get_device_name(int(name[5:]))}"))
            elif name == "mps":
                devices.append((name, "Apple MPS"))
    except Exception as exc:  # noqa: BLE001 - a broken torch must not take the window down
        text = f"unavailable ({type(exc).__name__}: {exc})"
    return text, devices


class DeviceProbe(QObject):
    """``start()`` probes in a worker thread; ``found(text)`` then ``devices(list)`` come on the GUI thread."""

    found = Signal(str)
    devices = Signal(list)       # [(value, label)] for the dashboard's device chooser

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.jobs = JobRunner("device probe", self)

    def start(self) -> None:
        self.jobs.submit(lambda _job: probe_devices(), on_result=self._report)

    def _report(self, result: Any) -> None:
        text, devices = result
        self.found.emit(text)
        self.devices.emit(devices)
