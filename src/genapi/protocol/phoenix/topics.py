"""Topic patterns, as Phoenix's ``channel "room:*"`` declarations."""

from __future__ import annotations

from collections.abc import Iterable

from ...errors import ConfigError

__all__ = ["TopicRouter"]


class TopicRouter:
    """Matches topics against patterns: an exact topic, or a prefix followed by ``*``
    (which matches one or more characters: ``api:*`` matches ``api:x``, not ``api:``).

    Patterns are tried in the order given, like Phoenix's channel routes. Build one router
    and share it between connections.

    >>> TopicRouter(["api:lobby", "room:*"]).match("room:42")
    'room:*'
    """

    __slots__ = ("_exact", "_patterns")

    def __init__(self, patterns: Iterable[str]) -> None:
        self._patterns = tuple(patterns)
        problems = [
            f"{pattern!r}: '*' is only allowed at the end"
            for pattern in self._patterns
            if "*" in pattern[:-1]
        ]
        problems += [repr(p) + ": empty pattern" for p in self._patterns if not p]
        if problems:
            raise ConfigError("topic patterns", problems)
        # With no wildcard at all, a dict lookup gives the same answer as the ordered scan
        self._exact: dict[str, str] | None = (
            None if any(p.endswith("*") for p in self._patterns) else {p: p for p in self._patterns}
        )

    @property
    def patterns(self) -> tuple[str, ...]:
        """The patterns, in matching order."""
        return self._patterns

    def match(self, topic: str) -> str | None:
        """The first pattern that matches ``topic``, or ``None``."""
        if self._exact is not None:
            return self._exact.get(topic)
        for pattern in self._patterns:
            if pattern[-1] == "*":
                # the wildcard stands for at least one character: "api:" is not a topic
                if len(topic) >= len(pattern) and topic.startswith(pattern[:-1]):
                    return pattern
            elif topic == pattern:
                return pattern
        return None

    def __repr__(self) -> str:
        return f"TopicRouter({list(self._patterns)!r})"
