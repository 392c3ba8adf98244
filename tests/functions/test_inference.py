"""Argument specs inferred from signatures and type hints."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Annotated, Any, Optional

import msgspec
import pytest

from genapi import Arg, ArgType, CallContext, MaxBytes, MaxItemBytes, MaxItems, RequestInfo
from genapi.execution.streams import StreamHelper
from genapi.functions.argspec import MISSING
from genapi.functions.inference import inspect_function
from genapi.functions.validation import CallMode


def test_scalar_hints_map_to_types() -> None:
    """str, int, float, bool, UUID, datetime, dict and Any map to their types."""

    def fn(a: str, b: int, c: float, d: bool, e: uuid.UUID, f: datetime, g: dict[str, Any],
           h: Any, i: Mapping[str, int], j) -> None:  # type: ignore[no-untyped-def]
        ...

    sig = inspect_function(fn)
    types = {name: spec.type for name, spec in sig.specs.items()}
    assert types == {
        "a": ArgType.STRING, "b": ArgType.NUM, "c": ArgType.NUM, "d": ArgType.BOOLEAN,
        "e": ArgType.UUID, "f": ArgType.DATETIME, "g": ArgType.MAP, "h": ArgType.ANY,
        "i": ArgType.MAP, "j": ArgType.ANY,
    }
    assert sig.specs["e"].as_object
    assert sig.order == ("a", "b", "c", "d", "e", "f", "g", "h", "i", "j")
    assert sig.mode is CallMode.POSITIONAL


def test_list_hints_map_to_list_types() -> None:
    """Typed lists map to list_string, list_num, list_uuid, list_map; bare list to list."""

    def fn(a: list[str], b: list[int], c: list[float], d: list[uuid.UUID],
           e: list[dict[str, Any]], f: list, g: Sequence[str], h: list[int | float]) -> None:  # type: ignore[type-arg]
        ...

    types = {n: s.type for n, s in inspect_function(fn).specs.items()}
    assert types == {
        "a": ArgType.LIST_STRING, "b": ArgType.LIST_NUM, "c": ArgType.LIST_NUM,
        "d": ArgType.LIST_UUID, "e": ArgType.LIST_MAP, "f": ArgType.LIST,
        "g": ArgType.LIST_STRING, "h": ArgType.LIST_NUM,
    }


def test_optional_and_defaults() -> None:
    """``X | None`` allows null; parameter defaults become default values."""

    def fn(a: str | None, b: Optional[int] = None, c: int = 20, d: str = "x") -> None:  # noqa: UP045
        ...

    specs = inspect_function(fn).specs
    assert specs["a"] == Arg("string", allow_nil=True)
    # int is a typed argument (strict: refuses 1.5), of the num family
    assert specs["b"] == Arg("num", allow_nil=True, default_value=None, hint=int)
    assert specs["c"] == Arg("num", default_value=20, hint=int)
    assert specs["d"].default_value == "x"
    assert specs["a"].default_value is MISSING


def test_annotated_sizes() -> None:
    """Annotated markers set max_bytes, max_items and max_item_bytes."""

    def fn(title: Annotated[str, MaxBytes(200)],
           tags: Annotated[list[str], MaxItems(10), MaxItemBytes(50)],
           meta: Annotated[dict[str, Any], Arg("map", required=["author"])]) -> None:
        ...

    specs = inspect_function(fn).specs
    assert specs["title"] == Arg("string", max_bytes=200)
    assert specs["tags"] == Arg("list_string", max_items=10, max_item_bytes=50)
    assert specs["meta"] == Arg("map", required=["author"])


def test_injected_and_keyword_only_parameters() -> None:
    """RequestInfo parameters are injected; keyword-only parameters switch to keywords."""

    def fn(a: str, *, b: int = 1, info: RequestInfo) -> None:
        ...

    sig = inspect_function(fn)
    assert sig.order == ("a", "b")
    assert sig.inject == {"info": "request_info"}
    assert sig.mode is CallMode.KEYWORDS


def test_unsupported_hints_are_problems() -> None:
    """A hint genapi cannot map is reported, not guessed."""

    class Custom:
        pass

    def fn(a: Custom, b: set[Custom]) -> None:
        ...

    problems = inspect_function(fn).problems
    assert len(problems) == 2
    assert "parameter 'a'" in problems[0]


class _First(msgspec.Struct):
    x: int


class _Second(msgspec.Struct):
    y: int


@pytest.mark.parametrize("hint", [_First | _Second, dict[str, int] | _First])
def test_ambiguous_hints_are_problems(hint: Any) -> None:
    """Unions a JSON value cannot be told apart in have no argument type (untagged
    structs, a struct and a map); tuples and unions of scalars are typed arguments."""

    def fn(a):  # type: ignore[no-untyped-def]
        ...

    fn.__annotations__ = {"a": hint}
    assert inspect_function(fn).problems


def test_injected_parameter_first_switches_to_keywords() -> None:
    """An injected parameter before client arguments makes the call use keywords."""

    def fn(stream: StreamHelper, interval_ms: int = 500) -> None:
        ...

    sig = inspect_function(fn)
    assert sig.order == ("interval_ms",)
    assert sig.inject == {"stream": "stream"}
    assert sig.mode is CallMode.KEYWORDS


def test_injected_parameter_between_client_arguments_switches_to_keywords() -> None:
    """An injected parameter between two client arguments makes the call use keywords
    (positionally the second argument would land in the injected parameter)."""

    def fn(a: str, call: CallContext, b: str = "x") -> None:
        ...

    sig = inspect_function(fn)
    assert sig.order == ("a", "b") and sig.mode is CallMode.KEYWORDS

    def last(a: str, b: str, call: CallContext) -> None:
        ...

    assert inspect_function(last).mode is CallMode.POSITIONAL
