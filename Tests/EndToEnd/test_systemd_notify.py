"""`vouch run` under systemd's Type=notify, with a datagram socket standing in for systemd: READY=1 once
the CLI can reach the agent (its control socket answers), WATCHDOG=1 at half of WatchdogSec while it
runs, STATUS= for `systemctl status`, and STOPPING=1 first thing on SIGTERM, before a clean exit."""
import os
import signal
import socket
import threading
import time
import uuid

from vouch_site import Site, wait_until


class FakeSystemd:
    def __init__(self):
        self.name = f"@vouch-e2e-notify-{uuid.uuid4().hex[:8]}"
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind("\0" + self.name[1:])
        self.sock.settimeout(0.2)
        self.messages = []  # (monotonic time, {key: value})
        self.running = True
        self.thread = threading.Thread(target=self._listen, daemon=True)
        self.thread.start()

    def _listen(self):
        while self.running:
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                continue
            fields = dict(line.split("=", 1) for line in data.decode().split("\n") if "=" in line)
            self.messages.append((time.monotonic(), fields))

    def times(self, key):
        return [t for t, m in self.messages if key in m]

    def close(self):
        self.running = False
        self.thread.join(timeout=2)
        self.sock.close()


def test_the_agent_tells_systemd_it_is_ready_alive_and_stopping(tmp_path, monkeypatch):
    systemd = FakeSystemd()
    site = Site(tmp_path / "site", stop_after=1e9, stop_for=0, summary_interval="2s", batch_interval="1s")
    try:
        with site:
            site.start()
            site.stop_process("agent")  # Site.start starts one without systemd; this one runs under it.
            monkeypatch.setenv("NOTIFY_SOCKET", systemd.name)
            monkeypatch.setenv("WATCHDOG_USEC", "1000000")
            started = time.monotonic()
            site.start_agent(append=True)
            monkeypatch.delenv("NOTIFY_SOCKET")
            monkeypatch.delenv("WATCHDOG_USEC")
            assert wait_until(lambda: systemd.times("READY"), timeout=30), site.logs["agent"].read_text()[-2000:]
            ready = systemd.times("READY")
            assert len(ready) == 1
            # Ready means reachable: the control socket is there when READY arrives.
            assert (tmp_path / "site" / "agent" / "vouch.sock").exists()
            first = next(m for _, m in systemd.messages if "READY" in m)
            assert first["READY"] == "1" and "demo-press-1 recording" in first["STATUS"], first
            # WatchdogSec=1s: a ping every half second while the agent runs.
            time.sleep(3)
            pings = [t for t in systemd.times("WATCHDOG") if t > ready[0]]
            assert 4 <= len(pings) <= 8, pings
            assert max(b - a for a, b in zip(pings, pings[1:])) < 1.0, pings
            assert "not yet at the bank" in systemd.messages[-1][1]["STATUS"]
            agent = site.processes["agent"]
            os.killpg(agent.pid, signal.SIGTERM)
            code = agent.wait(timeout=30)
            assert code == 0
            stopping = systemd.times("STOPPING")
            assert len(stopping) == 1, systemd.messages[-3:]
            assert not [t for t in systemd.times("WATCHDOG") if t > stopping[0]], "a ping after STOPPING=1"
            assert ready[0] - started < 30
    finally:
        systemd.close()


def test_without_notify_socket_the_agent_tells_nobody(tmp_path):
    # The default Site runs without NOTIFY_SOCKET: the log says nothing about systemd.
    site = Site(tmp_path / "site", stop_after=1e9, stop_for=0, summary_interval="2s", batch_interval="1s")
    with site:
        site.start()
        assert wait_until(lambda: len(site.batches()) >= 1, timeout=30)
    assert "systemd" not in site.logs["agent"].read_text()
