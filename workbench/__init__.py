"""Sequence Workbench: build, train and look inside recurrent sequence models."""

__version__ = "0.1.0"
