"""The docs say what the code does: the plugin guide embeds the tested fixture and every hook's signature."""

import inspect
import re
from pathlib import Path

from workbench import hookspecs

ROOT = Path(__file__).resolve().parent.parent
GUIDE = ROOT / "docs" / "plugins.md"
FIXTURE = ROOT / "tests" / "fixtures" / "thirdparty_plugin"


def test_guide_embeds_the_tested_fixture_verbatim():
    text = GUIDE.read_text()
    blocks = re.findall(r'```\w+ title="([^"]+)"\n(.*?)```\n', text, re.S)
    assert {name for name, _ in blocks} == {"pyproject.toml", "seqwb_fixture_cells/plugin.py",
                                            "seqwb_fixture_cells/mgu.py"}
    for name, body in blocks:
        assert body == (FIXTURE / name).read_text(), f"docs/plugins.md is out of date for {name}"


def test_guide_documents_every_hook_with_its_signature():
    text = GUIDE.read_text()
    for name in hookspecs.HOOKS:
        fn = getattr(hookspecs.SeqwbHookSpecs, name)
        ret = inspect.signature(fn).return_annotation
        assert f"### `{name}() -> {ret}`" in text, f"{name} is not documented with its exact signature"
        assert inspect.cleandoc(fn.__doc__).splitlines()[0] in text
    documented = set(re.findall(r"### `(seqwb_\w+)\(", text))
    assert documented == set(hookspecs.HOOKS)


def test_readme_starts_with_the_two_setup_commands():
    readme = (ROOT / "README.md").read_text().splitlines()
    head = "\n".join(readme[:25])
    assert "seqwb" in head and "pytest" in head
    ci = (ROOT / ".ci" / "run").read_text()
    assert "torch==2.13.0" in ci and "python -m pytest" in ci


def test_catalog_is_generated_from_the_specs_and_current():
    from workbench.docgen import catalog_markdown
    from workbench.plugin_system import discover
    expected = catalog_markdown(discover())
    assert (ROOT / "docs" / "catalog.md").read_text() == expected, \
        "docs/catalog.md is stale: regenerate it with `seqwb plugins --markdown > docs/catalog.md`"
    for spec_id in ("lstm", "rnn", "char-lm", "greedy", "sample"):
        assert f"### `{spec_id}`" in expected
