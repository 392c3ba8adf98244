"""Compiled argument validators: every type, every constraint, the exact messages."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from genapi import Arg, ArgumentError
from genapi.functions.argspec import Limits, parse_arg_spec
from genapi.functions.validation import CallMode, compile_arg, compile_args

UUID = "123e4567-e89b-12d3-a456-426614174000"


def check(spec: Any, value: Any, limits: Limits | None = None) -> Any:
    return compile_arg("x", parse_arg_spec(spec), limits or Limits())(value)


def bind(specs: dict[str, Any], args: dict[str, Any], order: list[str] | None = None,
         mode: CallMode = CallMode.POSITIONAL) -> tuple[tuple[Any, ...], dict[str, Any]]:
    parsed = {k: parse_arg_spec(v) for k, v in specs.items()}
    return compile_args(parsed, order or list(specs), mode).bind(args)


@pytest.mark.parametrize(
    ("spec", "value"),
    [
        ("string", "hello"),
        ("string", ""),
        ("num", 42),
        ("num", -1.5),
        ("boolean", True),
        ("boolean", False),
        ("uuid", UUID),
        ("list", [1, "two", True, 3.14]),
        ("list", []),
        ("list_string", ["a", "b"]),
        ("list_num", [1, 2.5]),
        ("list_uuid", [UUID]),
        ("list_map", [{"a": 1}, {}]),
        ("map", {"a": {"nested": [1]}}),
        ("any", {"anything": [None, 1]}),
        ("any", "x"),
    ],
)
def test_valid_values_pass_unchanged(spec: str, value: Any) -> None:
    """Values of the right type are returned as they are."""
    assert check(spec, value) == value


@pytest.mark.parametrize(
    ("spec", "value", "message"),
    [
        ("string", 5, "Invalid argument x: expected string"),
        ("num", "forty-two", "Invalid argument x: expected num"),
        ("num", True, "Invalid argument x: expected num"),
        ("boolean", "yes", "Invalid argument x: expected boolean"),
        ("boolean", 1, "Invalid argument x: expected boolean"),
        ("uuid", "incorrect uuid", "Invalid argument x: expected uuid"),
        ("uuid", 123, "Invalid argument x: expected uuid"),
        ("datetime", 12345, "Invalid argument x: expected datetime"),
        ("datetime", "2024-01-15T10:30:00", "Invalid argument x: expected datetime"),
        ("datetime", "not a date", "Invalid argument x: expected datetime"),
        ("naive_datetime", "invalid", "Invalid argument x: expected naive_datetime"),
        ("naive_datetime", "2024-01-15T10:30:00Z", "Invalid argument x: expected naive_datetime"),
        ("list", "abc", "Invalid argument x: expected list"),
        ("list", [{"a": 1}], "Invalid argument x: item 0 expected boolean, num or string"),
        ("list", [[1]], "Invalid argument x: item 0 expected boolean, num or string"),
        ("list", [1, None], "Invalid argument x: item 1 expected boolean, num or string"),
        ("list_string", ["a", 2], "Invalid argument x: item 1 expected string"),
        ("list_num", [1, "two"], "Invalid argument x: item 1 expected num"),
        ("list_num", [True], "Invalid argument x: item 0 expected num"),
        ("list_uuid", [UUID, "nope"], "Invalid argument x: item 1 expected uuid"),
        ("list_map", [{}, 3], "Invalid argument x: item 1 expected map"),
        ("map", [1], "Invalid argument x: expected map"),
    ],
)
def test_wrong_types_are_reported(spec: str, value: Any, message: str) -> None:
    """A wrong type names the argument and the expected type."""
    with pytest.raises(ArgumentError) as info:
        check(spec, value)
    assert str(info.value).startswith(message)


@pytest.mark.parametrize(
    ("spec", "ok", "bad", "message"),
    [
        (("string", 3), "abc", "abcd", "Invalid argument x: exceeds max 3 bytes"),
        ({"type": "string", "max_bytes": 5}, "héllo"[:4], "héllo", "exceeds max 5 bytes"),
        (("list", 2), [1, 2], [1, 2, 3], "Invalid argument x: exceeds max 2 items"),
        (("list_string", 1), ["a"], ["a", "b"], "exceeds max 1 items"),
        (("list_num", 2), [1, 2], [1, 2, 3, 4], "exceeds max 2 items"),
        (("list_uuid", 1), [UUID], [UUID, UUID], "exceeds max 1 items"),
        (("list_map", 1), [{}], [{}, {}], "exceeds max 1 items"),
        (("map", 1), {"a": 1}, {"a": 1, "b": 2}, "Invalid argument x: exceeds max 1 items"),
        ({"type": "list_string", "max_item_bytes": 3}, ["abc"], ["abcd"],
         "Invalid argument x: item 0 exceeds max 3 bytes"),
        ({"type": "list", "max_item_bytes": 3}, ["abc", 1], [1, "abcd"],
         "Invalid argument x: item 1 exceeds max 3 bytes"),
        ({"type": "map", "required": ["name", "email"]}, {"name": 1, "email": 2, "extra": 3},
         {"name": 1}, "Invalid argument x: missing required keys: email"),
        ({"type": "map", "required": ["name"]}, {"name": 1}, {},
         "Invalid argument x: missing required keys: name"),
        ({"type": "map", "accept": ["name", "email"]}, {"name": 1}, {"name": 1, "age": 2},
         "Invalid argument x: unexpected keys: age"),
        ({"type": "map", "max_items": 0}, {}, {"a": 1}, "exceeds max 0 items"),
    ],
)
def test_constraints_are_enforced(spec: Any, ok: Any, bad: Any, message: str) -> None:
    """Each constraint accepts values within it and names the violation otherwise."""
    assert check(spec, ok) == ok
    with pytest.raises(ArgumentError) as info:
        check(spec, bad)
    assert str(info.value).endswith(message)


def test_string_size_counts_utf8_bytes_not_characters() -> None:
    """Sizes are bytes: a 4-character string of 2-byte characters is 8 bytes."""
    assert check(("string", 8), "éééé") == "éééé"
    with pytest.raises(ArgumentError, match="exceeds max 7 bytes"):
        check(("string", 7), "éééé")


def test_global_caps_apply_without_explicit_sizes() -> None:
    """Global caps bound strings, lists and maps that set no size of their own."""
    limits = Limits(string_max_bytes=4, list_max_items=2, map_max_items=1)
    with pytest.raises(ArgumentError, match="exceeds max 4 bytes"):
        check("string", "12345", limits)
    with pytest.raises(ArgumentError, match="exceeds max 2 items"):
        check("list_num", [1, 2, 3], limits)
    with pytest.raises(ArgumentError, match="exceeds max 1 items"):
        check("map", {"a": 1, "b": 2}, limits)
    with pytest.raises(ArgumentError, match="item 0 exceeds max 4 bytes"):
        check("list_string", ["12345"], limits)
    assert check(("string", 10), "12345", limits) == "12345"  # explicit size wins


def test_default_caps() -> None:
    """Without configuration: 3,000 bytes, 1,000 list items, 1,000 map items."""
    check("string", "x" * 3000)
    with pytest.raises(ArgumentError, match="exceeds max 3000 bytes"):
        check("string", "x" * 3001)
    with pytest.raises(ArgumentError, match="exceeds max 1000 items"):
        check("list", [1] * 1001)
    with pytest.raises(ArgumentError, match="exceeds max 1000 items"):
        check("map", {str(i): i for i in range(1001)})


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-01-15T10:30:00Z", datetime(2024, 1, 15, 10, 30, tzinfo=UTC)),
        ("2024-01-15T10:30:00+00:00", datetime(2024, 1, 15, 10, 30, tzinfo=UTC)),
        ("2024-01-15T10:30:00+07:00",
         datetime(2024, 1, 15, 10, 30, tzinfo=timezone(timedelta(hours=7)))),
        ("2024-01-15T10:30:00.123456Z",
         datetime(2024, 1, 15, 10, 30, 0, 123456, tzinfo=UTC)),
    ],
)
def test_datetime_accepts_utc_and_offsets(value: str, expected: datetime) -> None:
    """ISO 8601 datetimes with an offset, including ``Z``, become aware datetimes."""
    assert check("datetime", value) == expected


def test_naive_datetime_converts() -> None:
    """naive_datetime parses ISO 8601 without an offset."""
    assert check("naive_datetime", "2024-01-15T10:30:00") == datetime(2024, 1, 15, 10, 30)


def test_uuid_as_object() -> None:
    """uuid passes the string through unless asked to convert to UUID."""
    assert check("uuid", UUID.upper()) == UUID.upper()
    assert compile_arg("x", Arg("uuid", as_object=True), Limits())(UUID) == uuid.UUID(UUID)


# -- whole-function binding --------------------------------------------------------------


def test_missing_required_argument() -> None:
    """An absent argument without a default is reported by name."""
    with pytest.raises(ArgumentError, match=r"^Missing required argument: user_id$"):
        bind({"user_id": "string"}, {})


def test_null_without_allow_nil() -> None:
    """An explicit null is refused unless allow_nil is set."""
    with pytest.raises(ArgumentError, match=r"^Invalid argument name: must not be null$"):
        bind({"name": "string"}, {"name": None})
    assert bind({"name": {"type": "string", "allow_nil": True}}, {"name": None}) == ((None,), {})


@pytest.mark.parametrize(
    ("spec", "args", "expected"),
    [
        ({"type": "num", "default_value": 25}, {}, 25),
        ({"type": "boolean", "default_value": False}, {}, False),
        ({"type": "list_num", "default_value": [1, 2, 3]}, {}, [1, 2, 3]),
        ({"type": "map", "default_value": {"key": "value"}}, {}, {"key": "value"}),
        ({"type": "string", "allow_nil": True}, {}, None),
        ({"type": "string", "allow_nil": True, "default_value": "active"}, {}, "active"),
        ({"type": "string", "allow_nil": True, "default_value": "active"}, {"x": None}, None),
        ({"type": "string", "default_value": None}, {}, None),
    ],
)
def test_defaults_and_nil(spec: Any, args: dict[str, Any], expected: Any) -> None:
    """Absent → default (or None with allow_nil); explicit null wins over a default."""
    assert bind({"x": spec}, args) == ((expected,), {})


def test_mutable_defaults_are_not_shared() -> None:
    """Each call gets its own copy of a list or map default."""
    validator = compile_args({"x": Arg("list_num", default_value=[1])}, ["x"])
    first = validator.bind({})[0][0]
    first.append(2)
    assert validator.bind({})[0][0] == [1]


def test_unknown_arguments_are_rejected() -> None:
    """Undeclared arguments are refused and all named."""
    with pytest.raises(ArgumentError, match=r"^Unknown argument: city$"):
        bind({"name": "string"}, {"name": "a", "city": "b"})
    with pytest.raises(ArgumentError, match=r"^Unknown arguments: extra1, extra2$"):
        bind({}, {"extra1": 1, "extra2": 2})


def test_no_arguments() -> None:
    """A function without arguments binds to nothing."""
    assert bind({}, {}) == ((), {})


def test_positional_order_follows_arg_orders() -> None:
    """Positional values come in arg_orders order, not payload order."""
    specs = {"name": "string", "age": "num"}
    assert bind(specs, {"age": 30, "name": "John"}, ["name", "age"]) == (("John", 30), {})
    assert bind(specs, {"age": 30, "name": "John"}, ["age", "name"]) == ((30, "John"), {})


def test_map_mode_passes_one_dict_with_defaults() -> None:
    """arg_orders "map" passes every declared argument in one dict, defaults applied."""
    specs = {"name": "string", "age": {"type": "num", "default_value": 25},
             "email": {"type": "string", "allow_nil": True}}
    assert bind(specs, {"name": "Bob"}, mode=CallMode.MAP) == (
        ({"name": "Bob", "age": 25, "email": None},), {}
    )


def test_keyword_mode() -> None:
    """Keyword mode binds by name."""
    assert bind({"a": "num", "b": "num"}, {"a": 1, "b": 2}, mode=CallMode.KEYWORDS) == (
        (), {"a": 1, "b": 2}
    )


def test_first_problem_in_declared_order_is_reported() -> None:
    """Arguments are checked in order and the first failure is reported."""
    with pytest.raises(ArgumentError, match=r"^Invalid argument a: expected num$"):
        bind({"a": "num", "b": "num"}, {"a": "x", "b": "y"})


# -- details mutation testing found unchecked ----------------------------------------------


@pytest.mark.parametrize(("spec", "value", "message"), [
    ("datetime", "2024-01-15T10:30:00",
     "Invalid argument x: expected datetime (ISO 8601 with a UTC offset)"),
    ("naive_datetime", "2024-01-15T10:30:00Z",
     "Invalid argument x: expected naive_datetime (ISO 8601 without offset)"),
    ({"type": "map", "required": ["name", "email"]}, {},
     "Invalid argument x: missing required keys: name, email"),
    ({"type": "map", "accept": ["name"]}, {"name": 1, "age": 2, "zip": 3},
     "Invalid argument x: unexpected keys: age, zip"),
])
def test_messages_are_complete(spec: Any, value: Any, message: str) -> None:
    """The whole message reaches the client: the expected form, every key named."""
    with pytest.raises(ArgumentError) as info:
        check(spec, value)
    assert info.value.message == message


def test_plain_lists_take_false_as_well_as_true() -> None:
    """A plain list holds booleans, numbers and strings: False is a boolean."""
    assert check("list", [False, True, 0, "a"]) == [False, True, 0, "a"]


def test_int_subclasses_are_numbers_but_bools_are_not() -> None:
    """An IntEnum member is a num (callers in Python pass them); True is not."""
    import enum

    class Level(enum.IntEnum):
        HIGH = 3

    assert check("num", Level.HIGH) == 3
    assert check("list_num", [Level.HIGH, 1.5]) == [3, 1.5]
    with pytest.raises(ArgumentError):
        check("num", True)


def test_nested_mutable_defaults_are_deep_copied() -> None:
    """A default holding maps inside a list is copied all the way down for each call."""
    validator = compile_args({"x": Arg("list_map", default_value=[{"n": 1}])}, ["x"])
    first = validator.bind({})[0][0]
    first[0]["n"] = 99
    assert validator.bind({})[0][0] == [{"n": 1}]
