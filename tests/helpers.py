"""Shared helpers for the tests: small projects that train in a second."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from workbench.core.project import Project
from workbench.core.settings import template_project

SMALL = {"hidden_size": "32", "layers": "2", "embed_size": "16", "batch_size": "4", "chunk_len": "16",
         "eval_every": "0", "sample_every": "0", "probe_every": "0", "eval_batches": "2", "task.max_chars": "20000",
         # the tests compare numbers at float32's precision (char-lm's own "auto" is bf16 on CPUs that have it)
         "precision": "fp32"}


def small_project(registry, **overrides) -> Project:
    settings = dict(SMALL)
    settings.update({k: str(v) for k, v in overrides.items()})
    project, _ = template_project(registry.template("char-lm"), settings, registry)
    return project


def write_corpus(folder: Path, text: str | None = None, name: str = "corpus.txt") -> Path:
    text = text or ("def f(x):\n    return 'quote' + str(x)  # comment\n" * 400)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def with_train(project: Project, **changes) -> Project:
    project.train = dataclasses.replace(project.train, **changes)
    return project
