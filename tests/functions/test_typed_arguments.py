"""Typed arguments: every type family converted strictly, rejected with exact messages,
and every problem of a call listed with its path."""

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

from genapi import ArgumentError, Executor, Registry, Request, Response, Service
from genapi.telemetry.events import Telemetry


class Address(msgspec.Struct):
    city: str
    zip: Annotated[str, msgspec.Meta(max_length=5)]


class User(msgspec.Struct):
    name: str
    age: Annotated[int, msgspec.Meta(ge=0, le=150)]
    address: Address | None = None


@dataclasses.dataclass
class Point:
    x: int
    y: int = 0


class Options(TypedDict):
    limit: int
    sort: str


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


class Model(pydantic.BaseModel):
    name: str
    born: dt.datetime
    score: int = pydantic.Field(ge=0)


class Strict(msgspec.Struct, forbid_unknown_fields=True):
    a: int


seen: dict[str, Any] = {}
svc = Service("typed")


def _keep(name: str, value: Any) -> str:
    seen[name] = value
    return type(value).__name__


@svc.function()
async def struct(user: User) -> str:
    return _keep("struct", user)


@svc.function()
async def dataclass_(point: Point) -> str:
    return _keep("dataclass", point)


@svc.function()
async def typed_dict(options: Options) -> str:
    return _keep("typed_dict", options)


@svc.function()
async def literal(mode: Literal["fast", "slow"]) -> str:
    return _keep("literal", mode)


@svc.function()
async def enum_(color: Color) -> str:
    return _keep("enum", color)


@svc.function()
async def constrained(code: Annotated[str, msgspec.Meta(pattern=r"^[A-Z]{3}$")],
                      size: Annotated[int, msgspec.Meta(ge=1, le=10)] = 1,
                      tags: Annotated[list[str], msgspec.Meta(min_length=1)] | None = None,
                      ) -> str:
    return _keep("constrained", (code, size, tags))


@svc.function()
async def scalars(when: dt.date, at: dt.datetime, key: uuid.UUID, price: decimal.Decimal
                  ) -> str:
    return _keep("scalars", (when, at, key, price))


@svc.function()
async def nested(groups: dict[str, list[Point]], pair: tuple[int, str] | None = None) -> str:
    return _keep("nested", (groups, pair))


@svc.function()
async def model(person: Model) -> str:
    return _keep("model", person)


@svc.function()
async def numbers(n: int, xs: list[int], f: float, flag: bool, m: Any = None) -> str:
    return _keep("numbers", (n, xs, f, flag))


@svc.function()
async def strict(value: Strict) -> str:
    return _keep("strict", value)


@pytest.fixture(scope="module")
def executor() -> Executor:
    registry = Registry(telemetry=Telemetry())
    registry.add_service(svc)
    return Executor(registry)


async def call(executor: Executor, request_type: str, **args: Any
               ) -> tuple[Response, ArgumentError | None]:
    response, error = await executor.run(Request(
        request_id="r", service="typed", request_type=request_type, args=args))
    assert response is not None
    assert error is None or isinstance(error, ArgumentError), error
    return response, error


VALID = [
    ("struct", {"user": {"name": "Ann", "age": 30, "address": {"city": "Oslo", "zip": "0150"}}},
     "User", User("Ann", 30, Address("Oslo", "0150"))),
    ("dataclass_", {"point": {"x": 1}}, "Point", Point(1, 0)),
    ("typed_dict", {"options": {"limit": 5, "sort": "name"}}, "dict",
     {"limit": 5, "sort": "name"}),
    ("literal", {"mode": "fast"}, "str", "fast"),
    ("enum_", {"color": "green"}, "Color", Color.GREEN),
    ("constrained", {"code": "ABC", "tags": ["x"]}, "tuple", ("ABC", 1, ["x"])),
    ("scalars", {"when": "2024-02-29", "at": "2024-02-29T10:00:00Z",
                 "key": "123e4567-e89b-12d3-a456-426614174000", "price": "9.99"}, "tuple",
     (dt.date(2024, 2, 29), dt.datetime(2024, 2, 29, 10, tzinfo=dt.UTC),
      uuid.UUID("123e4567-e89b-12d3-a456-426614174000"), decimal.Decimal("9.99"))),
    ("nested", {"groups": {"a": [{"x": 1, "y": 2}]}, "pair": [1, "one"]}, "tuple",
     ({"a": [Point(1, 2)]}, (1, "one"))),
    ("model", {"person": {"name": "Bo", "born": "2001-01-01T00:00:00Z", "score": 3}}, "Model",
     Model(name="Bo", born=dt.datetime(2001, 1, 1, tzinfo=dt.UTC), score=3)),
    ("numbers", {"n": 2, "xs": [1, 2], "f": 1, "flag": False}, "tuple", (2, [1, 2], 1, False)),
]


@pytest.mark.parametrize(("request_type", "args", "kind", "value"), VALID,
                         ids=[v[0] for v in VALID])
async def test_each_type_family_is_converted(executor: Executor, request_type: str,
                                             args: dict[str, Any], kind: str,
                                             value: Any) -> None:
    """The function receives values of its declared types, converted from JSON."""
    response, _ = await call(executor, request_type, **args)
    assert response == Response.sync("r", kind)
    assert seen[request_type.rstrip("_")] == value


REJECTED = [
    ("struct", {"user": {"name": "Ann", "age": 200}},
     "Invalid argument user.age: expected int <= 150"),
    ("struct", {"user": {"age": 3}}, "Invalid argument user.name: missing required field"),
    ("struct", {"user": {"name": "A", "age": 1, "address": {"city": "x", "zip": "123456"}}},
     "Invalid argument user.address.zip: expected str of length <= 5"),
    ("struct", {"user": "Ann"}, "Invalid argument user: expected map"),
    ("dataclass_", {"point": {"x": "1"}}, "Invalid argument point.x: expected int, got str"),
    ("typed_dict", {"options": {"limit": 5}},
     "Invalid argument options.sort: missing required field"),
    ("literal", {"mode": "medium"}, "Invalid argument mode: invalid enum value 'medium'"),
    ("enum_", {"color": "blue"}, "Invalid argument color: invalid enum value 'blue'"),
    ("constrained", {"code": "abc"},
     "Invalid argument code: expected str matching regex '^[A-Z]{3}$'"),
    ("constrained", {"code": "ABC", "size": 11}, "Invalid argument size: expected int <= 10"),
    ("constrained", {"code": "ABC", "tags": []},
     "Invalid argument tags: expected array of length >= 1"),
    ("scalars", {"when": "yesterday", "at": "2024-01-01T00:00:00Z",
                 "key": "123e4567-e89b-12d3-a456-426614174000", "price": "1"},
     "Invalid argument when: invalid RFC3339 encoded date"),
    ("scalars", {"when": "2024-01-01", "at": "2024-01-01T00:00:00Z",
                 "key": "123e4567-e89b-12d3-a456-426614174000", "price": "cheap"},
     "Invalid argument price: invalid decimal string"),
    ("nested", {"groups": {"a": [{"x": 1}, {"x": 1.5}]}},
     "Invalid argument groups.a[1].x: expected int, got float"),
    ("nested", {"groups": {}, "pair": [1, 2]},
     "Invalid argument pair[1]: expected str, got int"),
    ("model", {"person": {"name": "Bo", "born": "not a date", "score": -1}},
     "Invalid argument person.born: input should be a valid datetime, invalid character in "
     "year"),
    ("strict", {"value": {"a": 1, "b": 2}}, "Invalid argument value.b: unknown field"),
]


@pytest.mark.parametrize(("request_type", "args", "message"), REJECTED,
                         ids=[f"{r[0]}-{i}" for i, r in enumerate(REJECTED)])
async def test_each_type_family_rejects_with_a_precise_message(
        executor: Executor, request_type: str, args: dict[str, Any], message: str) -> None:
    """A wrong value is refused naming where it is and what was expected."""
    response, error = await call(executor, request_type, **args)
    assert response.error == message
    assert error is not None
    assert error.details["errors"][0]["message"] == message


@pytest.mark.parametrize(("args", "message"), [
    ({"n": 1.5}, "Invalid argument n: expected int, got float"),
    ({"n": True}, "Invalid argument n: expected num"),
    ({"n": "1"}, "Invalid argument n: expected num"),
    ({"xs": [1, 2.5]}, "Invalid argument xs[1]: expected int, got float"),
    ({"xs": [1, "2"]}, "Invalid argument xs: item 1 expected num"),
    ({"flag": 1}, "Invalid argument flag: expected boolean"),
])
async def test_int_is_strict_and_bool_is_not_an_int(executor: Executor, args: dict[str, Any],
                                                    message: str) -> None:
    """``int`` refuses floats, booleans and strings; ``bool`` refuses 1; list[int] refuses
    floats. (What is no number at all keeps the num wording clients know.)"""
    base = {"n": 1, "xs": [1], "f": 1.5, "flag": True}
    response, _ = await call(executor, "numbers", **{**base, **args})
    assert response.error == message


async def test_float_and_num_keep_accepting_ints_and_floats(executor: Executor) -> None:
    """``float`` hints (the num spec) take ints and floats as before."""
    response, _ = await call(executor, "numbers", n=1, xs=[], f=2, flag=True)
    assert response.success
    assert seen["numbers"][2] == 2


async def test_every_problem_is_listed_with_its_path(executor: Executor) -> None:
    """Validation collects all errors: unknown arguments first, then in declared order,
    down into nested values; the first one is the message."""
    response, error = await call(
        executor, "struct", user={"name": 5, "age": -1, "address": {"zip": "1234567"}},
        extra=1)
    assert error is not None
    assert response.error == "Unknown argument: extra"
    assert error.details == {"errors": [
        {"path": ["extra"], "message": "Unknown argument: extra"},
        {"path": ["user", "name"], "message": "Invalid argument user.name: expected str, "
                                              "got int"},
        {"path": ["user", "age"], "message": "Invalid argument user.age: expected int >= 0"},
        {"path": ["user", "address", "city"],
         "message": "Invalid argument user.address.city: missing required field"},
        {"path": ["user", "address", "zip"],
         "message": "Invalid argument user.address.zip: expected str of length <= 5"},
    ]}


async def test_spec_and_typed_problems_are_collected_together(executor: Executor) -> None:
    """Missing, null and wrong arguments of both kinds land in one list, in order."""
    _, error = await call(executor, "numbers", n=None, xs=[0.5], flag="yes")
    assert error is not None
    assert [e["message"] for e in error.details["errors"]] == [
        "Invalid argument n: must not be null",
        "Invalid argument xs[0]: expected int, got float",
        "Missing required argument: f",
        "Invalid argument flag: expected boolean",
    ]
    assert error.message == "Invalid argument n: must not be null"


async def test_pydantic_errors_are_all_listed(executor: Executor) -> None:
    """A pydantic model's every validation error comes with its path."""
    _, error = await call(executor, "model", person={"name": 1, "score": -1})
    assert error is not None
    paths = [e["path"] for e in error.details["errors"]]
    assert paths == [["person", "name"], ["person", "born"], ["person", "score"]]


async def test_global_caps_apply_to_typed_arguments(executor: Executor) -> None:
    """Strings, lists and maps of typed arguments are capped like spec-typed ones."""
    response, _ = await call(executor, "numbers", n=1, xs=list(range(1001)), f=1, flag=True)
    assert response.error == "Invalid argument xs: exceeds max 1000 items"


def test_typed_defaults_are_checked_at_registration() -> None:
    """A default that fails its own type is a registration error; instances are fine."""
    ok = Service("ok")

    @ok.function()
    async def fine(color: Color = Color.RED, user: User = User("a", 1)) -> None:
        ...

    Registry(telemetry=Telemetry()).add_service(ok)
    bad = Service("bad")

    @bad.function()
    async def broken(size: Annotated[int, msgspec.Meta(ge=1)] = 0) -> None:
        ...

    with pytest.raises(ValueError, match="invalid default value: Invalid argument size"):
        Registry(telemetry=Telemetry()).add_service(bad)


def test_mutable_typed_defaults_are_fresh_per_call() -> None:
    """A Struct default is copied for each call, as list and dict defaults are."""
    from genapi.functions.argspec import Arg
    from genapi.functions.validation import compile_args

    default = User("a", 1)
    validator = compile_args({"u": Arg("map", hint=User, default_value=default)}, ["u"])
    first = validator.bind({})[0][0]
    assert first == default
    assert first is not default
