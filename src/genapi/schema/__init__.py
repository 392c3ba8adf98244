"""Schema export: JSON Schema, AsyncAPI 3.0 and TypeScript from a gateway's functions.

::

    from genapi.schema import function_catalog, json_schemas, asyncapi_document
    catalog = function_catalog(gateway)          # or GET /admin/schema on a running one
    json_schemas(catalog)["$defs"]["user_service.get_user"]
    asyncapi_document(catalog, server_url="http://127.0.0.1:4000")
    typescript_module(catalog)                   # `genapi schema --typescript api.ts`

Everything is generated from the *catalog* (:func:`function_catalog`), plain data that a
gateway also serves, so the exports are the same from an app object and from a server. The
types come from the code: typed arguments, declared results and stream chunks, and
docstrings (see :mod:`.catalog`).
"""

from __future__ import annotations

from .asyncapi import asyncapi_document
from .catalog import CATALOG_FORMAT, describe_arg, function_catalog, function_key
from .json_schema import SCHEMA_DIALECT, args_schema, json_schemas
from .typescript import typescript_module

__all__ = [
    "CATALOG_FORMAT",
    "SCHEMA_DIALECT",
    "args_schema",
    "asyncapi_document",
    "describe_arg",
    "function_catalog",
    "function_key",
    "json_schemas",
    "typescript_module",
]
