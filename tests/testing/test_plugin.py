"""The pytest plugin's fixtures, in a pytest run of their own."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

CONFTEST = """
import pytest
from genapi.demo.app import build_demo_gateway

pytest_plugins = ["genapi.testing.plugin"]


@pytest.fixture
def genapi_gateway():
    return build_demo_gateway()
"""

TESTS = """
import pytest

from genapi import PermissionDenied


def test_sync(genapi_test_client):
    assert genapi_test_client.call("user_service", "list_users")


async def test_async(genapi_api, genapi_client):
    assert await genapi_client.call("user_service", "get_user", {"user_id": "1"})
    admin = await genapi_api.connect(user_id="1", roles=["admin"])
    assert await admin.call("user_service", "delete_user", {"user_id": "2"})
    viewer = await genapi_api.connect(user_id="3")
    with pytest.raises(PermissionDenied):
        await viewer.call("user_service", "delete_user", {"user_id": "2"})
"""


def test_fixtures_work_for_sync_and_async_tests(pytester: pytest.Pytester) -> None:
    """With ``genapi_gateway`` defined, the fixtures give running clients."""
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_api=TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-o",
                                           "asyncio_mode=auto")
    result.assert_outcomes(passed=2)


def test_a_missing_gateway_fixture_says_what_to_do(pytester: pytest.Pytester) -> None:
    """Without ``genapi_gateway`` the test fails naming the fixture to define."""
    pytester.makeconftest('pytest_plugins = ["genapi.testing.plugin"]\n')
    pytester.makepyfile(test_api="def test_it(genapi_test_client):\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*define a fixture named genapi_gateway*"])
