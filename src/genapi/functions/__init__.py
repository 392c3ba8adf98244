"""The function model: what a callable function is, and where it is found.

* :mod:`.config` — :class:`FunConfig` (one function version, the original's fields),
  :class:`ServiceConfig`, :class:`PushConfig`, :class:`ResponseType`;
* :mod:`.argspec` — argument specs (:class:`Arg`, :class:`ArgType`) and global
  :class:`Limits`; :mod:`.inference` — specs from type hints;
* :mod:`.validation` — validators compiled once per config;
* :mod:`.callables` — resolving ``"module:qualname"`` safely (deny list, allow list);
* :mod:`.permissions` — permission rules, pure decisions;
* :mod:`.routes` — a config compiled into a :class:`Route` the executor runs;
* :mod:`.registry` — the :class:`Registry` of routes by service, request type and version;
* :mod:`.service` — :class:`Service`, the decorator API.

Nothing here does I/O or imports the execution, transport or gateway layers.
"""
