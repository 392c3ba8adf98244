"""`genapi admin …`, run as real processes against a live gateway: every action applied
(what changed printed), refused without its admin action (exit 1, the gate's words)."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.cli import test_admin
from tests.support.ops_app import ALL, EXPECTED_AFTER, TOKEN, build, state
from tests.support.servers import running_app

AUTH = {"Authorization": f"Bearer {TOKEN}"}
PRICE = ["shop", "price", "--version", "1.0.0"]
COMMANDS = {  # action: (needs, arguments, what is printed)
    "disable_function": ("manage_functions", ["disable", *PRICE],
                         'disable_function service=shop request_type=price version=1.0.0: '
                         '{"disabled": false} -> {"disabled": true} (by ops, on local)'),
    "delete_function": ("manage_functions", ["delete", *PRICE],
                        'delete_function service=shop request_type=price version=1.0.0: '
                        '{"disabled": false} -> null (by ops, on local)'),
    "set_rate_limit": ("update_rate_limit_config", ["set-limit", "user_id", "3", "60000"],
                       'set_rate_limit scope=global key=user_id window_ms=60000: '
                       '{"key": "user_id", "max_requests": 5, "window_ms": 60000} -> '
                       '{"key": "user_id", "max_requests": 3, "window_ms": 60000}'),
    "clear_rate_limit": ("update_rate_limit_config", ["clear-limit", "user_id"],
                         'clear_rate_limit scope=global key=user_id: [{"key": "user_id", '
                         '"max_requests": 5, "window_ms": 60000}] -> []'),
    "check_rate_limit": ("update_rate_limit_config", ["check", "u1"],
                         "allowed, counted (user_id/60000 ms: 4 of 5 left)"),
    "clear_rate_limit_counts": ("update_rate_limit_config", ["clear-counts"],
                                'clear_rate_limit_counts : {"buckets": 0} -> '
                                '{"buckets": 0}'),
}


async def genapi(*args: str, token: str = TOKEN) -> tuple[int, str, str]:
    """The CLI in a subprocess, with this module's admin token."""
    return await test_admin.genapi(*args, token=token)


@pytest.mark.parametrize("action", list(COMMANDS))
async def test_each_command_applies_and_is_refused_without_its_action(action: str) -> None:
    """Allowed: exit 0, the change printed, the gateway changed. Refused: exit 1 with
    'Admin action denied: <action>', nothing changed."""
    needs, args, printed = COMMANDS[action]
    async with running_app(build()) as url, \
            httpx.AsyncClient(base_url=url, headers=AUTH) as client:
        code, out, err = await genapi("admin", *args, "--url", url)
        assert code == 0, err
        assert printed in out
        expected = EXPECTED_AFTER[action]
        current = await state(client)
        assert {k: current[k] for k in expected} == expected
    async with running_app(build(actions=ALL - {needs})) as url, \
            httpx.AsyncClient(base_url=url, headers=AUTH) as client:
        before = await state(client)
        code, out, err = await genapi("admin", *args, "--url", url)
        assert code == 1
        assert err.strip() == f"error: Admin action denied: {needs}"
        assert await state(client) == before


async def test_enable_reset_json_and_check_exit_codes() -> None:
    """enable after disable; reset; --json prints the record; check exits 2 when full."""
    async with running_app(build()) as url:
        assert (await genapi("admin", "disable", *PRICE, "--url", url))[0] == 0
        code, out, _ = await genapi("admin", "enable", *PRICE, "--url", url, "--json")
        assert code == 0
        record = json.loads(out)
        assert record["before"] == {"disabled": True} and record["after"] == {"disabled": False}
        assert record["who"] == "ops"
        await genapi("admin", "set-limit", "user_id", "1", "60000", "--url", url)
        assert (await genapi("admin", "check", "u2", "--url", url))[0] == 0
        code, out, _ = await genapi("admin", "check", "u2", "--url", url)
        assert code == 2 and out.startswith("rate limited: retry after ")
        code, out, _ = await genapi("admin", "reset", "u2", "--key", "user_id", "--url", url)
        assert code == 0 and '"current_requests": 1' in out and "-> [" in out
        assert (await genapi("admin", "check", "u2", "--url", url))[0] == 0


async def test_plain_errors() -> None:
    """A wrong token, an unknown version, a bad limit: exit 1 with the reason."""
    async with running_app(build()) as url:
        code, _, err = await genapi("admin", "disable", *PRICE, "--url", url, token="wrong")
        assert code == 1 and "refused the admin token" in err
        code, _, err = await genapi("admin", "disable", "shop", "price", "--version", "7",
                                    "--url", url)
        assert code == 1 and "known versions: 1.0.0, 2.0.0" in err
        code, _, err = await genapi("admin", "set-limit", "user_id", "0", "1000",
                                    "--url", url)
        assert code == 1 and "max_requests" in err
