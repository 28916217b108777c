"""workbench.schema.params: parsing ``key=value`` settings, validation, (de)serialisation."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Literal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workbench.schema.params import (ParamError, apply_settings, describe_params, field_info, param,
                                            params_from_dict, params_to_dict, parse_assignments, parse_value,
                                            suggest, validate_params)


@dataclass
class Cfg:
    hidden_size: int = param(128, min=1, max=65536, help="units per layer")
    steps: int = 0
    lr: float = param(1e-3, min=0.0, max=10.0, help="learning rate")
    dropout: float = param(0.0, min=0.0, max=1.0)
    fused: bool = param(True)
    name: str = param("run")
    cell: Literal["lstm", "gru", "rnn"] = "lstm"
    optimizer: str = param("adam", choices=("adam", "sgd", "rmsprop"))
    heads: Literal[1, 2, 4] = 2
    seed: int | None = param(None, min=0)
    clip: float | None = param(None, min=0.0)
    mode: Literal["a", "b"] | None = None


@dataclass(frozen=True)
class Window:
    lo: int = 0
    hi: int = 10

    def validate(self) -> None:
        if self.lo > self.hi:
            raise ValueError(f"lo ({self.lo}) must not exceed hi ({self.hi})")


@dataclass
class Strict:
    size: int = 4

    def validate(self) -> None:
        if self.size % 2:
            raise ParamError(f"size: {self.size} must be even")


def _error(fn, *args, **kwargs) -> str:
    with pytest.raises(ParamError) as info:
        fn(*args, **kwargs)
    return str(info.value)


# ---- int ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("512", 512), ("1_000", 1000), ("1e3", 1000), ("2E2", 200), ("1e0", 1), (" 7 ", 7), ("-3", -3), ("0", 0),
    ("10_000_000", 10_000_000),
])
def test_int_parsing(text, expected):
    value = parse_value(Cfg, "steps", text)
    assert value == expected and type(value) is int


@pytest.mark.parametrize("text", ["1.5", "abc", "", "1e-1", "1.5e0", "true", "0x10", "1e400", "nan"])
def test_int_rejects(text):
    msg = _error(parse_value, Cfg, "steps", text)
    assert msg.startswith("steps: expected int")


def test_int_from_json_values():
    assert params_from_dict(Cfg, {"steps": 3}).steps == 3
    assert params_from_dict(Cfg, {"steps": 3.0}).steps == 3
    assert type(params_from_dict(Cfg, {"steps": 3.0}).steps) is int
    assert "steps" in _error(params_from_dict, Cfg, {"steps": 2.5})
    assert "steps" in _error(params_from_dict, Cfg, {"steps": True})  # a bool is not an int setting
    assert "steps" in _error(params_from_dict, Cfg, {"steps": [1]})


# ---- float -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("0.5", 0.5), ("1e-3", 1e-3), ("3", 3.0), (" 2.5 ", 2.5), ("0.000_5", 0.0005), ("0", 0.0),
])
def test_float_parsing(text, expected):
    value = parse_value(Cfg, "lr", text)
    assert value == expected and type(value) is float


@pytest.mark.parametrize("text", ["abc", "", "nan", "NaN", "1,5"])
def test_float_rejects(text):
    assert _error(parse_value, Cfg, "lr", text).startswith("lr: expected float")


def test_float_from_json_values():
    assert params_from_dict(Cfg, {"lr": 2}).lr == 2.0
    assert type(params_from_dict(Cfg, {"lr": 2}).lr) is float
    assert "lr" in _error(params_from_dict, Cfg, {"lr": True})
    assert "lr" in _error(params_from_dict, Cfg, {"lr": float("nan")})


# ---- bool --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("true", True), ("false", False), ("yes", True), ("no", False), ("1", True), ("0", False),
    ("TRUE", True), (" Yes ", True), ("False", False), ("on", True), ("off", False),
])
def test_bool_parsing(text, expected):
    assert parse_value(Cfg, "fused", text) is expected


@pytest.mark.parametrize("text", ["maybe", "2", "", "y", "t"])
def test_bool_rejects(text):
    assert _error(parse_value, Cfg, "fused", text).startswith("fused: expected bool")


def test_bool_from_json_values():
    assert params_from_dict(Cfg, {"fused": False}).fused is False
    assert "fused" in _error(params_from_dict, Cfg, {"fused": 1})
    assert "fused" in _error(params_from_dict, Cfg, {"fused": None})


# ---- str, choices ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text", ["hello", "", "with spaces", "none", "1e3", "x=y"])
def test_str_is_kept_verbatim(text):
    assert parse_value(Cfg, "name", text) == text


def test_str_rejects_non_strings():
    assert "name" in _error(params_from_dict, Cfg, {"name": 5})


def test_literal_choices():
    assert parse_value(Cfg, "cell", "gru") == "gru"
    msg = _error(parse_value, Cfg, "cell", "lsmt")
    assert msg == "cell: 'lsmt' is not one of: lstm, gru, rnn"


def test_literal_int_choices():
    assert parse_value(Cfg, "heads", "4") == 4
    assert parse_value(Cfg, "heads", "1") == 1
    assert "1, 2, 4" in _error(parse_value, Cfg, "heads", "3")


def test_param_choices():
    assert parse_value(Cfg, "optimizer", "sgd") == "sgd"
    assert "adam, sgd, rmsprop" in _error(parse_value, Cfg, "optimizer", "adamw")
    # Choices are checked for whole objects too, not just for parsed strings.
    assert "optimizer" in _error(validate_params, Cfg(optimizer="adamw"))


# ---- X | None ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text", ["none", "None", "NONE", " none ", "null"])
def test_optional_none(text):
    assert parse_value(Cfg, "seed", text) is None
    assert parse_value(Cfg, "clip", text) is None
    assert parse_value(Cfg, "mode", text) is None


def test_optional_values():
    assert parse_value(Cfg, "seed", "42") == 42
    assert parse_value(Cfg, "clip", "0.5") == 0.5
    assert parse_value(Cfg, "mode", "b") == "b"
    assert params_from_dict(Cfg, {"seed": None}).seed is None
    assert "seed" in _error(parse_value, Cfg, "seed", "-1")  # the range still applies to the value
    assert "mode" in _error(parse_value, Cfg, "mode", "c")   # and so do the choices


def test_none_for_a_required_value():
    assert _error(parse_value, Cfg, "steps", "none").startswith("steps: expected int")
    assert _error(parse_value, Cfg, "steps", None) == "steps: a value is required (int)"


# ---- ranges ------------------------------------------------------------------------------------------------

def test_range_is_inclusive():
    assert parse_value(Cfg, "hidden_size", "1") == 1
    assert parse_value(Cfg, "hidden_size", "65536") == 65536
    assert parse_value(Cfg, "dropout", "0") == 0.0
    assert parse_value(Cfg, "dropout", "1") == 1.0


def test_range_errors():
    assert _error(parse_value, Cfg, "hidden_size", "0") == "hidden_size: 0 is below the minimum 1"
    assert _error(parse_value, Cfg, "hidden_size", "1e5") == "hidden_size: 100000 is above the maximum 65536"
    assert "dropout" in _error(parse_value, Cfg, "dropout", "1.01")
    assert "lr" in _error(parse_value, Cfg, "lr", "-1e-9")
    assert "below the minimum" in _error(params_from_dict, Cfg, {"hidden_size": -4})


def test_owner_prefixes_the_setting():
    assert _error(parse_value, Cfg, "hidden_size", "0", owner="encoder").startswith("encoder.hidden_size: ")
    assert _error(params_from_dict, Cfg, {"lr": "x"}, owner="train").startswith("train.lr: ")


# ---- unknown names -----------------------------------------------------------------------------------------

def test_unknown_name_suggests_the_closest():
    msg = _error(parse_value, Cfg, "hiden_size", "3")
    assert "unknown setting 'hiden_size'" in msg
    assert "(did you mean 'hidden_size'?)" in msg
    assert "accepts: hidden_size, steps, lr" in msg


def test_unknown_name_without_a_close_match():
    msg = _error(parse_value, Cfg, "zzzzzz", "3")
    assert "unknown setting 'zzzzzz'" in msg and "did you mean" not in msg


def test_unknown_name_names_the_owner():
    msg = _error(parse_value, Cfg, "dropuot", "0.1", owner="lstm")
    assert "'lstm' accepts:" in msg and "did you mean 'dropout'" in msg


def test_suggest():
    assert suggest("hiden", ["hidden", "layers"]) == " (did you mean 'hidden'?)"
    assert suggest("qqq", ["hidden", "layers"]) == ""
    assert suggest("x", []) == ""


# ---- parse_assignments -------------------------------------------------------------------------------------

def test_parse_assignments():
    items = ["a=1", "b.c=x", " k =v", "expr=a=b", "empty=", "spaced=two words"]
    assert parse_assignments(items) == {"a": "1", "b.c": "x", "k": "v", "expr": "a=b", "empty": "",
                                        "spaced": "two words"}
    assert parse_assignments([]) == {}


def test_parse_assignments_last_one_wins():
    assert parse_assignments(["a=1", "a=2"]) == {"a": "2"}


@pytest.mark.parametrize("item", ["novalue", "=3", " =3", "a b=1", "", "hidden size=3"])
def test_parse_assignments_malformed(item):
    msg = _error(parse_assignments, ["ok=1", item])
    assert msg == f"malformed setting {item!r}: expected key=value"


# ---- apply_settings ----------------------------------------------------------------------------------------

def test_apply_settings_returns_a_new_validated_instance():
    base = Cfg()
    new = apply_settings(base, {"hidden_size": "512", "fused": "no", "cell": "gru", "seed": "none", "lr": 0.1})
    assert new is not base
    assert (new.hidden_size, new.fused, new.cell, new.seed, new.lr) == (512, False, "gru", None, 0.1)
    assert base == Cfg()  # untouched
    assert apply_settings(base, {}) == base


def test_apply_settings_errors():
    assert "did you mean 'hidden_size'" in _error(apply_settings, Cfg(), {"hidden": "3"})
    assert "hidden_size: 0 is below the minimum 1" in _error(apply_settings, Cfg(), {"hidden_size": "0"})


def test_apply_settings_frozen_and_validate_hook():
    w = apply_settings(Window(), {"lo": "3"})
    assert w == Window(lo=3, hi=10)
    msg = _error(apply_settings, Window(), {"lo": "11"}, owner="window")
    assert msg == "window: lo (11) must not exceed hi (10)"


# ---- params_from_dict / params_to_dict ---------------------------------------------------------------------

def test_params_from_dict_defaults_and_values():
    assert params_from_dict(Cfg, {}) == Cfg()
    assert params_from_dict(Cfg, None) == Cfg()
    obj = params_from_dict(Cfg, {"hidden_size": "64", "cell": "rnn", "clip": 1})
    assert obj == Cfg(hidden_size=64, cell="rnn", clip=1.0)


def test_params_from_dict_unknown_keys():
    msg = _error(params_from_dict, Cfg, {"hidden_size": 4, "layerz": 2}, owner="encoder")
    assert "unknown setting 'layerz'" in msg and "'encoder' accepts:" in msg
    assert params_from_dict(Cfg, {"hidden_size": 4, "layerz": 2}, ignore_unknown=True) == Cfg(hidden_size=4)


@pytest.mark.parametrize("data", [[("hidden_size", 3)], "hidden_size=3", 5])
def test_params_from_dict_needs_a_mapping(data):
    msg = _error(params_from_dict, Cfg, data, owner="cell")
    assert msg.startswith("cell: expected an object of settings")


def test_params_from_dict_required_field():
    @dataclass
    class NeedsValue:
        size: int

    assert params_from_dict(NeedsValue, {"size": "3"}).size == 3
    assert "NeedsValue" in _error(params_from_dict, NeedsValue, {})


def test_params_to_dict_is_plain_and_json_ready():
    d = params_to_dict(Cfg(seed=3))
    assert d == {"hidden_size": 128, "steps": 0, "lr": 1e-3, "dropout": 0.0, "fused": True, "name": "run",
                 "cell": "lstm", "optimizer": "adam", "heads": 2, "seed": 3, "clip": None, "mode": None}
    assert json.loads(json.dumps(d)) == d


# ---- the dataclass's own validate() ------------------------------------------------------------------------

def test_validate_hook_from_dict():
    assert params_from_dict(Window, {"lo": 2, "hi": 2}) == Window(2, 2)
    assert _error(params_from_dict, Window, {"lo": 5, "hi": 1}) == "lo (5) must not exceed hi (1)"
    assert _error(params_from_dict, Window, {"lo": 5, "hi": 1}, owner="w") == "w: lo (5) must not exceed hi (1)"


def test_validate_hook_param_error_passes_through():
    assert _error(params_from_dict, Strict, {"size": 3}, owner="x") == "size: 3 must be even"


def test_validate_params_checks_fields_first():
    validate_params(Cfg())
    assert "hidden_size" in _error(validate_params, Cfg(hidden_size=0))
    assert "fused" in _error(validate_params, Cfg(fused=5))
    assert "name" in _error(validate_params, Cfg(name=None))
    assert _error(validate_params, Window(lo=1, hi=0)) == "lo (1) must not exceed hi (0)"


# ---- messages: one clear line that names the setting ---------------------------------------------------------

@pytest.mark.parametrize("name, value", [
    ("hidden_size", "abc"), ("hidden_size", "0"), ("hidden_size", "1e9"), ("steps", "1.5"), ("lr", "x"),
    ("dropout", "2"), ("fused", "maybe"), ("cell", "transformer"), ("optimizer", "adamw"), ("heads", "3"),
    ("seed", "-2"), ("clip", "-1"), ("mode", "z"), ("steps", None), ("hiden_size", "1"), ("lrr", "1"),
])
def test_error_messages_are_one_line_naming_the_setting(name, value):
    for fn in (lambda: parse_value(Cfg, name, value, owner="cfg"),
               lambda: params_from_dict(Cfg, {name: value}, owner="cfg"),
               lambda: apply_settings(Cfg(), {name: value}, owner="cfg")):
        with pytest.raises(ParamError) as info:
            fn()
        msg = str(info.value)
        assert "\n" not in msg and msg == msg.strip()
        assert name in msg
        assert "Traceback" not in msg
        assert info.value.__cause__ is None or isinstance(info.value.__cause__, ParamError)


def test_param_error_is_a_value_error():
    assert issubclass(ParamError, ValueError)


# ---- field_info / describe ---------------------------------------------------------------------------------

def test_field_info():
    infos = {i.name: i for i in field_info(Cfg)}
    assert list(infos) == [f.name for f in dataclasses.fields(Cfg)]
    assert (infos["hidden_size"].base, infos["hidden_size"].min, infos["hidden_size"].max) == (int, 1, 65536)
    assert infos["hidden_size"].help == "units per layer"
    assert infos["cell"].choices == ("lstm", "gru", "rnn") and infos["cell"].base is str
    assert infos["optimizer"].choices == ("adam", "sgd", "rmsprop")
    assert infos["seed"].optional and infos["seed"].base is int and infos["seed"].default is None
    assert infos["mode"].optional and infos["mode"].choices == ("a", "b")
    assert not infos["steps"].optional and infos["steps"].default == 0
    assert field_info(Cfg())[0].name == "hidden_size"  # an instance works too


def test_describe_params():
    lines = describe_params(Cfg)
    assert lines[0] == "hidden_size (int, default 128); range [1, 65536]; units per layer"
    assert "cell (str, default 'lstm'); one of lstm, gru, rnn" in lines
    assert any(line.startswith("seed (int or none, default None)") for line in lines)


def test_field_info_rejects_unsupported_types():
    @dataclass
    class Bad:
        sizes: list = dataclasses.field(default_factory=list)

    @dataclass
    class Ambiguous:
        x: int | str = 0

    with pytest.raises(TypeError, match="unsupported parameter type"):
        field_info(Bad)
    with pytest.raises(TypeError, match="unsupported parameter type"):
        field_info(Ambiguous)
    with pytest.raises(TypeError, match="not a dataclass"):
        field_info(int)


def test_param_default_factory():
    @dataclass
    class WithFactory:
        name: str = param(default_factory=lambda: "made", help="built")

    assert WithFactory().name == "made"
    assert field_info(WithFactory)[0].default == "made"


# ---- properties --------------------------------------------------------------------------------------------

finite = dict(allow_nan=False, allow_infinity=False)
cfgs = st.builds(
    Cfg,
    hidden_size=st.integers(1, 65536),
    steps=st.integers(-10**12, 10**12),
    lr=st.floats(0.0, 10.0, **finite),
    dropout=st.floats(0.0, 1.0, **finite),
    fused=st.booleans(),
    name=st.text(max_size=20),
    cell=st.sampled_from(["lstm", "gru", "rnn"]),
    optimizer=st.sampled_from(["adam", "sgd", "rmsprop"]),
    heads=st.sampled_from([1, 2, 4]),
    seed=st.none() | st.integers(0, 2**63),
    clip=st.none() | st.floats(0.0, 1e6, **finite),
    mode=st.none() | st.sampled_from(["a", "b"]),
)


@settings(deadline=None)
@given(cfgs)
def test_roundtrip_through_dict_and_json(obj):
    d = params_to_dict(obj)
    assert params_from_dict(Cfg, d) == obj
    assert params_from_dict(Cfg, json.loads(json.dumps(d))) == obj


@settings(deadline=None)
@given(cfgs)
def test_roundtrip_through_strings(obj):
    # What the CLI does with ``--set name=value``: every value given as its str() comes back unchanged.
    as_text = {k: str(v) for k, v in params_to_dict(obj).items()}
    assert apply_settings(Cfg(), as_text) == obj


@settings(deadline=None)
@given(st.integers())
def test_str_of_int_parses_back(n):
    assert parse_value(Cfg, "steps", str(n)) == n


@settings(deadline=None)
@given(st.booleans())
def test_str_of_bool_parses_back(b):
    assert parse_value(Cfg, "fused", str(b)) is b
    assert parse_value(Cfg, "fused", str(b).lower()) is b
    assert parse_value(Cfg, "fused", str(int(b))) is b


@settings(deadline=None)
@given(st.sampled_from(["lstm", "gru", "rnn"]), st.sampled_from([1, 2, 4]))
def test_str_of_choice_parses_back(cell, heads):
    assert parse_value(Cfg, "cell", str(cell)) == cell
    assert parse_value(Cfg, "heads", str(heads)) == heads


@settings(deadline=None)
@given(st.floats(0.0, 10.0, **finite))
def test_str_of_float_parses_back(x):
    assert parse_value(Cfg, "lr", str(x)) == x
