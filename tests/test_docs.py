"""The docs say what the code does: the plugin guide embeds the tested fixture and every hook's signature."""

import ast
import inspect
import re
from pathlib import Path

from workbench import hookspecs

ROOT = Path(__file__).resolve().parent.parent
GUIDE = ROOT / "docs" / "plugins.md"
EXAMPLE = ROOT / "examples" / "seqwb-plugin-example"


def test_guide_embeds_the_tested_example_verbatim():
    text = GUIDE.read_text()
    blocks = re.findall(r'```\w+ title="([^"]+)"\n(.*?)```\n', text, re.S)
    # one example of every extension point, each a file of the example the test suite installs and runs
    assert {name for name, _ in blocks} == {
        "pyproject.toml", "seqwb_plugin_example/plugin.py", "seqwb_plugin_example/indrnn.py",
        "seqwb_plugin_example/layernorm.py", "seqwb_plugin_example/generated.py", "seqwb_plugin_example/majority.py",
        "seqwb_plugin_example/echo.py", "seqwb_plugin_example/reverse.py", "seqwb_plugin_example/mean.py",
        "seqwb_plugin_example/minp.py", "seqwb_plugin_example/templates.py", "seqwb_plugin_example/tracks.py",
        "tests/test_example_plugin.py"}
    for name, body in blocks:
        assert body == (EXAMPLE / name).read_text(), f"docs/plugins.md is out of date for {name}"
    shipped = {str(p.relative_to(EXAMPLE)) for p in (EXAMPLE / "seqwb_plugin_example").glob("*.py")}
    assert shipped - {name for name, _ in blocks} == {"seqwb_plugin_example/__init__.py",
                                                      "seqwb_plugin_example/parity.py"}


def test_guide_states_the_template_format_and_every_contract_check():
    from workbench.core.plugin_checks import TEMPLATE_KEYS, UI_HINTS
    from workbench.core.project import TrainConfig
    from workbench.schema.params import field_info
    from workbench.testing.contracts import CHECKS
    text = GUIDE.read_text()
    section = text[text.index("## 10. A template"):text.index("## 11.")]
    train = re.search(r"\*\*`train`\*\* keys are .*?:\n(.*?)\.\n", section, re.S).group(1)
    assert re.findall(r"`(\w+)`", train) == [f.name for f in field_info(TrainConfig)], \
        "the template format's train keys are not TrainConfig's fields"
    for key in TEMPLATE_KEYS:
        assert f"| `{key}` | {TEMPLATE_KEYS[key]} |" in section
    for hint in UI_HINTS:
        assert f'| `"{hint}"` |' in text
    for name, what in CHECKS.items():
        assert f"| `{name}` | {what} |" in text, name


def test_docs_name_things_as_they_are():
    text, readme = GUIDE.read_text(), (ROOT / "README.md").read_text()
    for doc in (text, readme):
        assert "Plugins ▸ Plugin Manager" in doc and "Help ▸ Plugins" not in doc
    assert "NODE.cell.NAME" in text and "NODE.cell.NAME" in readme
    assert "baseline_<metric>" in text and "baseline_<metric>" in readme
    # seqwb decode takes a decoder's parameters by their own names; decode.NAME sets the project's saved ones
    assert "`seqwb decode FILE --set NAME=VALUE`" in readme and "decode.NAME" in readme
    from workbench.cli import build_parser
    decode = build_parser().parse_args(["decode", "p.seqwb", "--set", "temperature=0.7"])
    assert decode.set == ["temperature=0.7"]


def _hookspec_signatures() -> dict[str, tuple[str, str]]:
    """hook name -> (signature as written in workbench/hookspecs.py without ``self``, docstring), parsed from the
    source so that the doc must repeat exactly what the contract says."""
    tree = ast.parse(Path(hookspecs.__file__).read_text())
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "SeqwbHookSpecs")
    out = {}
    for fn in cls.body:
        if isinstance(fn, ast.FunctionDef) and any(ast.unparse(d) == "hookspec" for d in fn.decorator_list):
            args = fn.args
            args.args = [a for a in args.args if a.arg != "self"]
            out[fn.name] = (f"{fn.name}({ast.unparse(args)}) -> {ast.unparse(fn.returns)}",
                            inspect.cleandoc(ast.get_docstring(fn, clean=False) or ""))
    return out


def test_guide_documents_every_hook_with_its_exact_signature_and_docstring():
    text = GUIDE.read_text()
    specs = _hookspec_signatures()
    assert set(specs) == set(hookspecs.HOOKS)
    for name, (signature, doc) in specs.items():
        assert f"### `{signature}`" in text, f"{name} is not documented with its exact signature {signature!r}"
        assert doc and doc in text, f"the docstring of {name} is not in docs/plugins.md verbatim"
        fn = getattr(hookspecs.SeqwbHookSpecs, name)   # and the runtime signature agrees with the parsed one
        assert signature == f"{name}() -> {inspect.signature(fn).return_annotation}"
    documented = set(re.findall(r"### `(seqwb_\w+)\(", text))
    assert documented == set(hookspecs.HOOKS)


def test_guide_states_the_api_version_and_the_disable_switches():
    text = GUIDE.read_text()
    assert f"`API_VERSION = \"{hookspecs.API_VERSION}\"`" in text
    assert f"{hookspecs.API_ATTRIBUTE} = " in text
    for switch in ("SEQWB_DISABLE_PLUGINS", "SEQWB_NO_PLUGINS", "plugins.json", "seqwb plugin new", "twine upload"):
        assert switch in text, switch


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
