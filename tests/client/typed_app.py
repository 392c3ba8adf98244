"""A small typed API for the typed-client tests (and the mypy check of its callers)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import AsyncIterator

import msgspec
import pydantic

from genapi import Gateway, Service


class User(msgspec.Struct):
    id: int
    name: str
    joined: dt.datetime


class NewUser(pydantic.BaseModel):
    name: str
    email: str


@dataclasses.dataclass
class Tick:
    n: int


users = Service("users")
JOINED = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


@users.function()
async def get_user(user_id: int) -> User:
    """One user by id."""
    return User(user_id, f"user{user_id}", JOINED)


@users.function(version="2.0.0")
def create_user(user: NewUser, admin: bool = False) -> NewUser:
    """Create a user (a plain function: runs in a thread)."""
    return NewUser(name=user.name.title(), email=user.email)


@users.function(response_type="stream")
async def ticks(count: int) -> AsyncIterator[Tick]:
    """``count`` ticks."""
    for n in range(count):
        yield Tick(n)


gateway = Gateway([users])
