"""Schemas from the code: typed arguments, results, stream chunks and docstrings in the
catalog, JSON Schema, AsyncAPI and TypeScript."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

from genapi import asyncapi_document, function_catalog, json_schemas, typescript_module
from tests.client.typed_app import gateway
from tests.schema.test_schema import JS_DIR, _refs, _resolve, tsc


def by_key(catalog: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f["request_type"]: f for f in catalog["functions"]}


def test_the_catalog_carries_types_results_chunks_and_docstrings() -> None:
    """Typed arguments have their schema, functions their result and chunk schemas and
    their docstring; named types are defined once."""
    catalog = function_catalog(gateway)
    functions = by_key(catalog)
    get_user = functions["get_user"]
    assert get_user["description"] == "One user by id."
    assert get_user["arguments"][0]["schema"] == {"type": "integer"}
    assert get_user["result"] == {"$ref": "#/definitions/User"}
    assert get_user["chunk"] is None
    ticks = functions["ticks"]
    assert ticks["chunk"] == {"$ref": "#/definitions/Tick"}
    assert ticks["result"] is None
    assert functions["create_user"]["result"]["properties"]["email"]["type"] == "string"
    user = catalog["definitions"]["User"]
    assert user["required"] == ["id", "name", "joined"]
    assert catalog["definitions"]["Tick"]["properties"] == {"n": {"type": "integer"}}


def test_json_schema_has_results_and_chunks_that_validate() -> None:
    """``….result`` and ``….chunk`` schemas sit beside the args; every $ref resolves; a
    real result validates and a wrong one does not."""
    doc = json_schemas(function_catalog(gateway))
    defs = doc["$defs"]
    assert defs["users.get_user.result"] == {"$ref": "#/$defs/User"}
    assert defs["users.ticks.chunk"] == {"$ref": "#/$defs/Tick"}
    assert defs["users.get_user"]["description"] == "One user by id."
    for ref in _refs(doc):
        assert _resolve(doc, ref) is not None, ref
    result = Draft202012Validator({**defs["users.get_user.result"], "$defs": defs})
    assert result.is_valid({"id": 1, "name": "a", "joined": "2024-01-01T00:00:00Z"})
    assert not result.is_valid({"id": "1", "name": "a", "joined": "x"})
    args = Draft202012Validator({**defs["users.create_user@2.0.0"], "$defs": defs})
    assert args.is_valid({"user": {"name": "a", "email": "b"}})
    assert not args.is_valid({"user": {"name": "a"}})


def test_asyncapi_names_results_and_chunks() -> None:
    """Request variants point at their result and chunk schemas; named types are
    components; every $ref resolves."""
    doc = asyncapi_document(function_catalog(gateway))
    schemas = doc["components"]["schemas"]
    assert "Type_User" in schemas
    variants = {v["description"]: v for v in schemas["Request"]["anyOf"]}
    get_user = variants["users.get_user (no version: the default): One user by id."]
    assert _resolve(doc, get_user["x-genapi-result"]["$ref"]) == {
        "$ref": "#/components/schemas/Type_User"}
    ticks = next(v for d, v in variants.items() if d.startswith("users.ticks"))
    assert "x-genapi-chunk" in ticks
    for ref in _refs(doc):
        assert _resolve(doc, ref) is not None, ref


USAGE = """\
import { callApi, callApiVersion, type PhoenixChannel, type User } from "./api";

declare const channel: PhoenixChannel;

export async function main(): Promise<number> {
  const answer = await callApi(channel, "users", "get_user", { user_id: 1 });
  const user: User | null = answer.result;
  // @ts-expect-error results are typed: User has no email
  const email: string | undefined = answer.result?.email;
  await callApi(channel, "users", "ticks", { count: 2 }, { onChunk: (tick) => tick.n + 1 });
  // @ts-expect-error chunks are typed: Tick has no name
  await callApi(channel, "users", "ticks", { count: 2 }, { onChunk: (tick) => tick.name });
  const created = await callApiVersion(channel, "users", "create_user", "2.0.0",
                                       { user: { name: "a", email: "b" } });
  // @ts-expect-error a typed argument's fields are checked
  await callApi(channel, "users", "create_user", { user: { name: "a" } });
  return (user?.id ?? 0) + (created.result?.name.length ?? 0) + (email ? 1 : 0);
}
"""


def test_typescript_types_results_and_chunks(tmp_path: Path) -> None:
    """The generated .ts types results (callApi's Response) and chunks (onChunk), and
    typed arguments' fields; it compiles strict and wrong uses are type errors."""
    compiler = tsc()
    source = typescript_module(function_catalog(gateway))
    assert "/** users.get_user (sync): One user by id. */" in source
    assert "export interface User {" in source
    (tmp_path / "api.ts").write_text(source)
    (tmp_path / "usage.ts").write_text(USAGE)
    result = subprocess.run(
        [compiler, "--noEmit", "--strict", "--target", "ES2022", "--module", "ES2022",
         "--moduleResolution", "bundler", "--lib", "ES2022",
         str(tmp_path / "usage.ts"), str(tmp_path / "api.ts")],
        capture_output=True, text=True, timeout=120, cwd=JS_DIR,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_type_names_never_clash_with_the_module_s_own() -> None:
    """A named type called Response (or like a generated name) is renamed; schemas the
    converter does not know become unknown, never a wrong type."""
    from genapi.schema.tstypes import TypeNames, ts_type

    names = TypeNames(["Response", "User", "Page[int]"], taken={"Response"})
    assert names.names == {"Response": "Response2", "User": "User", "Page[int]": "Page_int_"}
    assert ts_type({"$ref": "#/definitions/Response"}, names) == "Response2"
    assert ts_type({"type": "array", "prefixItems": [{"type": "integer"},
                                                     {"enum": ["a", "b"]}]}, names) == (
        '[number, "a" | "b"]')
    assert ts_type({"anyOf": [{"type": "string"}, {"type": "null"}]}, names) == "string | null"
    assert ts_type({"type": "object", "additionalProperties": {"type": "integer"}}, names) == (
        "Record<string, number>")
    assert ts_type({"not": {}}, names) == "unknown"
