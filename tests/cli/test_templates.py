"""Every template, as a user would run it: new -> train 50 steps -> eval --json (small sizes, probes on)."""

import json
import math
import subprocess
import sys

import pytest

from tests.conftest import make_subprocess_env
from workbench.plugin_system import discover

SHRINK = {"hidden_size": 16, "embed_size": 8, "layers": 1}
TEMPLATES = sorted(discover().items["template"])


def seqwb(*args, cwd, timeout=600):
    return subprocess.run([sys.executable, "-m", "workbench", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env=make_subprocess_env(), timeout=timeout)


@pytest.mark.slow
@pytest.mark.parametrize("template", TEMPLATES)
def test_template_new_train_eval(template, tmp_path):
    path = tmp_path / "p.seqwb"
    proc = seqwb("new", template, "-o", path, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    info = json.loads(seqwb("info", path, "--json", cwd=tmp_path).stdout)
    assert info["valid"], info["problems"]
    if template.startswith("word-lm-ptb-"):
        # Penn Treebank is the user's own copy: without it, training says what it looked for and changes nothing
        before = path.read_bytes()
        proc = seqwb("train", path, "--steps", 1, cwd=tmp_path)
        assert proc.returncode == 1 and "data_dir" in proc.stderr and "Traceback" not in proc.stderr
        assert path.read_bytes() == before
        from workbench_plugins.word_lm import write_ptb_files
        write_ptb_files(tmp_path, prefix="ptb", max_words=20000)  # PTB-format files next to the project
    shrink = [f"{node['id']}.{k}={v}" for node in info["nodes"] for k, v in SHRINK.items() if k in node["params"]]
    settings = [*shrink, "batch_size=4", "eval_batches=2", "eval_every=0", "sample_every=25", "probe_every=25",
                "probe_batch=2", "probe_len=8", "epochs=0", "steps=1000"]
    args = [x for s in settings for x in ("--set", s)]
    proc = seqwb("train", path, "--steps", 50, "--json", *args, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    lines = [json.loads(x) for x in proc.stdout.splitlines()]
    steps = [x for x in lines if x["event"] == "step"]
    assert steps and steps[-1]["step"] == 50 and math.isfinite(steps[-1]["loss"])
    assert any(x["event"] == "probe" for x in lines)
    proc = seqwb("eval", path, "--json", "--max-batches", 3, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    ev = json.loads(proc.stdout)
    assert ev["trained"] and ev["step"] == 50 and ev["metrics"]
