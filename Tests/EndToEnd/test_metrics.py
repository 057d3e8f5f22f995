"""`[metrics] listen`: Prometheus text metrics from the running agent, the same figures as
`vouch status`: up, clock, each channel's last value and failure, each rule's open finding, the outbox
and the uplink; any other path is 404; without the section nothing listens."""
import re
import socket
import urllib.error
import urllib.request

from vouch_site import Site, free_port, wait_until


def get(port, path="/metrics"):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
            return r.status, r.headers["Content-Type"], r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers["Content-Type"], e.read().decode()


def test_metrics_from_a_running_agent(tmp_path):
    port = free_port()
    site = Site(tmp_path / "site", stop_after=3, stop_for=1e9, stop_rule="2s", summary_interval="2s", batch_interval="1s", poll_interval="200ms")
    with site:
        site.start()
        assert wait_until(lambda: len(site.batches()) >= 1, timeout=30)
        # Without [metrics], nothing listens.
        with socket.socket() as s:
            assert s.connect_ex(("127.0.0.1", port)) != 0
        assert site.stop_process("agent") == 0
        site.config.write_text(site.config.read_text() + f'\n[metrics]\nlisten = "127.0.0.1:{port}"\n')
        site.start_agent(append=True)

        def metrics():
            try:
                return get(port)[2]
            except OSError:
                return ""

        assert wait_until(lambda: 'vouch_rule_finding{device="demo-press-1",rule="press-stop",kind="stoppage",severity="high"} 1' in metrics(), timeout=40), metrics()
        status, content_type, text = get(port)
        assert status == 200 and content_type.startswith("text/plain; version=0.0.4")
        assert re.search(r'^vouch_up\{device="demo-press-1",version="[^"]+"\} 1$', text, re.M), text
        assert re.search(r'^vouch_channel_value\{device="demo-press-1",channel="meter.power",unit="W"\} 0$', text, re.M), text
        assert re.search(r'^vouch_channel_failing\{device="demo-press-1",channel="meter.energy"\} 0$', text, re.M)
        assert re.search(r'^vouch_outbox_undelivered_batches\{device="demo-press-1"\} \d+$', text, re.M)
        assert "# TYPE vouch_uptime_seconds gauge" in text
        # Every sample line is name{labels} value.
        for line in text.splitlines():
            assert line.startswith("#") or re.match(r'^[a-z_]+\{[^}]*\} -?[0-9.]+$', line), line
        assert get(port, "/")[0] == 404
        assert "Prometheus metrics at http://127.0.0.1:" in site.logs["agent"].read_text()
