"""Execution: one request in, exactly one terminal response out.

* :mod:`.executor` — :class:`Executor`, the entry points and control (cancel, stop, owners);
* :mod:`.pipeline` — the stages before dispatch (permission, rate limit, validation, before
  hook), composed once per route;
* :mod:`.jobs` — async, fire-and-forget and stream work: bookkeeping and the job bodies;
* :mod:`.observers` — what runs as each request ends (histograms, observers, events);
* :mod:`.invoke` — calling a local function (threads for plain functions, deadlines);
* :mod:`.calls` — calling wherever the function lives: fallback, retries, breakers;
* :mod:`.selection`, :mod:`.retry`, :mod:`.breaker`, :mod:`.pool` — pure policies and the
  bounded worker pools; :mod:`.deadlines`, :mod:`.hooks`, :mod:`.streams`,
  :mod:`.context` — the pieces a call uses.

Remote nodes are reached only through :class:`genapi.transport.base.Transport`.
"""
