"""Colour and progress only for a person at a terminal: the real binary on a pseudo-terminal, and on pipes."""
import os
import re
import pty
import socket
import subprocess
import threading

from vouch_site import Site  # scripts/sim/vouch_site.py

ESC = "\x1b["


def run_on_pty(argv, stream, env=None, timeout=60):
    """Runs argv with `stream` ("stdout" or "stderr") on a pseudo-terminal and the other on a pipe.
    Returns (terminal text, piped text, exit status)."""
    master, slave = pty.openpty()
    kwargs = {"stdout": slave, "stderr": subprocess.PIPE} if stream == "stdout" else {"stdout": subprocess.PIPE, "stderr": slave}
    proc = subprocess.Popen(argv, env={**os.environ, "TERM": "xterm", **(env or {})}, **kwargs)
    os.close(slave)
    chunks = []

    def drain():
        while True:
            try:
                data = os.read(master, 4096)
            except OSError:  # EIO: the child closed its end
                break
            if not data:
                break
            chunks.append(data)

    reader = threading.Thread(target=drain)
    reader.start()
    piped = (proc.stdout if stream == "stderr" else proc.stderr).read().decode()
    proc.wait(timeout=timeout)
    reader.join(timeout=5)
    os.close(master)
    return b"".join(chunks).decode(), piped, proc.returncode


def prepared_site(tmp_path):
    site = Site(tmp_path / "site")
    site.prepare()
    return site


def test_colour_on_a_terminal_only_and_never_with_no_color_or_dumb_terminals(tmp_path):
    site = prepared_site(tmp_path)
    argv = [str(site.bin_dir / "vouch"), "config", "check", str(site.config)]
    shown, _, status = run_on_pty(argv, "stdout")
    assert status == 0
    assert f"{ESC}32mok{ESC}0m" in shown, repr(shown)
    for env in ({"NO_COLOR": "1"}, {"TERM": "dumb"}):
        plain, _, _ = run_on_pty(argv, "stdout", env=env)
        assert ESC not in plain and ": ok — device" in plain, (env, repr(plain))
    piped = subprocess.run(argv, capture_output=True, text=True)
    assert ESC not in piped.stdout and ": ok — device" in piped.stdout

    broken = tmp_path / "broken.toml"
    broken.write_text(site.config.read_text().replace("unit_id = 1", "unit_id = 300"))
    argv = [str(site.bin_dir / "vouch"), "config", "check", str(broken)]
    _, _, status = run_on_pty(argv, "stdout")
    assert status == 78
    errors, _, _ = run_on_pty(argv, "stderr")
    assert f'{ESC}1;31merror:{ESC}0m "unit_id" in [modbus.device] is 300' in errors, repr(errors)
    piped = subprocess.run(argv, capture_output=True, text=True)
    assert ESC not in piped.stderr and ': error: "unit_id" in [modbus.device] is 300' in piped.stderr


def test_a_slow_doctor_shows_progress_on_a_terminal_and_erases_it(tmp_path):
    # A Modbus device that accepts the connection and never answers: each poll waits for its timeout.
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    try:
        site = prepared_site(tmp_path)
        port = silent.getsockname()[1]
        text = site.config.read_text().replace(f"127.0.0.1:{site.meter_port}", f"127.0.0.1:{port}").replace('timeout = "500ms"', 'timeout = "2s"')
        site.config.write_text(text)
        argv = [str(site.bin_dir / "vouch"), "doctor", "--config", str(site.config)]
        progress, report, status = run_on_pty(argv, "stderr")
        assert status == 1, report  # the meter fails its check
        assert "vouch doctor: checking the key, disk, clock, devices and the bank… 1 s" in progress, repr(progress)
        assert progress.endswith("\r" + ESC + "K"), "the line is erased once the checks are done"
        assert ESC not in report and "FAIL" in report, "the report on a pipe has no escape codes"

        quick, _, _ = run_on_pty([str(site.bin_dir / "vouch"), "config", "check", str(site.config)], "stderr")
        assert quick == "", "nothing is drawn for a step shorter than a second"
        piped = subprocess.run(argv, capture_output=True, text=True)
        assert ESC not in piped.stderr and "checking" not in piped.stderr, "no progress on a pipe"
    finally:
        silent.close()


def test_a_long_replay_shows_how_far_it_has_got_when_its_output_goes_to_files(tmp_path):
    site = prepared_site(tmp_path)
    config = tmp_path / "replay.toml"
    config.write_text(site.config.read_text() + '\n[[detect]]\nid = "run"\nkind = "run_state"\nchannel = "meter.power"\n'
                      'running_at_or_above = 2000\nstopped_below = 500\n')
    history = tmp_path / "week.csv"
    with history.open("w") as f:
        f.write("timestamp,meter.power\n")
        for i in range(200_000):  # 2.3 days at 1 Hz, the line stopping every other hour: about 3 s in a debug build
            f.write(f"{1764590400 + i},{12000 if (i // 3600) % 2 == 0 else 0}\n")
    rows, events = tmp_path / "rows.csv", tmp_path / "events.jsonl"
    argv = [str(site.bin_dir / "vouch"), "detect", "replay", "--config", str(config), "--csv", str(history),
            "--out", str(rows), "--events", str(events)]
    progress, _, status = run_on_pty(argv, "stderr")
    assert status == 0, progress
    assert re.search(r"vouch detect replay: .*week\.csv, row \d+0000 of 200000… \d+ s", progress), repr(progress[-300:])
    assert progress.endswith("\r" + ESC + "K" + "vouch detect replay: 200000 rows, 1 channel(s), 55 finding(s)\r\n"), repr(progress[-200:])
    assert len(rows.read_text().splitlines()) == 200_001 and len(events.read_text().splitlines()) == 55
