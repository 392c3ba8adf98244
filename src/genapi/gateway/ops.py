"""Operating a running gateway: admin write actions, audited, applied cluster-wide.

``gateway.ops`` (an :class:`Operations`) changes functions and rate limits while the
gateway serves. Each action is checked against the gateway's :class:`~genapi.AdminGate`
(:class:`~genapi.AdminActionDenied`, ``Admin action denied: <action>``, when it does not
allow it), audited (the ``admin.action`` telemetry event and a log line on
``genapi.admin.audit``: who, what, before and after), and, in a cluster, published on
``<prefix>.admin.ops`` so every gateway applies it too::

    change = await gateway.ops.disable_function("user_service", "get_user", "1.0.0")
    change.before, change.after          # {"disabled": False}, {"disabled": True}

============================  ==========================  ===========================
action                        needs                       applied on
============================  ==========================  ===========================
``disable_function``          ``manage_functions``        every gateway
``enable_function``           ``manage_functions``        every gateway
``delete_function``           ``manage_functions``        every gateway
``set_rate_limit``            ``update_rate_limit_config``  every gateway
``clear_rate_limit``          ``update_rate_limit_config``  every gateway
``reset_rate_limit``          ``update_rate_limit_config``  every gateway
``clear_rate_limit_counts``   ``update_rate_limit_config``  every gateway
``check_rate_limit``          ``update_rate_limit_config``  the gateway asked
============================  ==========================  ===========================

``check_rate_limit`` counts one request of a key value, so it runs on one gateway only:
applied everywhere it would count once per gateway. With a shared store
(:class:`~genapi.ratelimit.RedisStore`) every gateway sees the count anyway.

A gateway receiving a published action applies it only if its own gate allows it and,
when its cluster has a push token, the message carries the same token: a client on NATS
cannot change what the gateway's own settings forbid. Actions that fail there (a function
only this gateway has) are logged and audited there, never sent back.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import msgspec
from starlette.routing import BaseRoute

from ..errors import AdminActionDenied, ApiError, ConfigError, RateLimited, TransportError
from ..execution.executor import Executor
from ..functions.registry import Registry
from ..ratelimit import GLOBAL, LimitStatus, RateLimit, RateLimiter, Scope
from ..security import AdminAction, AdminGate, secrets_equal
from ..telemetry.events import register_event

if TYPE_CHECKING:
    from ..transport.nats.link import Msg
    from .cluster import GatewayCluster

__all__ = ["ADMIN_ACTION", "AdminChange", "Operations", "OpsHost", "admin_action"]

logger = logging.getLogger("genapi.gateway.ops")
#: One line per admin action (applied, refused or failed): who, what, before, after.
audit_log = logging.getLogger("genapi.admin.audit")

ADMIN_ACTION = register_event(
    "admin.action", (),
    ("who", "action", "target", "before", "after", "outcome", "gateway", "origin"),
    "An admin action: applied, denied (the gate), or failed (error); origin is the "
    "gateway it was asked of (another one when it came over NATS).")


class OpsHost(Protocol):
    """What the operations act on: the gateway's registry, executor and gate."""

    registry: Registry
    executor: Executor
    admin: AdminGate


@dataclasses.dataclass(frozen=True, slots=True)
class AdminChange:
    """What an admin action did (the audit record, also its answer)."""

    action: str
    target: dict[str, Any]
    before: Any
    after: Any
    who: str
    gateway: str
    origin: str
    #: Whether it was published to the cluster (False without one, or with NATS away).
    shared: bool = False

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly copy."""
        return dataclasses.asdict(self)


_Handler = Callable[["Operations", dict[str, Any]],
                    Awaitable[tuple[dict[str, Any], Any, Any]]]


@dataclasses.dataclass(frozen=True, slots=True)
class _Spec:
    needs: AdminAction
    run: _Handler
    cluster_wide: bool = True


_SPECS: dict[str, _Spec] = {}


def admin_action(needs: AdminAction, *, name: str | None = None, cluster_wide: bool = True
                 ) -> Callable[[_Handler], _Handler]:
    """Register an admin action run by :meth:`Operations.run` (a decorator).

    The handler is ``async def handler(ops, args) -> (target, before, after)`` with JSON
    ``args``; its name (less a ``_do_`` prefix) is the action's unless ``name`` is given.
    :meth:`Operations.run` checks ``needs`` against the gate, audits, and (with
    ``cluster_wide``) publishes it so the other gateways run the same handler: how other
    modules add actions that are gated, audited and shared like these.
    """
    def register(run: _Handler) -> _Handler:
        _SPECS[name or run.__name__.removeprefix("_do_")] = _Spec(needs, run, cluster_wide)
        return run
    return register


def _scope(args: Mapping[str, Any]) -> Scope:
    service, request_type = args.get("service"), args.get("request_type")
    if service is None and request_type is None:
        return GLOBAL
    if not service or not request_type:
        raise ConfigError("rate limit scope", ["service and request_type must be given "
                                               "together"])
    return (str(service), str(request_type))


def _scope_name(scope: Scope) -> str:
    return scope if isinstance(scope, str) else f"{scope[0]}.{scope[1]}"


def _usage(statuses: Sequence[LimitStatus]) -> list[dict[str, Any]]:
    return [{"key": s.key, "window_ms": s.window_ms, "max_requests": s.max_requests,
             "current_requests": s.current_requests, "remaining": s.remaining}
            for s in statuses]


def _function_target(args: Mapping[str, Any]) -> tuple[str, str, str | None]:
    service, request_type = args.get("service"), args.get("request_type")
    if not isinstance(service, str) or not service or not isinstance(request_type, str) \
            or not request_type:
        raise ConfigError("function", ["service and request_type are required"])
    version = args.get("version")
    return service, request_type, str(version) if version else None


class Operations:
    """The admin write actions of one gateway (see the module docs).

    ``who`` names the operator in the audit when an action does not say (the admin
    settings' ``name``, ``"admin"`` by default).
    """

    def __init__(self, gateway: OpsHost, *, who: str = "admin") -> None:
        self.gateway = gateway
        self.who = who
        self.cluster: GatewayCluster | None = None
        self._listener: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        return f"<Operations of {self.gateway!r}>"

    @property
    def name(self) -> str:
        """This gateway in audit records: its cluster name, or ``"local"``."""
        return self.cluster.name if self.cluster is not None else "local"

    # -- functions ------------------------------------------------------------------------

    async def disable_function(self, service: str, request_type: str,
                               version: str | None = None, *,
                               who: str | None = None) -> AdminChange:
        """Disable one version (calls answer ``disabled function``); ``version`` None: the
        unversioned one. FunctionNotFound (naming what exists) when there is none."""
        return await self.run("disable_function", {
            "service": service, "request_type": request_type, "version": version}, who=who)

    async def enable_function(self, service: str, request_type: str,
                              version: str | None = None, *,
                              who: str | None = None) -> AdminChange:
        """Enable a disabled version again."""
        return await self.run("enable_function", {
            "service": service, "request_type": request_type, "version": version}, who=who)

    async def delete_function(self, service: str, request_type: str,
                              version: str | None = None, *,
                              who: str | None = None) -> AdminChange:
        """Remove a version (calls in flight finish). A node's next push of a new
        config version brings it back; a re-push of the same version does not."""
        return await self.run("delete_function", {
            "service": service, "request_type": request_type, "version": version}, who=who)

    # -- rate limits ----------------------------------------------------------------------

    async def set_rate_limit(self, limit: RateLimit | Mapping[str, Any], *,
                             who: str | None = None) -> AdminChange:
        """Add a limit, or replace the one with the same scope, key and window. Global
        without ``service``/``request_type``; standard keys only (a custom key is code,
        which cannot travel to the other gateways: set those in code)."""
        if isinstance(limit, RateLimit):
            if not isinstance(limit.key, str):
                raise ConfigError("rate limit", ["admin actions take the standard keys only "
                                                 "(user_id, device_id, ip_address)"])
            limit = limit.to_dict()
        RateLimit.from_mapping(limit)  # invalid: ConfigError here, before anything is sent
        return await self.run("set_rate_limit", dict(limit), who=who)

    async def clear_rate_limit(self, key: str, *, service: str | None = None,
                               request_type: str | None = None, window_ms: int | None = None,
                               who: str | None = None) -> AdminChange:
        """Remove the limits of a scope on ``key`` (one window, or all of them)."""
        return await self.run("clear_rate_limit", {
            "key": key, "service": service, "request_type": request_type,
            "window_ms": window_ms}, who=who)

    async def reset_rate_limit(self, value: str, *, key: str | None = None,
                               service: str | None = None, request_type: str | None = None,
                               who: str | None = None) -> AdminChange:
        """Forget what ``value`` (a user id, …) has used under a scope's limits (on
        ``key`` only, if given)."""
        return await self.run("reset_rate_limit", {
            "value": value, "key": key, "service": service, "request_type": request_type},
            who=who)

    async def check_rate_limit(self, value: str, *, key: str | None = None,
                               service: str | None = None, request_type: str | None = None,
                               who: str | None = None) -> AdminChange:
        """Count one request of ``value`` against a scope's limits, on this gateway.
        ``after["allowed"]`` says whether it fit (then it was counted), with the usage
        after it, or ``retry_after_ms`` when it did not."""
        return await self.run("check_rate_limit", {
            "value": value, "key": key, "service": service, "request_type": request_type},
            who=who)

    async def clear_rate_limit_counts(self, *, who: str | None = None) -> AdminChange:
        """Forget every key value's usage under every limit (the limits stay)."""
        return await self.run("clear_rate_limit_counts", {}, who=who)

    # -- running an action ----------------------------------------------------------------

    async def run(self, action: str, args: Mapping[str, Any], *,
                  who: str | None = None) -> AdminChange:
        """Run ``action`` (a name from the module docs) with JSON ``args``: here, then
        on the other gateways of the cluster. Raises AdminActionDenied when the gate
        does not allow it, FunctionNotFound / ConfigError when the arguments are wrong."""
        spec = _SPECS.get(action)
        if spec is None:
            raise ConfigError(f"unknown admin action {action!r} (one of: "
                              f"{', '.join(sorted(_SPECS))})")
        who = who or self.who
        change = await self._apply(spec, action, dict(args), who, self.name)
        if spec.cluster_wide and self.cluster is not None:
            shared = await self._publish(action, dict(args), who)
            change = dataclasses.replace(change, shared=shared)
        return change

    async def _apply(self, spec: _Spec, action: str, args: dict[str, Any], who: str,
                     origin: str) -> AdminChange:
        if not self.gateway.admin.allows(spec.needs):
            self.audit(who, action, args, None, None, "denied", origin)
            raise AdminActionDenied(f"Admin action denied: {spec.needs.value}")
        try:
            target, before, after = await spec.run(self, args)
        except Exception as exc:
            self.audit(who, action, args, None, str(exc), "failed", origin)
            raise
        self.audit(who, action, target, before, after, "applied", origin)
        return AdminChange(action, target, before, after, who, self.name, origin)

    def audit(self, who: str, action: str, target: Mapping[str, Any], before: Any,
              after: Any, outcome: str, origin: str | None = None) -> None:
        """Record an admin action: the ``admin.action`` event and one log line (INFO
        when applied, WARNING otherwise). Public so that every admin action of the
        gateway is audited alike."""
        origin = origin or self.name
        self.gateway.executor.telemetry.emit(ADMIN_ACTION, {}, {
            "who": who, "action": action, "target": dict(target), "before": before,
            "after": after, "outcome": outcome, "gateway": self.name, "origin": origin})
        where = self.name if origin == self.name else f"{self.name}, from {origin}"
        audit_log.log(logging.INFO if outcome == "applied" else logging.WARNING,
                      "admin %s %s by %s on %s: %s -> %s (%s)", action, outcome, who,
                      _text(target), _text(before), _text(after), where)

    # -- the actions ----------------------------------------------------------------------

    def _limiter(self, create: bool = False) -> RateLimiter | None:
        executor = self.gateway.executor
        limiter = executor.rate_limiter
        if limiter is None:
            if not create:
                return None
            # A gateway built without limits can still be given some at run time.
            made = RateLimiter(telemetry=executor.telemetry)
            executor.rate_limiter = made
            return made
        if not isinstance(limiter, RateLimiter):
            raise ConfigError(f"the gateway's rate limiter ({type(limiter).__name__}) is "
                              "not a genapi RateLimiter: change its limits in code")
        return limiter

    @admin_action(AdminAction.MANAGE_FUNCTIONS)
    async def _do_disable_function(self, args: dict[str, Any]
                                   ) -> tuple[dict[str, Any], Any, Any]:
        return self._switch(args, disabled=True)

    @admin_action(AdminAction.MANAGE_FUNCTIONS)
    async def _do_enable_function(self, args: dict[str, Any]
                                  ) -> tuple[dict[str, Any], Any, Any]:
        return self._switch(args, disabled=False)

    def _switch(self, args: dict[str, Any], *, disabled: bool
                ) -> tuple[dict[str, Any], Any, Any]:
        service, request_type, version = _function_target(args)
        registry = self.gateway.registry
        before = registry.find(service, request_type, version).disabled
        if disabled:
            registry.disable(service, request_type, version)
        else:
            registry.enable(service, request_type, version)
        target = {"service": service, "request_type": request_type, "version": version}
        return target, {"disabled": before}, {"disabled": disabled}

    @admin_action(AdminAction.MANAGE_FUNCTIONS)
    async def _do_delete_function(self, args: dict[str, Any]
                                  ) -> tuple[dict[str, Any], Any, Any]:
        service, request_type, version = _function_target(args)
        registry = self.gateway.registry
        before = registry.find(service, request_type, version).disabled
        registry.delete(service, request_type, version)
        target = {"service": service, "request_type": request_type, "version": version}
        return target, {"disabled": before}, None

    @admin_action(AdminAction.UPDATE_RATE_LIMIT_CONFIG)
    async def _do_set_rate_limit(self, args: dict[str, Any]
                                 ) -> tuple[dict[str, Any], Any, Any]:
        limit = RateLimit.from_mapping({k: v for k, v in args.items() if v is not None})
        limiter = self._limiter(create=True)
        assert limiter is not None
        old = next((existing.to_dict() for existing in limiter.config.limits
                    if existing.identity == limit.identity), None)
        if limit.scope == GLOBAL:
            limiter.add_global_limit(limit)
        else:
            limiter.add_api_limit(limit)
        target = {"scope": _scope_name(limit.scope), "key": limit.key_name,
                  "window_ms": limit.window_ms}
        return target, old, limit.to_dict()

    @admin_action(AdminAction.UPDATE_RATE_LIMIT_CONFIG)
    async def _do_clear_rate_limit(self, args: dict[str, Any]
                                   ) -> tuple[dict[str, Any], Any, Any]:
        key, window_ms, scope = args.get("key"), args.get("window_ms"), _scope(args)
        if not isinstance(key, str) or not key:
            raise ConfigError("rate limit", ["key is required"])
        if window_ms is not None and (not isinstance(window_ms, int) or window_ms < 1):
            raise ConfigError("rate limit", ["window_ms must be a positive integer"])
        target = {"scope": _scope_name(scope), "key": key, "window_ms": window_ms}
        limiter = self._limiter()
        if limiter is None:
            return target, [], []
        removed = [limit.to_dict() for limit in limiter.config.limits
                   if limit.scope == scope and limit.key_name == key
                   and (window_ms is None or limit.window_ms == window_ms)]
        if scope == GLOBAL:
            limiter.remove_global_limit(key, window_ms=window_ms)
        else:
            limiter.remove_api_limit(scope[0], scope[1], key, window_ms=window_ms)
        return target, removed, []

    def _value_args(self, args: dict[str, Any]) -> tuple[str, str | None, Scope,
                                                          dict[str, Any]]:
        value, key, scope = args.get("value"), args.get("key"), _scope(args)
        if not isinstance(value, str) or not value:
            raise ConfigError("rate limit", ["value is required (a user id, device id, …)"])
        key = str(key) if key else None
        return value, key, scope, {"scope": _scope_name(scope), "key": key, "value": value}

    @admin_action(AdminAction.UPDATE_RATE_LIMIT_CONFIG)
    async def _do_reset_rate_limit(self, args: dict[str, Any]
                                   ) -> tuple[dict[str, Any], Any, Any]:
        value, key, scope, target = self._value_args(args)
        limiter = self._limiter()
        if limiter is None:
            return target, [], []
        before = _usage(await limiter.status(value, scope=scope, key=key))
        await limiter.reset(value, scope=scope, key=key)
        after = _usage(await limiter.status(value, scope=scope, key=key))
        return target, before, after

    @admin_action(AdminAction.UPDATE_RATE_LIMIT_CONFIG, cluster_wide=False)
    async def _do_check_rate_limit(self, args: dict[str, Any]
                                   ) -> tuple[dict[str, Any], Any, Any]:
        value, key, scope, target = self._value_args(args)
        limiter = self._limiter()
        if limiter is None:
            return target, [], {"allowed": True, "limits": []}
        before = _usage(await limiter.status(value, scope=scope, key=key))
        try:
            after = _usage(await limiter.check_value(value, scope=scope, key=key))
        except RateLimited as exc:
            return target, before, {"allowed": False, "retry_after_ms": exc.retry_after_ms,
                                    "limits": before}
        return target, before, {"allowed": True, "limits": after}

    @admin_action(AdminAction.UPDATE_RATE_LIMIT_CONFIG)
    async def _do_clear_rate_limit_counts(self, args: dict[str, Any]
                                          ) -> tuple[dict[str, Any], Any, Any]:
        limiter = self._limiter()
        if limiter is None:
            return {}, {"buckets": 0}, {"buckets": 0}
        count = await limiter.clear()
        return {}, {"buckets": count}, {"buckets": 0}

    # -- the cluster ----------------------------------------------------------------------

    def join(self, cluster: GatewayCluster) -> None:
        """Share actions through ``cluster`` (the gateway calls this when it joins one)."""
        self.cluster = cluster

    @property
    def subject(self) -> str | None:
        """Where actions are published (None outside a cluster)."""
        return None if self.cluster is None else f"{self.cluster.subjects.prefix}.admin.ops"

    async def _publish(self, action: str, args: dict[str, Any], who: str) -> bool:
        assert self.cluster is not None
        assert self.subject is not None
        message = {"action": action, "args": args, "who": who, "origin": self.name,
                   "token": self.cluster.options.push_token}
        try:
            await self.cluster.link.publish(self.subject, msgspec.json.encode(message))
        except TransportError as exc:
            # Applied here all the same: refusing a local change because NATS is away
            # would leave the operator unable to act during an outage.
            logger.warning("admin %s applied on %s only, not shared with the cluster: %s",
                           action, self.name, exc)
            return False
        return True

    async def _on_message(self, msg: Msg) -> None:
        cluster = self.cluster
        if cluster is None:
            return
        try:
            message = msgspec.json.decode(msg.data)
            action, args, who, origin = (message["action"], message["args"], message["who"],
                                         message["origin"])
            spec = _SPECS[action]
            if not isinstance(args, dict) or not isinstance(who, str) \
                    or not isinstance(origin, str):
                raise TypeError("malformed")
        except (msgspec.DecodeError, KeyError, TypeError):
            logger.warning("malformed admin action on %s ignored", msg.subject)
            return
        if origin == self.name:
            return  # applied when it was asked
        expected = cluster.options.push_token
        if expected is not None and not secrets_equal(expected, message.get("token")):
            self.audit(who, action, args, None, "invalid cluster token", "denied", origin)
            return
        try:
            await self._apply(spec, action, args, who, origin)
        except (ApiError, ConfigError) as exc:  # audited in _apply
            logger.debug("admin %s from %s not applied here: %s", action, origin, exc)
        except Exception:
            logger.exception("admin %s from %s failed here", action, origin)

    def routes(self) -> Sequence[BaseRoute]:
        """None: the HTTP form is added to the admin console (``admin_write``)."""
        return ()

    def start(self) -> None:
        """Listen for the other gateways' actions (in a cluster)."""
        if self.cluster is not None and self._listener is None:
            self._listener = asyncio.get_running_loop().create_task(
                self._listen(self.cluster), name="genapi-admin-ops")

    async def _listen(self, cluster: GatewayCluster) -> None:
        assert self.subject is not None
        try:
            await cluster.link.ready()
            await cluster.link.subscribe(self.subject, self._on_message)
        except Exception:
            logger.exception("admin actions of the other gateways will not be applied here")

    def stop(self) -> None:
        """Stop listening (the subscription ends with the cluster's connection)."""
        if self._listener is not None:
            self._listener.cancel()
            self._listener = None

    async def ready(self, timeout: float | None = None) -> None:
        """Wait until this gateway listens for the others' actions (tests)."""
        if self._listener is not None:
            async with asyncio.timeout(timeout):
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.shield(self._listener)


def _text(value: Any) -> str:
    try:
        return msgspec.json.encode(value).decode()
    except (TypeError, msgspec.EncodeError):
        return repr(value)
