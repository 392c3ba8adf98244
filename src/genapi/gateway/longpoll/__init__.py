"""Phoenix's long-poll transport: phoenix.js's fallback when a WebSocket cannot be opened.

* :mod:`.endpoint` — the endpoint at ``{socket_path}/longpoll`` and the gateway's sessions;
* :mod:`.session` — one session: a ``genapi.direct`` channel with a bounded buffer;
* :mod:`.tokens` — session tokens naming (and signed by) the owning gateway.
"""

from __future__ import annotations

from .endpoint import LongPoll

__all__ = ["LongPoll"]
