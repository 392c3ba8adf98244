"""The hint engine: families, supported types, explanations of failures, result encoding."""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import enum
import uuid
from typing import Annotated, Any, Literal, TypedDict

import msgspec
import pydantic
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from genapi import ArgType
from genapi.functions.hints import (
    converter,
    family,
    is_plain,
    label,
    result_encoder,
    unsupported,
)


class Item(msgspec.Struct):
    name: str
    qty: int = 1


class Tuple(msgspec.Struct, array_like=True):
    a: int


@dataclasses.dataclass
class Box:
    items: list[Item]
    label: str | None = None


class Opts(TypedDict, total=False):
    limit: int


class Level(enum.IntEnum):
    LOW = 1


class Mixed(enum.Enum):
    A = "a"
    B = 2


class Person(pydantic.BaseModel):
    name: str


@pytest.mark.parametrize(("hint", "expected"), [
    (int, ArgType.NUM), (Level, ArgType.NUM), (Literal[1, 2], ArgType.NUM),
    (bool, ArgType.BOOLEAN), (Literal["a"], ArgType.STRING), (dt.date, ArgType.STRING),
    (Annotated[str, msgspec.Meta(max_length=3)], ArgType.STRING),
    (Item, ArgType.MAP), (Box, ArgType.MAP), (Opts, ArgType.MAP), (Person, ArgType.MAP),
    (dict[str, int], ArgType.MAP), (list[int], ArgType.LIST_NUM),
    (set[str], ArgType.LIST_STRING), (tuple[Item, ...], ArgType.LIST_MAP),
    (list[bool], ArgType.LIST), (list[uuid.UUID], ArgType.LIST_UUID),
    (int | None, ArgType.NUM), (int | str, ArgType.ANY), (Tuple, ArgType.ANY),
    (Mixed, ArgType.ANY), (decimal.Decimal, ArgType.ANY), (tuple[int, str], ArgType.ANY),
    (list[list[int]], ArgType.ANY),
])
def test_family_is_the_looser_spec_type(hint: Any, expected: ArgType) -> None:
    """Each hint's family is the spec type whose check accepts all its values."""
    assert family(hint) is expected


def test_unsupported_types_are_named() -> None:
    """Types msgspec cannot build from JSON are refused with their name; others pass."""

    class Opaque:
        pass

    assert unsupported(Opaque) == "test_unsupported_types_are_named.<locals>.Opaque is not " \
                                  "a type genapi can convert JSON to"
    assert unsupported(list[Opaque]) is not None
    assert unsupported(Item | Box) is not None  # two object types: cannot tell apart
    for fine in (Item, Box, Opts, Person, list[Person], int | str, decimal.Decimal):
        assert unsupported(fine) is None


@pytest.mark.parametrize(("hint", "plain"), [
    (dict[str, Any], True), (list[dict[str, int]], True), (str | None, True), (Any, True),
    (tuple[int, ...], True), (Item, False), (list[Item], False), (dt.datetime, False),
    (dict[str, Box], False), (Person, False), (uuid.UUID, False),
])
def test_plain_hints_need_no_result_encoding(hint: Any, plain: bool) -> None:
    """JSON types pass through; anything else is encoded from its type."""
    assert is_plain(hint) is plain
    assert (result_encoder(hint) is None) is plain


def test_labels_say_where_a_problem_is() -> None:
    """Object keys with dots, array indexes with brackets, odd keys quoted."""
    assert label("user", ("address", "zip")) == "user.address.zip"
    assert label("tags", (2,)) == "tags[2]"
    assert label("meta", ("a b", 0)) == "meta['a b'][0]"


def test_problems_walk_containers_in_order() -> None:
    """Missing fields, wrong items and map values are each reported with their path."""
    problems = converter(Box).problems({"items": [{"qty": 2}, {"name": "x", "qty": "3"}],
                                        "label": 5})
    assert problems == [
        (("items", 0, "name"), "missing required field"),
        (("items", 1, "qty"), "expected int, got str"),
        (("label",), "expected str, got int"),
    ]
    assert converter(dict[str, list[int]]).problems({"a": [1, "x"]}) == [
        (("a", 1), "expected int, got str")]


def test_result_encoders_turn_typed_results_into_json() -> None:
    """Structs, dataclasses, pydantic models, datetimes and UUIDs become JSON data; a
    dict result is converted to the declared type (unknown keys dropped)."""
    assert result_encoder(Box)(Box([Item("a")])) == {"items": [{"name": "a", "qty": 1}],
                                                      "label": None}
    assert result_encoder(Item)({"name": "a", "secret": "x"}) == {"name": "a", "qty": 1}
    assert result_encoder(Person)(Person(name="p")) == {"name": "p"}
    assert result_encoder(Person)({"name": "p"}) == {"name": "p"}
    when = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    assert result_encoder(list[dt.datetime])([when]) == ["2024-01-01T00:00:00Z"]
    with pytest.raises(TypeError, match="does not match its declared type Item"):
        result_encoder(Item)({"qty": 1})


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.floats(allow_nan=False, width=32)
    | st.text(max_size=4),
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(st.sampled_from(["name", "qty", "items", "label", "x"]), children,
                      max_size=3),
    max_leaves=10,
)
HINTS = [Item, Box, list[Item], dict[str, int], tuple[int, str], int | None,
         Literal["a", "b"], Annotated[int, msgspec.Meta(ge=0)], Opts]


@settings(max_examples=300, deadline=None)
@given(value=JSON, hint=st.sampled_from(HINTS))
def test_problems_exist_exactly_when_conversion_fails(value: Any, hint: Any) -> None:
    """For any JSON value: no problems if and only if msgspec converts it, and every
    problem is a non-empty sentence with a path into the value."""
    try:
        msgspec.convert(value, hint, strict=True)
        valid = True
    except msgspec.ValidationError:
        valid = False
    problems = converter(hint).problems(value)
    assert (problems == []) is valid
    for path, text in problems:
        assert isinstance(path, tuple)
        assert text and text[0].islower()
