"""Argument spec forms and their normalisation."""

from __future__ import annotations

import pytest

from genapi import Arg, ArgType
from genapi.functions.argspec import MISSING, Limits, parse_arg_spec


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("string", Arg("string")),
        (ArgType.NUM, Arg("num")),
        (":boolean", Arg("boolean")),
        (("string", 255), Arg("string", max_bytes=255)),
        (("list", 10), Arg("list", max_items=10)),
        (("list_string", 5), Arg("list_string", max_items=5)),
        (("list_num", 20), Arg("list_num", max_items=20)),
        (("map", 50), Arg("map", max_items=50)),
        (("string", {"max_bytes": 5}), Arg("string", max_bytes=5)),
        ({"type": "string", "max_bytes": 255}, Arg("string", max_bytes=255)),
        ({"type": "num", "default_value": 20}, Arg("num", default_value=20)),
        ({"type": "string", "allow_nil?": True}, Arg("string", allow_nil=True)),
        ({"type": "map", "required": ["a"], "accept": ["a", "b"]},
         Arg("map", required=["a"], accept=["a", "b"])),
        (Arg("uuid"), Arg("uuid")),
    ],
)
def test_spec_forms_normalise_to_the_same_arg(spec: object, expected: Arg) -> None:
    """Every accepted spec form yields the equivalent Arg."""
    assert parse_arg_spec(spec) == expected


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("integer", "unknown type 'integer'"),
        ({"max_bytes": 3}, "missing 'type'"),
        ({"type": "string", "max_byte": 3}, "unknown option 'max_byte'"),
        (("num", 3), "a size applies to string, lists and maps, not num"),
        ({"type": "num", "max_bytes": 3}, "max_bytes applies to string, not num"),
        ({"type": "string", "max_items": 3}, "max_items applies to lists and maps"),
        ({"type": "list_num", "max_item_bytes": 3}, "max_item_bytes applies to list_string"),
        ({"type": "list", "required": ["a"]}, "required and accept apply to map"),
        ({"type": "string", "max_bytes": -1}, "max_bytes must be a non-negative integer"),
        ({"type": "map", "required": ["a"], "accept": ["b"]}, "required keys not in accept: a"),
        ({"type": "map", "required": "a"}, "required must be a list of key names"),
        (("string", "x"), "the second element must be a size or a dict of options"),
        (42, "a spec must be"),
    ],
)
def test_invalid_specs_are_rejected_precisely(spec: object, message: str) -> None:
    """A typo or a misplaced option is an error naming the problem, never ignored."""
    with pytest.raises(ValueError, match=message):
        parse_arg_spec(spec)


def test_all_thirteen_types_exist() -> None:
    """The thirteen documented types are all accepted."""
    names = {
        "string", "num", "boolean", "uuid", "datetime", "naive_datetime", "list",
        "list_string", "list_num", "list_uuid", "list_map", "map", "any",
    }
    assert {t.value for t in ArgType} == names
    for name in names:
        assert parse_arg_spec(name).type == name


def test_missing_default_is_distinct_from_none() -> None:
    """``None`` is a real default; MISSING means no default."""
    assert not Arg("string").has_default
    assert Arg("string", default_value=None).has_default
    assert repr(MISSING) == "MISSING"
    assert not MISSING


def test_limits_reject_negative_values() -> None:
    """Global caps must be non-negative integers."""
    with pytest.raises(ValueError, match="string_max_bytes"):
        Limits(string_max_bytes=-1)
    assert Limits().string_max_bytes == 3000
    assert Limits().list_max_items == 1000
    assert Limits().map_max_items == 1000
    assert Limits().max_payload_bytes == 1_000_000
