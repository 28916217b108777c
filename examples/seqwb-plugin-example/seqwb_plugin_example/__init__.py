"""Example Sequence Workbench plugin: a cell, a block, a task of each shape, a decoder, templates and a feature
track."""

__version__ = "0.2.0"
