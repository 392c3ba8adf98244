"""An AsyncAPI 3.0 document of a gateway's socket API.

The socket speaks Phoenix Channels v2: every WebSocket frame is the JSON array
``[join_ref, ref, topic, event, payload]``. The document models each topic pattern as a
channel (``api:*`` becomes the address ``api:{subtopic}``) and each event as a message
whose payload is the frame's ``payload``: ``phx_join``, the ``api`` request envelope (one
variant per function, with its typed ``args``, its docstring as description, and its
declared result and stream chunk schemas under ``x-genapi-result`` / ``x-genapi-chunk``),
the ``api`` Response, and ``cancel``. Named types are components ``Type_<name>``.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from .catalog import function_key
from .json_schema import args_schema
from .types import relocate

__all__ = ["asyncapi_document"]

_FRAME = ("Phoenix Channels v2 frame [join_ref, ref, topic, event, payload] with event "
          "{event!r}; this is the payload.")


def _component_name(key: str, taken: set[str]) -> str:
    # Component keys must match ^[a-zA-Z0-9.\-_]+$ (function names may hold anything).
    name = "Args_" + re.sub(r"[^A-Za-z0-9.\-_]", "_", key)
    candidate, n = name, 2
    while candidate in taken:
        candidate, n = f"{name}_{n}", n + 1
    taken.add(candidate)
    return candidate


def _response_schema() -> dict[str, Any]:
    keys = ("request_id", "result", "success", "error", "async", "has_more", "can_retry")
    return {
        "type": "object",
        "description": "The seven-key answer to a call. Sync: one Response. Async: an "
                       "acknowledgement (async: true), then the final Response (async: "
                       "false). Stream: init (result \"init\", has_more: true), chunks "
                       "(has_more: true), then one terminator (has_more: false). An error "
                       "has success: false and a message in error.",
        "properties": {
            "request_id": {"type": "string"},
            "result": {},
            "success": {"type": "boolean"},
            "error": {"type": ["string", "null"]},
            "async": {"type": "boolean"},
            "has_more": {"type": "boolean"},
            "can_retry": {"type": "boolean",
                          "description": "True when the same call may succeed later."},
        },
        "required": list(keys),
        "additionalProperties": False,
    }


_TYPES = "#/components/schemas/Type_"


def _request_variant(function: dict[str, Any], ref: str, *, by_default: bool,
                     answers: dict[str, Any]) -> dict[str, Any]:
    properties: dict[str, Any] = {
        "service": {"const": function["service"]},
        "request_type": {"const": function["request_type"]},
        "request_id": {"type": "string", "minLength": 1},
        "args": {"$ref": ref},
        "device_id": {"type": "string"},
    }
    variant: dict[str, Any] = {"type": "object", "required": [
        "service", "request_type", "request_id", "args"]}
    about = f": {function['description']}" if function.get("description") else ""
    if by_default:
        variant["description"] = f"{function_key(function)} (no version: the default){about}"
        variant["not"] = {"required": ["version"]}
    else:
        variant["description"] = function_key(function) + about
        properties["version"] = {"const": function["version"]}
        variant["required"].append("version")
    variant["properties"] = properties
    variant.update(answers)
    return variant


def _channel_id(pattern: str, taken: set[str]) -> str:
    base = re.sub(r"[^A-Za-z0-9_]", "_", pattern.rstrip("*").rstrip(":")) or "topic"
    candidate, n = base, 2
    while candidate in taken:
        candidate, n = f"{base}_{n}", n + 1
    taken.add(candidate)
    return candidate


def asyncapi_document(catalog: dict[str, Any], *, server_url: str | None = None,
                      title: str = "genapi gateway") -> dict[str, Any]:
    """The AsyncAPI 3.0 document of ``catalog``'s socket API.

    ``server_url`` (``http://host:port`` or ``ws://…``) adds a server entry.
    """
    event, cancel = catalog["event"], catalog["cancel_event"]
    schemas: dict[str, Any] = {"Response": _response_schema(), "Cancel": {
        "type": "object", "required": ["request_id"],
        "properties": {"request_id": {"type": "string"}},
        "description": "Cancels an in-flight call of this connection (a stream or a "
                       "running sync/async call); its terminal Response still arrives.",
    }}
    for type_name, definition in catalog.get("definitions", {}).items():
        schemas["Type_" + type_name] = relocate(definition, _TYPES)
    taken: set[str] = set()
    variants = []
    for function in catalog["functions"]:
        name = _component_name(function_key(function), taken)
        schemas[name] = args_schema(function["arguments"], title=function_key(function),
                                    dialect=False, description=function.get("description"),
                                    refs=_TYPES)
        ref = f"#/components/schemas/{name}"
        answers: dict[str, Any] = {}
        for part in ("result", "chunk"):
            if function.get(part) is not None:
                part_name = name.replace("Args_", part.title() + "_", 1)
                schemas[part_name] = relocate(function[part], _TYPES)
                answers[f"x-genapi-{part}"] = {"$ref": f"#/components/schemas/{part_name}"}
        if function["version"] is not None:
            variants.append(_request_variant(function, ref, by_default=False,
                                             answers=answers))
        if function["default"]:
            variants.append(_request_variant(function, ref, by_default=True,
                                             answers=answers))
    schemas["Request"] = {
        "description": "The call envelope. user_id and roles come from the authenticated "
                       "socket, never from here. At most "
                       f"{catalog['max_payload_bytes']} bytes.",
        "anyOf": variants or [{"not": {}}],
    }
    correlation = {"location": "$message.payload#/request_id"}
    messages = {
        "join": {"name": "phx_join", "title": "Join a topic",
                 "summary": _FRAME.format(event="phx_join"),
                 "payload": {"type": "object", "description": "Join parameters."}},
        "apiRequest": {"name": event, "title": "Call a function",
                       "summary": _FRAME.format(event=event),
                       "payload": {"$ref": "#/components/schemas/Request"},
                       "correlationId": correlation},
        "apiResponse": {"name": event, "title": "A Response",
                        "summary": "Server push " + _FRAME.format(event=event),
                        "payload": {"$ref": "#/components/schemas/Response"},
                        "correlationId": correlation},
        "cancel": {"name": cancel, "title": "Cancel a call",
                   "summary": _FRAME.format(event=cancel),
                   "payload": {"$ref": "#/components/schemas/Cancel"},
                   "correlationId": correlation},
    }
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    ids: set[str] = set()
    for pattern in catalog["topics"]:
        cid = _channel_id(pattern, ids)
        wildcard = pattern.endswith("*")
        channel: dict[str, Any] = {
            "address": pattern[:-1] + "{subtopic}" if wildcard else pattern,
            "title": f"Topic {pattern}",
            "messages": {k: {"$ref": f"#/components/messages/{k}"} for k in messages},
        }
        if wildcard:
            channel["parameters"] = {"subtopic": {
                "description": "Any suffix (clients usually join api:lobby)."}}
        channels[cid] = channel
        chan = {"$ref": f"#/channels/{cid}"}

        def msg(key: str, cid: str = cid) -> dict[str, str]:
            return {"$ref": f"#/channels/{cid}/messages/{key}"}

        operations[f"{cid}_join"] = {"action": "send", "channel": chan,
                                     "summary": "Join the topic before calling.",
                                     "messages": [msg("join")]}
        operations[f"{cid}_call"] = {
            "action": "send", "channel": chan, "summary": "Call a function.",
            "messages": [msg("apiRequest")],
            "reply": {"channel": chan, "messages": [msg("apiResponse")]},
        }
        operations[f"{cid}_response"] = {"action": "receive", "channel": chan,
                                         "summary": "Responses pushed by the gateway.",
                                         "messages": [msg("apiResponse")]}
        operations[f"{cid}_cancel"] = {"action": "send", "channel": chan,
                                       "summary": "Cancel an in-flight call.",
                                       "messages": [msg("cancel")]}
    doc: dict[str, Any] = {
        "asyncapi": "3.0.0",
        "info": {"title": title, "version": catalog["genapi_version"],
                 "description": "Call backend functions by name over one WebSocket "
                                "(Phoenix Channels v2, phoenix.js compatible)."},
        "defaultContentType": "application/json",
    }
    if server_url is not None:
        parts = urlsplit(server_url)
        doc["servers"] = {"gateway": {
            "host": parts.netloc, "protocol": "wss" if parts.scheme in ("https", "wss") else "ws",
            "pathname": catalog["socket_path"].rstrip("/") + "/websocket",
            "description": "Connect with ?vsn=2.0.0 (phoenix.js does).",
        }}
    doc.update({"channels": channels, "operations": operations,
                "components": {"schemas": schemas, "messages": messages}})
    return doc
