"""TypeScript types for a gateway's functions, and a typed ``callApi`` for phoenix.js.

The output is one self-contained ``.ts`` file (no imports): the named types of the API
(Structs, dataclasses, TypedDicts, enums, pydantic models: an interface or type each), an
interface per function's args, ``Response<T>``, the mapped types ``ApiFunctions`` (service
→ request type → args of the default version), ``ApiResults`` and ``ApiChunks`` (→ the
declared result and stream chunk types, ``unknown`` where undeclared), their ``ApiVersion*``
counterparts (… → version → …), and ``callApi`` / ``callApiVersion``, which push the
envelope on a joined phoenix.js channel and resolve with the call's final Response, typed by
the result (``onChunk`` by the chunk type). Docstrings become doc comments. The channel is
typed structurally (``PhoenixChannel``), so the ``phoenix`` package's ``Channel`` fits
whether or not its typings are installed.
"""

from __future__ import annotations

import json
import re
from typing import Any, Final

from .catalog import function_key
from .tstypes import TypeNames, declarations, ts_type

__all__ = ["typescript_module"]

_IDENT: Final = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$]*$")
_SCALARS: Final = {
    "string": "string", "num": "number", "boolean": "boolean", "uuid": "string",
    "datetime": "string", "naive_datetime": "string", "any": "unknown",
    "list": "Array<string | number | boolean>", "list_string": "string[]",
    "list_num": "number[]", "list_uuid": "string[]",
    "list_map": "Array<Record<string, unknown>>",
}

_PRELUDE = '''\
/** The seven-key answer to every call, pushed on the {event} event. */
export interface Response<T = unknown> {{
  request_id: string;
  success: boolean;
  result: T | null;
  error: string | null;
  async: boolean;
  has_more: boolean;
  can_retry: boolean;
}}

export type ResponseType = "sync" | "async" | "stream" | "none";
'''

_RUNTIME = '''\
export type ServiceName = keyof ApiFunctions;
export type RequestTypeOf<S extends ServiceName> = keyof ApiFunctions[S] & string;
export type ArgsOf<S extends ServiceName, R extends RequestTypeOf<S>> = ApiFunctions[S][R];
/** The declared result (a stream's: its chunk type, the last chunk being the result). */
export type ResultOf<S extends ServiceName, R extends RequestTypeOf<S>> =
  S extends keyof ApiResults ? R extends keyof ApiResults[S] ? ApiResults[S][R] : unknown
  : unknown;
/** The declared type of a stream's chunks. */
export type ChunkOf<S extends ServiceName, R extends RequestTypeOf<S>> =
  S extends keyof ApiChunks ? R extends keyof ApiChunks[S] ? ApiChunks[S][R] : unknown
  : unknown;
/** The declared result of one version. */
export type VersionResultOf<S, R, V> =
  S extends keyof ApiVersionResults ? R extends keyof ApiVersionResults[S]
  ? V extends keyof ApiVersionResults[S][R] ? ApiVersionResults[S][R][V] : unknown
  : unknown : unknown;
/** The declared chunk type of one version. */
export type VersionChunkOf<S, R, V> =
  S extends keyof ApiVersionChunks ? R extends keyof ApiVersionChunks[S]
  ? V extends keyof ApiVersionChunks[S][R] ? ApiVersionChunks[S][R][V] : unknown
  : unknown : unknown;

/** The envelope pushed on the {event} event (user_id comes from the socket, never from here). */
export interface ApiRequest<S extends ServiceName, R extends RequestTypeOf<S>> {{
  service: S;
  request_type: R;
  request_id: string;
  version?: string;
  args: ArgsOf<S, R>;
}}

/** What callApi needs of a phoenix.js Channel (the phoenix package's Channel fits). */
export interface PhoenixPush {{
  receive(status: string, callback: (response?: any) => any): PhoenixPush;
}}
export interface PhoenixChannel {{
  push(event: string, payload: object, timeout?: number): PhoenixPush;
  on(event: string, callback: (payload?: any) => any): number;
  off(event: string, ref?: number): void;
}}

export interface CallOptions<C = unknown> {{
  /** Defaults to a fresh id. */
  requestId?: string;
  /** Milliseconds to wait for the push to be acknowledged (phoenix.js default otherwise). */
  timeout?: number;
  /** Streams: called with each chunk's result (the final chunk's too, when it has one). */
  onChunk?: (chunk: C) => void;
}}

export const API_EVENT = {event_literal};
export const CANCEL_EVENT = {cancel_literal};

let lastId = 0;
function nextRequestId(): string {{
  lastId += 1;
  return `ts-${{Date.now().toString(36)}}-${{lastId}}`;
}}

function send<T, C>(
  channel: PhoenixChannel, service: string, requestType: string, version: string | undefined,
  args: unknown, responseType: ResponseType, options: CallOptions<C>,
): Promise<Response<T>> {{
  const requestId = options.requestId ?? nextRequestId();
  const payload: Record<string, unknown> = {{ service, request_type: requestType,
                                             request_id: requestId, args }};
  if (version !== undefined) payload.version = version;
  return new Promise<Response<T>>((resolve, reject) => {{
    let settled = false;
    let first = true;
    const finish = (response: Response<T>): void => {{
      if (settled) return;
      settled = true;
      channel.off(API_EVENT, ref);
      resolve(response);
    }};
    const failed = (error: string, canRetry: boolean): Response<T> => ({{
      request_id: requestId, success: false, result: null, error, async: false,
      has_more: false, can_retry: canRetry }});
    const ref = channel.on(API_EVENT, (message?: Response<T>) => {{
      if (!message || message.request_id !== requestId || settled) return;
      const isFirst = first;
      first = false;
      if (!message.success) return finish(message);
      if (responseType === "async" && isFirst && message.async) return; // the acknowledgement
      if (responseType === "stream") {{
        if (isFirst && message.has_more && message.result === "init") return;
        if (message.result !== null) options.onChunk?.(message.result as unknown as C);
        if (message.has_more) return;
      }}
      finish(message);
    }});
    channel.push(API_EVENT, payload, options.timeout)
      .receive("ok", () => {{
        if (responseType === "none") {{
          finish({{ request_id: requestId, success: true, result: null, error: null,
                    async: false, has_more: false, can_retry: false }});
        }}
      }})
      .receive("error", (reason?: unknown) => {{
        finish(failed(typeof reason === "string" ? reason : JSON.stringify(reason), false));
      }})
      .receive("timeout", () => {{
        if (settled) return;
        settled = true;
        channel.off(API_EVENT, ref);
        reject(new Error(`${{service}}.${{requestType}}: no reply to the push (timeout)`));
      }});
  }});
}}

/** Call a function's default version; resolves with its final Response. */
export function callApi<S extends ServiceName, R extends RequestTypeOf<S>,
                        T = ResultOf<S, R>>(
  channel: PhoenixChannel, service: S, requestType: R, args: ArgsOf<S, R>,
  options: CallOptions<ChunkOf<S, R>> = {{}},
): Promise<Response<T>> {{
  const kinds = RESPONSE_TYPES[service] as Record<string, ResponseType>;
  return send<T, ChunkOf<S, R>>(channel, service, requestType, undefined, args,
                                kinds[requestType] ?? "sync", options);
}}

/** Call one version of a function; resolves with its final Response. */
export function callApiVersion<
  S extends keyof ApiVersions, R extends keyof ApiVersions[S] & string,
  V extends keyof ApiVersions[S][R] & string, T = VersionResultOf<S, R, V>,
>(
  channel: PhoenixChannel, service: S, requestType: R, version: V,
  args: ApiVersions[S][R][V], options: CallOptions<VersionChunkOf<S, R, V>> = {{}},
): Promise<Response<T>> {{
  const kinds = VERSION_RESPONSE_TYPES[service] as Record<string, Record<string, ResponseType>>;
  return send(channel, service, requestType, version, args,
              kinds[requestType]?.[version] ?? "sync", options);
}}

/** Ask the gateway to cancel an in-flight call of this channel's socket. */
export function cancelCall(channel: PhoenixChannel, requestId: string): void {{
  channel.push(CANCEL_EVENT, {{ request_id: requestId }});
}}
'''


#: Names the module declares itself: named types of the API get other names.
_RESERVED: Final = frozenset({
    "Response", "ResponseType", "ServiceName", "RequestTypeOf", "ArgsOf", "ResultOf",
    "ChunkOf", "VersionResultOf", "VersionChunkOf", "ApiRequest", "PhoenixPush",
    "PhoenixChannel", "CallOptions", "API_EVENT",
    "CANCEL_EVENT", "ApiFunctions", "ApiVersions", "ApiResults", "ApiChunks",
    "ApiVersionResults", "ApiVersionChunks", "RESPONSE_TYPES", "VERSION_RESPONSE_TYPES",
    "callApi", "callApiVersion", "cancelCall", "send", "nextRequestId", "lastId",
})


def _literal(value: str) -> str:
    return json.dumps(value)  # a JSON string is a valid TS string literal


def _prop(name: str) -> str:
    return name if _IDENT.match(name) else _literal(name)


def _comment(text: str) -> str:
    return text.replace("*/", "*\\/").replace("\n", " ")


def _pascal(*parts: str) -> str:
    words = [w for part in parts for w in re.split(r"[^A-Za-z0-9]+", part) if w]
    name = "".join(w[:1].upper() + w[1:] for w in words) or "Fn"
    return "_" + name if name[0].isdigit() else name


def _arg_type(arg: dict[str, Any], names: TypeNames) -> str:
    if "schema" in arg:
        text = ts_type(arg["schema"], names, "  ")
        return text + " | null" if arg.get("allow_nil") else text
    t = arg["type"]
    if t == "map":
        keys: list[str] = list(arg.get("accept") or arg.get("required_keys") or [])
        required = set(arg.get("required_keys") or [])
        if keys:
            fields = " ".join(f"{_prop(k)}{'' if k in required else '?'}: unknown;"
                              for k in keys)
            rest = "" if arg.get("accept") else " [key: string]: unknown;"
            text = "{ " + fields + rest + " }"
        else:
            text = "Record<string, unknown>"
    elif t == "any":
        return "unknown" if arg.get("allow_nil") else "NonNullable<unknown>"
    else:
        text = _SCALARS.get(t, "unknown")
    if arg.get("allow_nil"):
        text += " | null"
    return text


def _arg_doc(arg: dict[str, Any]) -> str:
    parts = [arg["type"]]
    if "max_bytes" in arg:
        parts.append(f"at most {arg['max_bytes']} bytes")
    if "max_items" in arg:
        parts.append(f"at most {arg['max_items']} items")
    if "max_item_bytes" in arg:
        parts.append(f"items at most {arg['max_item_bytes']} bytes")
    if "default" in arg:
        parts.append("default " + json.dumps(arg["default"]))
    return _comment(", ".join(parts))


def _interface(name: str, function: dict[str, Any], names: TypeNames) -> str:
    head = f"{function_key(function)} ({function['response_type']})"
    if function.get("description"):
        head += ": " + function["description"]
    lines = [f"/** {_comment(head)} */", f"export interface {name} {{"]
    for arg in function["arguments"]:
        optional = "" if arg["required"] else "?"
        lines.append(f"  /** {_arg_doc(arg)} */")
        lines.append(f"  {_prop(arg['name'])}{optional}: {_arg_type(arg, names)};")
    lines.append("}")
    return "\n".join(lines)


def _nested(tree: dict[str, dict[str, Any]], sep: str = ";") -> list[str]:
    """Two or three levels of ``key: value`` lines (an interface body, or an object literal
    with ``sep=","``)."""
    lines = []
    for service, entries in tree.items():
        lines.append(f"  {_prop(service)}: {{")
        for key, value in entries.items():
            if isinstance(value, dict):
                inner = " ".join(f"{_prop(k)}: {v}{sep}" for k, v in value.items())
                lines.append(f"    {_prop(key)}: {{ {inner} }}{sep}")
            else:
                lines.append(f"    {_prop(key)}: {value}{sep}")
        lines.append(f"  }}{sep}")
    return lines


def typescript_module(catalog: dict[str, Any]) -> str:
    """The ``.ts`` source for ``catalog`` (see the module docs)."""
    event = catalog["event"]
    out = [f"// Generated by genapi {catalog['genapi_version']}. Do not edit: run "
           "`genapi schema --typescript` again.", "",
           _PRELUDE.format(event=_comment(_literal(event)))]
    names: dict[str, str] = {}
    taken: set[str] = set(_RESERVED)
    interfaces: list[tuple[str, dict[str, Any]]] = []
    defaults: dict[str, dict[str, Any]] = {}
    versions: dict[str, dict[str, Any]] = {}
    kinds: dict[str, dict[str, Any]] = {}
    version_kinds: dict[str, dict[str, Any]] = {}
    results: dict[str, dict[str, Any]] = {}
    chunks: dict[str, dict[str, Any]] = {}
    version_results: dict[str, dict[str, Any]] = {}
    version_chunks: dict[str, dict[str, Any]] = {}
    for function in catalog["functions"]:
        key = function_key(function)
        version = function["version"]
        suffix = "" if version is None else "V" + re.sub(r"[^A-Za-z0-9]+", "_", version)
        base = _pascal(function["service"], function["request_type"]) + suffix + "Args"
        name, n = base, 2
        while name in taken:
            name, n = f"{base}{n}", n + 1
        taken.add(name)
        names[key] = name
        interfaces.append((name, function))
    types = TypeNames(catalog.get("definitions", {}), taken)
    out.extend(declarations(catalog.get("definitions", {}), types))
    for name, function in interfaces:
        out.extend([_interface(name, function, types), ""])
        version = function["version"]
        service, request_type = function["service"], function["request_type"]
        kind = _literal(function["response_type"])
        stream = function["response_type"] == "stream"
        chunk = ts_type(function.get("chunk"), types, "    ")
        result = chunk if stream else ts_type(function.get("result"), types, "    ")
        if function["default"]:
            defaults.setdefault(service, {})[request_type] = name
            kinds.setdefault(service, {})[request_type] = kind
            results.setdefault(service, {})[request_type] = result
            chunks.setdefault(service, {})[request_type] = chunk
        if version is not None:
            versions.setdefault(service, {}).setdefault(request_type, {})[version] = name
            version_kinds.setdefault(service, {}).setdefault(request_type, {})[version] = kind
            version_results.setdefault(service, {}).setdefault(request_type, {})[version] = (
                result)
            version_chunks.setdefault(service, {}).setdefault(request_type, {})[version] = (
                chunk)
    out += ["/** Args of each function's default version, by service and request type. */",
            "export interface ApiFunctions {", *_nested(defaults), "}", "",
            "/** The declared result of each function's default version (unknown where the "
            "function declares none; a stream's: its chunk type). */",
            "export interface ApiResults {", *_nested(results), "}", "",
            "/** The declared chunk type of each stream (unknown elsewhere). */",
            "export interface ApiChunks {", *_nested(chunks), "}", "",
            "/** Results of each versioned config, by service, request type and version. */",
            "export interface ApiVersionResults {", *_nested(version_results), "}", "",
            "/** Chunk types of each versioned config. */",
            "export interface ApiVersionChunks {", *_nested(version_chunks), "}", "",
            "/** Args of each versioned config, by service, request type and version. */",
            "export interface ApiVersions {", *_nested(versions), "}", "",
            "export const RESPONSE_TYPES: { readonly [S in keyof ApiFunctions]: "
            "{ readonly [R in keyof ApiFunctions[S]]: ResponseType } } = {",
            *_nested(kinds, ","), "};", "",
            "export const VERSION_RESPONSE_TYPES: { readonly [S in keyof ApiVersions]: "
            "{ readonly [R in keyof ApiVersions[S]]: "
            "{ readonly [V in keyof ApiVersions[S][R]]: ResponseType } } } = {",
            *_nested(version_kinds, ","), "};", "",
            _RUNTIME.format(event=_comment(_literal(event)), event_literal=_literal(event),
                            cancel_literal=_literal(catalog["cancel_event"]))]
    return "\n".join(out)
