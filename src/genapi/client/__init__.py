"""An asyncio Python client for genapi gateways (any Phoenix-protocol gateway, really).

::

    async with genapi.Client("ws://localhost:4000/socket", params={"token": token}) as c:
        user = await c.call(get_user, user_id="1")                   # typed by get_user
        user = await c.call("user_service", "get_user", {"user_id": "1"})
        async for tick in c.stream("event_service", "ticker"):
            ...

``call`` returns the result or raises the typed error behind the Response (for example
:class:`~genapi.PermissionDenied`), carrying its message, ``can_retry`` and the reply's
``details``; on a stream function it raises :class:`~genapi.UsageError` pointing to
``stream``. ``responses`` yields every Response of a call of any kind. The client sends
heartbeats, reconnects with jittered exponential backoff and rejoins its topic; calls in
flight when the connection drops fail with :class:`ConnectionLost` (``can_retry``), since
the client cannot know whether they ran.

Responses that answer none of this client's calls — relay messages and presence notices,
pushed by the server — go to ``on_push`` and to :meth:`Client.pushes`::

    async for response in client.pushes():
        print(response.result["from_user_id"], response.result["message"])
"""

from __future__ import annotations

from ..errors import ConnectionLost, NotConnected
from .core import Client
from .wire import Connector, WireSocket, websockets_connector

__all__ = ["Client", "ConnectionLost", "Connector", "NotConnected", "WireSocket",
           "websockets_connector"]
