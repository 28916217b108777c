"""Example Sequence Workbench plugin: IndRNN cell, parity task, running-parity feature track."""

__version__ = "0.1.0"
