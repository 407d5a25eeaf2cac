"""The asyncio control client (pypptp.aio.client) where no namespace is needed."""

from __future__ import annotations

import pytest

from pypptp.aio.client import ControlClient, PptpClientError


async def test_client_reports_a_server_that_is_not_there() -> None:
    # loopback of the test's own namespace; port 1 has no listener
    with pytest.raises(PptpClientError, match="cannot connect"):
        await ControlClient.connect("127.0.0.1", 1, timeout=2)
