"""Schema export: JSON Schemas agree with the validator, AsyncAPI is well formed, TS compiles."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft7Validator, Draft202012Validator

from genapi import ArgumentError, FunConfig, Gateway, GatewaySettings, Limits, Registry
from genapi.demo.app import build_demo_gateway
from genapi.schema import (
    SCHEMA_DIALECT,
    args_schema,
    asyncapi_document,
    describe_arg,
    function_catalog,
    json_schemas,
    typescript_module,
)

JS_DIR = Path(__file__).parents[1] / "e2e" / "js"
UUID = "123e4567-e89b-12d3-a456-426614174000"


def _noop(*args: Any) -> None:
    return None


def shapes_registry() -> Registry:
    """One function per argument type, with sizes, defaults, nil and map keys."""
    registry = Registry(limits=Limits(string_max_bytes=20, list_max_items=4, map_max_items=3))
    registry.add(FunConfig(
        service="shapes", request_type="everything", function=_noop, arg_orders="map",
        arg_types={
            "name": ("string", 8),
            "note": {"type": "string", "allow_nil": True},
            "count": {"type": "num", "default": 1},
            "flag": "boolean",
            "id": "uuid",
            "at": "datetime",
            "tags": {"type": "list_string", "max_items": 2, "max_item_bytes": 3},
            "nums": "list_num",
            "ids": ("list_uuid", 2),
            "rows": "list_map",
            "mixed": "list",
            "meta": ("map", {"required": ["a"], "accept": ["a", "b"]}),
            "extra": "map",
            "blob": "any",
        },
    ))
    registry.add(FunConfig(service="shapes", request_type="empty", function=_noop))
    return registry


VALID = {"name": "abc", "flag": True, "id": UUID, "at": "2024-01-01T00:00:00+00:00",
         "tags": ["x", "yz"], "nums": [1, 2.5], "ids": [UUID], "rows": [{"k": 1}],
         "mixed": ["a", 1, False], "meta": {"a": 1}, "extra": {}, "blob": [1, {"x": None}]}


def _with(**changes: Any) -> dict[str, Any]:
    out = {**VALID, **changes}
    return {k: v for k, v in out.items() if v is not _DROP}


_DROP = object()

SAMPLES = [
    VALID,
    _with(note=None, count=3),
    _with(count=_DROP, note=_DROP),
    _with(name="12345678"),
    _with(name="123456789"),            # over max_bytes 8
    _with(name=5),
    _with(name=None),                   # null without allow_nil
    _with(name=_DROP),                  # required
    _with(flag=1),
    _with(count="1"),
    _with(count=True),                  # booleans are not numbers
    _with(id="not-a-uuid"),
    _with(tags=["a", "b", "c"]),        # over max_items 2
    _with(tags=["abcd"]),               # item over 3 bytes
    _with(tags=[1]),
    _with(nums=["1"]),
    _with(ids=[UUID, UUID, UUID]),
    _with(ids=["x"]),
    _with(rows=[1]),
    _with(mixed=[None]),
    _with(mixed=[{"a": 1}]),
    _with(mixed=["a" * 21]),            # plain list strings use the global 20 bytes
    _with(mixed=[1, 2, 3, 4, 5]),       # global list_max_items 4
    _with(meta={}),                     # required key a
    _with(meta={"a": 1, "c": 2}),       # c not accepted
    _with(extra={"a": 1, "b": 2, "c": 3, "d": 4}),  # global map_max_items 3
    _with(blob=None),                   # any still refuses null without allow_nil
    _with(unknown=1),
]


def _server_accepts(registry: Registry, args: dict[str, Any]) -> bool:
    route = registry.resolve("shapes", "everything")
    try:
        route.validator.bind(args)
    except ArgumentError:
        return False
    return True


@pytest.mark.parametrize("args", SAMPLES, ids=[str(i) for i in range(len(SAMPLES))])
def test_json_schema_agrees_with_the_validator(args: dict[str, Any]) -> None:
    """A sample is valid under the exported schema exactly when the gateway accepts it."""
    registry = shapes_registry()
    schema = json_schemas(function_catalog(registry))["$defs"]["shapes.everything"]
    validator = Draft202012Validator(schema)
    assert validator.is_valid(args) is _server_accepts(registry, args)


def test_schemas_are_valid_2020_12_and_draft_07() -> None:
    """Every exported schema is a valid schema in draft 2020-12 and in draft-07 (AsyncAPI)."""
    catalog = function_catalog(build_demo_gateway())
    bundle = json_schemas(catalog)
    assert bundle["$schema"] == SCHEMA_DIALECT
    Draft202012Validator.check_schema(bundle)
    for schema in bundle["$defs"].values():
        Draft202012Validator.check_schema(schema)
        Draft7Validator.check_schema(schema)
    assert "user_service.get_user" in bundle["$defs"]
    assert "user_service.get_user@2.0.0" in bundle["$defs"]


def test_string_limits_are_documented_in_bytes() -> None:
    """Byte limits appear as maxLength (an upper bound) and x-genapi-max-bytes."""
    arg = describe_arg("title", parse("string", 200), Limits())
    schema = args_schema([arg])["properties"]["title"]
    assert schema["maxLength"] == schema["x-genapi-max-bytes"] == 200
    assert "bytes" in schema["description"]
    # the documented approximation: 100 two-byte characters pass maxLength, not the server
    assert Draft202012Validator(args_schema([arg])).is_valid({"title": "é" * 150})


def parse(type_: str, size: int) -> Any:
    from genapi.functions.argspec import parse_arg_spec

    return parse_arg_spec((type_, size))


def test_catalog_defaults_and_disabled() -> None:
    """The catalog marks the default version and leaves disabled functions out."""
    registry = Registry()
    for version in ("1.0.0", "2.0.0"):
        registry.add(FunConfig(service="s", request_type="f", function=_noop, version=version))
    registry.add(FunConfig(service="s", request_type="off", function=_noop, disabled=True))
    catalog = function_catalog(registry)
    assert [(f["version"], f["default"]) for f in catalog["functions"]] == [
        ("1.0.0", False), ("2.0.0", True)]
    everything = function_catalog(registry, include_disabled=True)
    assert any(f["request_type"] == "off" for f in everything["functions"])


def _resolve(document: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = document
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for value in node.values() for r in _refs(value)]
    if isinstance(node, list):
        return [r for value in node for r in _refs(value)]
    return []


def test_asyncapi_document_structure() -> None:
    """AsyncAPI 3.0: channels, operations and messages, every $ref resolves."""
    gateway = Gateway(settings=GatewaySettings(topics=["api:*", "room:lobby"]))
    gateway.registry.add(FunConfig(service="svc", request_type="echo", function=_noop,
                                   arg_types={"text": "string"}))
    doc = asyncapi_document(function_catalog(gateway), server_url="https://gw.example:443")
    assert doc["asyncapi"] == "3.0.0"
    assert doc["servers"]["gateway"] == {"host": "gw.example:443", "protocol": "wss",
                                         "pathname": "/socket/websocket",
                                         "description": doc["servers"]["gateway"]["description"]}
    assert doc["channels"]["api"]["address"] == "api:{subtopic}"
    assert doc["channels"]["room_lobby"]["address"] == "room:lobby"
    messages = doc["components"]["messages"]
    assert {m["name"] for m in messages.values()} == {"phx_join", "api", "cancel"}
    call = doc["operations"]["api_call"]
    assert call["action"] == "send"
    assert call["reply"]["messages"] == [{"$ref": "#/channels/api/messages/apiResponse"}]
    assert {op["action"] for op in doc["operations"].values()} == {"send", "receive"}
    for ref in _refs(doc):
        assert _resolve(doc, ref) is not None, ref
    response = doc["components"]["schemas"]["Response"]
    assert sorted(response["required"]) == sorted(
        ["request_id", "result", "success", "error", "async", "has_more", "can_retry"])
    # the request envelope validates real requests and refuses bad args
    request = doc["components"]["schemas"]["Request"]
    schema = {**request, "components": doc["components"]}  # so the refs resolve
    validator = Draft7Validator(schema)
    good = {"service": "svc", "request_type": "echo", "request_id": "r1", "args": {"text": "x"}}
    assert validator.is_valid(good)
    assert not validator.is_valid({**good, "args": {"text": 1}})
    assert not validator.is_valid({**good, "request_type": "other"})


def test_typescript_names_and_escaping() -> None:
    """Odd names are quoted, comments cannot be closed early, interfaces never clash."""
    registry = Registry()
    registry.add(FunConfig(service="my-svc", request_type="do_it", function=_noop,
                           arg_types={"weird-name": "string"},
                           description="closes */ early"))
    registry.add(FunConfig(service="my_svc", request_type="do-it", function=_noop))
    source = typescript_module(function_catalog(registry))
    assert '"weird-name": string;' in source
    assert "closes *\\/ early" in source
    assert "export interface MySvcDoItArgs {" in source
    assert "export interface MySvcDoItArgs2 {" in source
    assert '"my-svc": {' in source


USAGE = """\
import { callApi, callApiVersion, cancelCall, type PhoenixChannel, type Response } from "./api";

declare const channel: PhoenixChannel;

export async function main(): Promise<boolean> {
  const user: Response = await callApi(channel, "user_service", "get_user", { user_id: "1" });
  const v2 = await callApiVersion(channel, "user_service", "get_user", "2.0.0",
                                  { id: "1", fields: ["name"] });
  await callApi(channel, "event_service", "ticker", { count: 3 }, { onChunk: (c) => c });
  await callApi(channel, "blog_service", "create_post",
                { title: "t", body: "b", tags: [], metadata: { author: "a" } });
  // @ts-expect-error a required argument is missing
  await callApi(channel, "user_service", "get_user", {});
  // @ts-expect-error a number where a string is expected
  await callApi(channel, "user_service", "get_user", { user_id: 1 });
  // @ts-expect-error no such function
  await callApi(channel, "user_service", "nope", {});
  // @ts-expect-error unknown arguments are refused
  await callApi(channel, "user_service", "get_user", { user_id: "1", city: "x" });
  // @ts-expect-error version 1.0.0 takes no fields
  await callApiVersion(channel, "user_service", "get_user", "1.0.0", { user_id: "1", fields: [] });
  const noAuthor = { title: "t", body: "b", tags: [], metadata: {} };
  // @ts-expect-error the map's required key is missing
  await callApi(channel, "blog_service", "create_post", noAuthor);
  cancelCall(channel, user.request_id);
  return v2.success;
}
"""


def tsc() -> str:
    binary = JS_DIR / "node_modules" / ".bin" / "tsc"
    if shutil.which("node") is None or not binary.exists():
        pytest.skip("node and typescript in tests/e2e/js are needed (scripts/setup --dev)")
    return str(binary)


def test_typescript_compiles_strict_against_a_usage_file(tmp_path: Path) -> None:
    """The generated .ts passes `tsc --noEmit --strict`, and wrong calls are type errors."""
    compiler = tsc()
    (tmp_path / "api.ts").write_text(typescript_module(function_catalog(build_demo_gateway())))
    (tmp_path / "usage.ts").write_text(USAGE)
    result = subprocess.run(
        [compiler, "--noEmit", "--strict", "--target", "ES2022", "--module", "ES2022",
         "--moduleResolution", "bundler", "--lib", "ES2022",
         str(tmp_path / "usage.ts"), str(tmp_path / "api.ts")],
        capture_output=True, text=True, timeout=120, cwd=JS_DIR,
    )
    assert result.returncode == 0, result.stdout + result.stderr
