"""The NATS transport: the connection, subjects, wire encoding and remote calls.

* :mod:`.link` — one NATS connection with reconnects (nats-py imported only here);
* :mod:`.subjects` — subject names under a prefix;
* :mod:`.wire` — encoding requests, replies and stream frames;
* :mod:`.transport` — :class:`NatsTransport`, the gateway side of remote calls.
"""
