"""Sans-I/O protocol cores: bytes or text in, events and frames out, no sockets.

:mod:`genapi.protocol.phoenix` implements Phoenix Channels (V1 and V2 serializers, the
server connection and the client connection).
"""
