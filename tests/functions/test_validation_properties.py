"""Property tests: validators never crash, and agree with simple reference models."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from genapi import Arg, ArgType, ArgumentError
from genapi.functions.argspec import Limits
from genapi.functions.validation import compile_arg, compile_args

json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(), children,
                                                                      max_size=5),
    max_leaves=20,
)
LIMITS = Limits(string_max_bytes=50, list_max_items=5, map_max_items=5)


@settings(max_examples=300)
@given(arg_type=st.sampled_from(list(ArgType)), value=json_values)
def test_checkers_only_raise_argument_errors(arg_type: ArgType, value: Any) -> None:
    """Whatever JSON arrives, a checker returns a value or raises ArgumentError."""
    checker = compile_arg("x", Arg(arg_type), LIMITS)
    message = "Invalid argument x: "
    try:
        checker(value)
    except ArgumentError as exc:
        message = exc.message
    assert message.startswith("Invalid argument x: ")


@given(text=st.text(), limit=st.integers(min_value=0, max_value=40))
def test_string_limit_matches_utf8_length(text: str, limit: int) -> None:
    """A string passes exactly when its UTF-8 encoding fits the limit."""
    checker = compile_arg("x", Arg("string", max_bytes=limit), LIMITS)
    fits = len(text.encode("utf-8", "surrogatepass")) <= limit
    try:
        checker(text)
        assert fits
    except ArgumentError:
        assert not fits


@given(items=st.lists(json_scalars, max_size=8), limit=st.integers(min_value=0, max_value=6))
def test_list_num_matches_model(items: list[Any], limit: int) -> None:
    """list_num passes exactly when the size fits and every item is a non-bool number."""
    checker = compile_arg("x", Arg("list_num", max_items=limit), LIMITS)
    ok = len(items) <= limit and all(
        isinstance(i, int | float) and not isinstance(i, bool) for i in items
    )
    try:
        assert checker(items) == items
        assert ok
    except ArgumentError:
        assert not ok


keys = st.sampled_from(["a", "b", "c", "d"])


@given(
    value=st.dictionaries(keys, st.integers(), max_size=4),
    required=st.lists(keys, unique=True, max_size=2),
    accept_extra=st.lists(keys, unique=True, max_size=3),
    use_accept=st.booleans(),
)
def test_map_required_and_accept_match_model(
    value: dict[str, int], required: list[str], accept_extra: list[str], use_accept: bool
) -> None:
    """A map passes when every required key is present and (with accept) no other key is."""
    accept = sorted(set(required) | set(accept_extra)) if use_accept else []
    checker = compile_arg("x", Arg("map", required=required, accept=accept), LIMITS)
    ok = all(k in value for k in required) and (not accept or all(k in accept for k in value))
    try:
        checker(value)
        assert ok
    except ArgumentError:
        assert not ok


names = st.sampled_from(["p", "q", "r", "extra"])


@given(args=st.dictionaries(names, st.one_of(st.none(), st.integers(), st.text()), max_size=4))
def test_binding_matches_model(args: dict[str, Any]) -> None:
    """Binding passes exactly when no unknown key is sent, the required argument is a number,
    and the optional one is absent, null or a string."""
    validator = compile_args(
        {"p": Arg("num"), "q": Arg("string", allow_nil=True), "r": Arg("num", default_value=7)},
        ["p", "q", "r"],
    )
    ok = (
        "extra" not in args
        and isinstance(args.get("p"), int)
        and (args.get("q") is None or isinstance(args["q"], str))
        and ("r" not in args or isinstance(args["r"], int))
    )
    try:
        positional, _ = validator.bind(args)
        assert ok
        assert positional == (args["p"], args.get("q"), args.get("r", 7))
    except ArgumentError:
        assert not ok
