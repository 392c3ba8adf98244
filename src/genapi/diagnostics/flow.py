"""Call flows: the phases a call of one function goes through, explained in sentences.

The phases follow the executor's real order (unlike the reference library, the before hook
runs after permission, rate limit and argument validation, for every response type):

channel → decode → config_lookup → permission → rate_limit → argument_validation →
hooks_before → node_selection → execution → retry → hooks_after → response

Every phase is listed, with ``active`` False where nothing happens for this function.
"""

from __future__ import annotations

from typing import Any

from ..errors import FunctionDisabled, FunctionNotFound
from ..functions.config import ResponseType
from ..functions.permissions import PermissionKind
from ..functions.registry import semver_key
from ..functions.routes import Hook, Route
from ..messages import NO_VERSION
from ..ratelimit import RateLimiter as LimiterImpl
from ..schema.catalog import describe_arg
from ..schema.plain import plain
from .view import GatewayView

__all__ = ["call_flow", "list_call_flows"]

_RESPONSES = {
    ResponseType.SYNC: 'Sync: the result (or the error) is pushed at once as one Response on '
                       'the "{event}" event; the phx_reply says ok or error.',
    ResponseType.ASYNC: "Async: an acknowledgement (async: true) is pushed at once; the final "
                        "Response follows when the function finishes.",
    ResponseType.STREAM: 'Stream: an "init" Response (has_more: true) is pushed at once, then '
                         "chunks (has_more: true) and exactly one terminator (has_more: false, "
                         "or an error).",
    ResponseType.NONE: "Fire-and-forget (no response to client); the push is still "
                       "acknowledged by phx_reply.",
}


def _phase(phase: str, description: str, *, active: bool = True,
           **details: Any) -> dict[str, Any]:
    return {"phase": phase, "active": active, "description": description, **plain(details)}


def _version_label(version: str | None) -> str:
    return "unversioned" if version is None else version


def _route_order(route: Route) -> tuple[Any, ...]:
    return (route.service, route.request_type, route.version is not None,
            semver_key(route.version or ""))


def call_flow(gateway: GatewayView, service: str, request_type: str,
              version: str | None = None) -> dict[str, Any]:
    """The phases a call of ``service.request_type`` takes, resolved like a request.

    Found: the function's traits and ``steps``. Not found (or disabled): ``found`` False,
    ``error`` (the message a client would get) and the first three steps.
    """
    requested = None if version in (None, "", NO_VERSION) else version
    registry = gateway.registry
    known = sorted((r for r in registry.routes()
                    if r.service == service and r.request_type == request_type),
                   key=_route_order)
    try:
        route = registry.resolve(service, request_type, requested)
    except (FunctionNotFound, FunctionDisabled) as exc:
        labels = ", ".join(
            _version_label(r.version) + (" (disabled)" if r.disabled else "") for r in known
        ) or "none"
        lookup = _phase("config_lookup", f"{exc.message}; registered versions: {labels}.",
                        found=False)
        return {"service": service, "request_type": request_type,
                "requested_version": requested, "found": False, "error": exc.message,
                "steps": [*_entry_phases(gateway), lookup]}
    return _flow(gateway, route, _lookup_text(route, requested, known), requested)


def list_call_flows(gateway: GatewayView, *,
                    include_disabled: bool = False) -> list[dict[str, Any]]:
    """A call flow for every registered version (disabled ones as stubs, if asked)."""
    routes = sorted(gateway.registry.routes(), key=_route_order)
    by_pair: dict[tuple[str, str], list[Route]] = {}
    for route in routes:
        by_pair.setdefault((route.service, route.request_type), []).append(route)
    flows = []
    for route in routes:
        if route.disabled:
            if include_disabled:
                flows.append({"service": route.service, "request_type": route.request_type,
                              "version": route.version, "status": "disabled",
                              "disabled": True})
            continue
        known = by_pair[(route.service, route.request_type)]
        flows.append(_flow(gateway, route, _lookup_text(route, route.version, known),
                           route.version))
    return flows


def _entry_phases(gateway: GatewayView) -> list[dict[str, Any]]:
    topics = ", ".join(gateway.topics)
    channel = (f'Pushed as event "{gateway.event}" on a joined topic ({topics}), or POSTed '
               "to the HTTP endpoint. user_id and roles come from the authenticated "
               "connection, never from the payload.")
    limit = gateway.registry.limits.max_payload_bytes
    decode = (f"The payload's size is checked before decoding (at most {limit} bytes); it "
              "must be a JSON object with request_id, service and request_type (args "
              "defaults to {}). Otherwise: 'Invalid request: …'.")
    return [_phase("channel", channel, event=gateway.event,
                   anonymous_allowed=gateway.allow_anonymous),
            _phase("decode", decode, max_payload_bytes=limit)]


def _flow(gateway: GatewayView, route: Route, lookup: str,
          requested: str | None) -> dict[str, Any]:
    config = route.config
    kind = route.response_type
    limits = gateway.registry.limits
    permission = _permission(route)
    rate_limit = _rate_limit_phase(gateway, route)
    arguments = [describe_arg(name, route.validator.specs[name], limits)
                 for name in route.validator.names]
    nodes = _nodes(gateway, route)
    retry = _retry(route, gateway.executor.caller.backoff)
    hooks = {"before": _hook(route.before_hook, route),
             "after": _hook(route.after_hook, route)}
    steps = [
        *_entry_phases(gateway),
        _phase("config_lookup", lookup, found=True, version=route.version),
        permission,
        rate_limit,
        _phase("argument_validation", _arguments_text(arguments, route),
               active=bool(arguments), mode=route.validator.mode.value, arguments=arguments),
        _phase("hooks_before", _before_text(hooks["before"]),
               active=hooks["before"]["configured"], **hooks["before"]),
        _phase("node_selection", nodes.pop("description"), active=not route.is_local,
               **nodes),
        _phase("execution", _call_text(route, _pool_text(gateway, kind)),
               timeout_ms=config.timeout),
        _phase("retry", retry["description"], active=retry["attempts"] > 1,
               **{k: v for k, v in retry.items() if k != "description"}),
        _phase("hooks_after", _after_text(hooks["after"], kind),
               active=hooks["after"]["configured"] and kind is not ResponseType.STREAM,
               **hooks["after"]),
        _phase("response", _RESPONSES[kind].format(event=gateway.event),
               response_type=kind.value),
    ]
    return {
        "service": route.service, "request_type": route.request_type,
        "version": route.version, "requested_version": requested, "found": True,
        "disabled": route.disabled, "local": route.is_local, "response_type": kind.value,
        "timeout_ms": config.timeout, "description": config.description,
        "choose_node_mode": plain(config.choose_node_mode), "nodes": nodes["nodes"],
        "permission": {"mode": permission["mode"],
                       "description": permission["description"]},
        "rate_limit": {k: rate_limit[k] for k in ("global", "api")},
        "arguments": arguments, "hooks": hooks, "retry": retry,
        "request_info": config.request_info,
        "keep_running_on_disconnect": config.keep_running_on_disconnect,
        "steps": steps,
    }


def _rate_limit_phase(gateway: GatewayView, route: Route) -> dict[str, Any]:
    limiter = gateway.executor.rate_limiter
    if limiter is None:
        return _limits_phase("No rate limiter is configured.", False, [], [])
    if not isinstance(limiter, LimiterImpl):
        return _limits_phase(f"A custom rate limiter ({type(limiter).__name__}) checks "
                             "the request.", True, [], [])
    config = limiter.config
    glob = [limit.to_dict() for limit in config.global_limits]
    api = [limit.to_dict() for limit in config.api_limits
           if limit.scope == (route.service, route.request_type)]
    if not config.enabled or not (glob or api):
        text = ("The rate limiter is disabled." if not config.enabled
                else "No rate limit applies to this function.")
        return _limits_phase(text, False, glob, api)
    parts = []
    if glob:
        parts.append(f"{len(glob)} global limit(s) ({_limits_text(glob)})")
    if api:
        parts.append(f"{len(api)} limit(s) of this function ({_limits_text(api)})")
    failure = "allowed" if config.fail_open else "refused"
    text = (f"Counted against {' and '.join(parts)}; over a limit the call is refused "
            f"with 'Rate limit exceeded' (can_retry). If the backend fails the call is "
            f"{failure}.")
    return _limits_phase(text, True, glob, api)


def _limits_phase(text: str, active: bool, glob: list[dict[str, Any]],
                  api: list[dict[str, Any]]) -> dict[str, Any]:
    return {**_phase("rate_limit", text, active=active), "global": glob, "api": api}


def _nodes(gateway: GatewayView, route: Route) -> dict[str, Any]:
    if route.is_local:
        return {"nodes": "local", "mode": None, "reachable": ["local"], "unreachable": [],
                "breakers": {}, "description": _local_text(route)}
    config = route.config
    nodes = config.nodes
    dynamic = callable(nodes)
    try:
        listed = [str(n) for n in (nodes() if callable(nodes) else nodes)]
        error = None
    except Exception as exc:  # a user's node callable: report its failure, never raise
        listed, error = [], repr(exc)
    cluster = gateway.cluster
    directory = cluster.directory if cluster is not None else None
    members = [n for n, s in (directory.snapshot().items() if directory else ())
               if route.service in s["services"]]
    reachable = [n for n in listed if directory is None or directory.alive(n)]
    unreachable = sorted({*listed, *members} - set(reachable))
    breakers = plain(gateway.executor.breakers.snapshot())
    source = "resolved at every call" if dynamic else "a fixed list"
    text = (f"Remote: runs on a service node ({source}; now {', '.join(listed) or 'none'})."
            f" Node choice: {_mode_text(config.choose_node_mode)}. Nodes whose circuit "
            "breaker is open are skipped.")
    if error is not None:
        text += f" Resolving the nodes failed: {error}."
    return {"nodes": listed, "mode": plain(config.choose_node_mode), "dynamic": dynamic,
            "reachable": reachable, "unreachable": unreachable,
            "breakers": {n: b for n, b in breakers.items() if n in {*listed, *members}},
            "description": text}


def _pool_text(gateway: GatewayView, kind: ResponseType) -> str:
    if kind is ResponseType.SYNC:
        return "Awaited within the request."
    pools = gateway.executor.pools
    pool = pools.stream_pool if kind is ResponseType.STREAM else pools.async_pool
    return (f"Runs as a job in the {pool.name} pool ({pool.size} workers, queue "
            f"{pool.max_queue}); a full pool answers 'Service temporarily unavailable' "
            "(can_retry).")


def _lookup_text(route: Route, requested: str | None, known: list[Route]) -> str:
    others = [_version_label(r.version) for r in known if r is not route]
    tail = f" Other versions: {', '.join(others)}." if others else ""
    if requested is not None:
        return f"Version {requested} was requested and is registered and enabled.{tail}"
    if route.version is None:
        return "No version requested: the unversioned config is used." + tail
    return (f"No version requested and no enabled unversioned config: the highest enabled "
            f"version, {route.version}, is used.{tail}")


def _permission(route: Route) -> dict[str, Any]:
    callback = route.permission_callback
    if callback is not None:
        name = f"{getattr(callback, '__module__', '?')}.{getattr(callback, '__qualname__', '?')}"
        text = (f"The caller must be authenticated; the permission callback {name} decides "
                "(only True allows; a failure denies).")
        return _phase("permission", text, mode="callback", callback=name)
    rule = route.permission
    if rule.kind is PermissionKind.NONE:
        return _phase("permission", "No permission check: anyone may call, anonymous "
                      "connections included.", active=False, mode=rule.kind.value)
    text = (f"The caller must be authenticated ('Authentication required' otherwise); "
            f"{rule.describe()} ('Permission denied' otherwise).")
    return _phase("permission", text, mode=rule.kind.value, arg=rule.arg,
                  roles=sorted(rule.roles))


def _arguments_text(arguments: list[dict[str, Any]], route: Route) -> str:
    if not arguments:
        return "The function takes no arguments: any argument is refused ('Unknown argument')."
    parts = []
    for a in arguments:
        limits = [f"{k} {a[k]}" for k in ("max_bytes", "max_items", "max_item_bytes") if k in a]
        state = "required" if a["required"] else ("default " + repr(a["default"])
                                                   if "default" in a else "may be null")
        parts.append(f"{a['name']} ({a['type']}{', ' if limits else ''}{', '.join(limits)}; "
                     f"{state})")
    passed = {"positional": "as positional arguments", "keywords": "as keyword arguments",
              "map": "as one map"}[route.validator.mode.value]
    return (f"Arguments are checked in order, stopping at the first problem: "
            f"{'; '.join(parts)}. Unknown arguments are refused; the values are passed "
            f"{passed}.")


def _hook(hook: Hook | None, route: Route) -> dict[str, Any]:
    # Only the hook's name and the number of its extra arguments: their values may be
    # anything a config author put there, secrets included.
    if hook is None:
        return {"configured": False, "name": None, "extra_args": 0, "timeout_ms": None}
    return {"configured": True, "name": hook.name, "extra_args": len(hook.extra_args),
            "timeout_ms": round(route.hook_timeout_s * 1000)}


def _before_text(hook: dict[str, Any]) -> str:
    if not hook["configured"]:
        return "No before hook."
    return (f"The before hook {hook['name']} runs (timeout {hook['timeout_ms']} ms); it may "
            "rewrite the request or the config, or reject the call.")


def _after_text(hook: dict[str, Any], kind: ResponseType) -> str:
    if not hook["configured"]:
        return "No after hook."
    if kind is ResponseType.STREAM:
        return f"The after hook {hook['name']} is configured but does not run for streams."
    return (f"The after hook {hook['name']} runs on the result (timeout "
            f"{hook['timeout_ms']} ms) and may replace it.")


def _local_text(route: Route) -> str:
    if route.is_async_gen or route.is_generator:
        how = "a generator whose items are streamed"
    elif route.is_coroutine and route.response_type is ResponseType.STREAM:
        how = "a coroutine sending chunks through its StreamHelper"
    elif route.is_coroutine:
        how = "a coroutine awaited on the event loop"
    else:
        how = "a plain function run in a worker thread (the event loop never blocks)"
    return f"Local: runs in the gateway process as {how}; no node selection."


def _mode_text(mode: Any) -> str:
    if mode == "random":
        return "a random node first, the others shuffled as fallbacks"
    if mode == "hash":
        return "the request id's stable hash picks the first node, the rest in list order"
    if mode == "round_robin":
        return "each node in turn (a counter per function), the rotated list as fallbacks"
    kind, arg = mode
    if kind == "hash":
        return f"the stable hash of argument {arg!r} picks the first node (random when absent)"
    return f"argument {arg!r} keeps the node it was first given (random when absent)"


def _retry(route: Route, backoff: Any) -> dict[str, Any]:
    streams = route.response_type is ResponseType.STREAM
    if route.retry is None or streams:
        fallback = "" if route.is_local else (
            " A node that cannot be reached before the first chunk falls back to the next."
            if streams else
            " Within the call, a node that cannot be reached falls back to the next.")
        reason = "Streams are not retried." if streams else "No retries."
        return {"configured": route.retry is not None, "mode": None, "retries": 0,
                "attempts": 1, "description": reason + fallback}
    mode, retries = route.retry
    where = ("on the same ordered node list" if mode == "same_node"
             else "choosing the nodes again before each retry")
    text = (f"Up to {retries} retries ({retries + 1} attempts) after a transport error or a "
            f"timeout, {where}; backoff {backoff.base_ms:g} ms doubling up to "
            f"{backoff.cap_ms:g} ms (jitter ±{backoff.jitter * 100:g}%). Other errors are final.")
    return {"configured": True, "mode": mode, "retries": retries, "attempts": retries + 1,
            "description": text}


def _call_text(route: Route, pool: str) -> str:
    timeout = route.config.timeout
    limit = (f"Timeout {timeout} ms ('Request timed out', can_retry)." if timeout is not None
             else "No timeout.")
    return f"{pool} {limit}"


def _limits_text(limits: list[dict[str, Any]]) -> str:
    return "; ".join(f"{x['key']}: {x['max_requests']} per {x['window_ms']} ms" for x in limits)
