"""The friendly way in: a :class:`Service` collects functions with a decorator.

::

    users = Service("user_service")

    @users.function()
    async def list_users() -> list[dict]:
        return USERS

    @users.function(version="1.0.0", check_permission=("arg", "user_id"))
    def get_user(user_id: str) -> dict:
        ...

    registry.add_service(users)

The request type defaults to the function's name; argument specs are inferred from the
type hints unless ``arg_types`` is given. Keyword arguments given to :class:`Service`
are defaults for all its functions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, overload

from ..errors import ConfigError, UnknownOption
from .config import FunConfig
from .refs import FunctionRef, mark

__all__ = ["Service"]

F = TypeVar("F", bound=Callable[..., Any])


class Service:
    """A named group of functions; ``defaults`` apply to each unless overridden."""

    def __init__(self, name: str, **defaults: Any) -> None:
        if not isinstance(name, str) or not name:
            raise ConfigError("a Service needs a non-empty name")
        unknown = set(defaults) - set(FunConfig.__dataclass_fields__)
        if unknown or {"service", "request_type", "function"} & set(defaults):
            bad = sorted(unknown | ({"service", "request_type", "function"} & set(defaults)))
            raise UnknownOption(f"Service defaults cannot include: {', '.join(bad)}")
        self.name = name
        self.defaults = defaults
        self._configs: list[FunConfig] = []

    @property
    def fun_configs(self) -> list[FunConfig]:
        """The configs declared so far, in declaration order."""
        return list(self._configs)

    def add(self, function: Callable[..., Any] | str | None, request_type: str,
            **options: Any) -> FunConfig:
        """Declare a function without the decorator; returns its config."""
        config = FunConfig(
            service=self.name,
            request_type=request_type,
            function=function,
            **{**self.defaults, **options},
        )
        self._configs.append(config)
        if callable(function):  # so that clients can call it by object
            response_type = config.response_type
            mark(function, FunctionRef(self.name, request_type, config.normalized_version,
                                       str(getattr(response_type, "value", response_type))))
        return config

    @overload
    def function(self, fn: F, /) -> F: ...

    @overload
    def function(
        self, request_type: str | None = None, /, **options: Any
    ) -> Callable[[F], F]: ...

    def function(self, arg: Any = None, /, **options: Any) -> Any:
        """Decorator declaring a function; usable bare or with options.

        The first positional argument, if a string, is the request type. The decorated
        function is returned unchanged, so it stays callable and testable directly (it
        only learns where it is served, so ``client.call(fn, ...)`` can address it).
        """
        if callable(arg):
            self.add(arg, arg.__name__)
            return arg

        def decorate(fn: F) -> F:
            self.add(fn, arg or fn.__name__, **options)
            return fn

        return decorate

    def __repr__(self) -> str:
        return f"Service({self.name!r}, functions={len(self._configs)})"
