"""The daemon's proxy ARP off the event loop (issue 15 section 1): the order of pppd's ipcp_up and
ipcp_down is kept, and an entry is withdrawn even when its session ended while it was being made.

The netlink work is replaced by coroutines the test releases by hand, so every interleaving is exact.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import types
from typing import Any

import pytest

from pypptp.daemon import manager as daemon_module
from pypptp.daemon.manager import Daemon
from pypptp.daemon.scripts import ScriptInfo
from pypptp.ppp.link import NetworkUp

PEER = ipaddress.IPv4Address("192.168.0.234")
UP = NetworkUp(ipaddress.IPv4Address("192.168.0.1"), PEER, (), (), 1396)
INFO = ScriptInfo(ifname="ppp0", tty="pptp/198.18.0.2/1", speed=115200, local="192.168.0.1", remote=str(PEER))


class Scripts:
    def __init__(self, events: list[str]) -> None:
        self.events = events

    def up(self, info: object) -> None:
        self.events.append("ip-up")

    def down(self, info: object) -> None:
        self.events.append("ip-down")

    async def wait(self) -> None:
        return None


def fixture(monkeypatch: pytest.MonkeyPatch) -> tuple[Daemon, Any, list[str], asyncio.Event, asyncio.Event]:
    events: list[str] = []
    added, removed = asyncio.Event(), asyncio.Event()

    async def add(peer: ipaddress.IPv4Address) -> str | None:
        events.append("adding")
        await added.wait()
        events.append(f"added {peer}")
        return "lan0"

    async def remove(peer: ipaddress.IPv4Address, interface: str) -> None:
        events.append("removing")
        await removed.wait()
        events.append(f"removed {peer} on {interface}")

    monkeypatch.setattr(daemon_module, "add_proxy_arp", add)
    monkeypatch.setattr(daemon_module, "remove_proxy_arp", remove)
    daemon = Daemon.__new__(Daemon)
    daemon._netlink, daemon._runners = set(), set()
    session = types.SimpleNamespace(
        ppp=types.SimpleNamespace(closed=False),
        scripts=Scripts(events),
        log=logging.LoggerAdapter(logging.getLogger("test.proxyarp"), {}),
        proxy_arp=None,
        proxy_arp_on=None,
        proxy_arp_for=None,
    )
    return daemon, session, events, added, removed


async def test_the_entry_comes_before_ip_up_and_goes_before_ip_down(monkeypatch: pytest.MonkeyPatch) -> None:
    daemon, session, events, added, removed = fixture(monkeypatch)
    session.proxy_arp = daemon._off_loop(daemon._proxy_arp_then_ip_up(session, UP, INFO))
    await asyncio.sleep(0)
    assert events == ["adding"]  # the event loop goes on meanwhile
    added.set()
    await session.proxy_arp
    assert events[-2:] == [f"added {PEER}", "ip-up"] and session.proxy_arp_on == "lan0"
    down = daemon._off_loop(daemon._proxy_arp_off_then_ip_down(session, ["Connection terminated."], INFO))
    for _ in range(5):  # the down path takes a few steps (shielded waits) to start the removal
        await asyncio.sleep(0)
    assert events[-1] == "removing"
    removed.set()
    await down
    assert events[-2:] == [f"removed {PEER} on lan0", "ip-down"]
    assert not daemon._netlink


async def test_a_session_that_ends_while_its_entry_is_made_withdraws_it(monkeypatch: pytest.MonkeyPatch) -> None:
    daemon, session, events, added, removed = fixture(monkeypatch)
    session.proxy_arp = daemon._off_loop(daemon._proxy_arp_then_ip_up(session, UP, INFO))
    await asyncio.sleep(0)
    session.ppp.closed = True  # the session ends before the entry exists
    down = daemon._off_loop(daemon._proxy_arp_off_then_ip_down(session, [], INFO))
    await asyncio.sleep(0)
    assert events == ["adding"]  # ip-down waits for the entry
    added.set()
    removed.set()
    await down
    assert events == ["adding", f"added {PEER}", "removing", f"removed {PEER} on lan0", "ip-down"]  # no ip-up
    assert session.proxy_arp_on is None


async def test_shutdown_waits_for_the_netlink_work_and_its_ip_down(monkeypatch: pytest.MonkeyPatch) -> None:
    daemon, session, events, added, removed = fixture(monkeypatch)
    session.proxy_arp = daemon._off_loop(daemon._proxy_arp_then_ip_up(session, UP, INFO))
    session.ppp.closed = True
    daemon._off_loop(daemon._proxy_arp_off_then_ip_down(session, [], INFO))
    loop = asyncio.get_running_loop()
    loop.call_later(0.05, added.set)
    loop.call_later(0.1, removed.set)
    await daemon.wait_scripts(timeout=5)
    assert events[-1] == "ip-down"
