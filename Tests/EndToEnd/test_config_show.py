"""`vouch config show [--effective]`: the config as the agent uses it, through the real binary."""
import hashlib
from pathlib import Path
import re

from vouch_site import Site  # scripts/sim/vouch_site.py


def site_with_config(tmp_path):
    site = Site(tmp_path / "site")
    site.workdir.mkdir(parents=True)
    site.prepare()
    return site


def test_effective_config_fills_in_defaults_and_checks_as_the_same_config(tmp_path):
    site = site_with_config(tmp_path)
    shown = site.vouch("config", "show", "--effective", str(site.config))
    assert shown.returncode == 0, shown.stderr
    text = shown.stdout
    # The site's config leaves these out; the effective config shows what the agent uses.
    assert re.search(r'^key_file = ".*/agent/device.key"$', text, re.M), "written in the file: not marked"
    assert re.search(r'^max_batch_records = 500  # default$', text, re.M), text
    assert re.search(r'^days = \["mon", "tue", "wed", "thu", "fri", "sat", "sun"\]  # default$', text, re.M), text
    assert re.search(r'^\[release\]\nmax_duration = "12h"  # default$', text, re.M), text
    assert "# [metrics] is not set: no metrics are served." in text
    # The config hash it names is the one evidence records: SHA-256 of the file's bytes.
    assert hashlib.sha256(site.config.read_bytes()).hexdigest() in text.splitlines()[1]

    # Saved, it is a config the agent accepts, and shown again it has nothing left to fill in.
    saved = tmp_path / "effective.toml"
    saved.write_text(text)
    check = site.vouch("config", "check", str(saved), check=False)
    assert check.returncode == 0, check.stderr
    again = site.vouch("config", "show", "--effective", str(saved)).stdout
    assert [l for l in again.splitlines() if l.endswith("  # default")] == []


def test_show_without_effective_prints_the_checked_file_itself(tmp_path):
    site = site_with_config(tmp_path)
    shown = site.vouch("config", "show", str(site.config))
    assert shown.stdout == site.config.read_text()


def test_show_of_a_broken_config_prints_every_error_and_exits_78(tmp_path):
    site = site_with_config(tmp_path)
    broken = tmp_path / "broken.toml"
    broken.write_text(site.config.read_text().replace("unit_id = 1", 'unit_id = "1"').replace('start = "00:00"', 'start = "0:00"'))
    for args in (["config", "show", "--effective", str(broken)], ["config", "show", str(broken)]):
        result = site.vouch(*args, check=False)
        assert result.returncode == 78
        assert result.stdout == "", "nothing of a broken config is shown"
        errors = [l for l in result.stderr.splitlines() if ": error: " in l]
        assert len(errors) == 2, result.stderr
        assert re.match(rf'{re.escape(str(broken))}:\d+:9: error: "start" in \[shift\] is "0:00"', errors[0]), errors
        assert '"unit_id" in [modbus.device] must be an integer from 0 to 255, found a string' in errors[1], errors
        assert result.stderr.rstrip().endswith(f"{broken}: 2 error(s)")


def test_config_check_json_has_one_shape_for_a_good_and_a_broken_file(tmp_path):
    import json
    from json_shape import key_paths

    site = site_with_config(tmp_path)
    good = site.vouch("config", "check", "--json", str(site.config))
    assert good.returncode == 0 and good.stderr == ""
    ok = json.loads(good.stdout)
    assert ok["ok"] is True and ok["errors"] == [] and ok["device"] == site.device_id
    assert "meter.power" in ok["channels"] and ok["rules"] == 1
    assert ok["config_sha256"] == hashlib.sha256(site.config.read_bytes()).hexdigest()

    broken = tmp_path / "broken.toml"
    broken.write_text(site.config.read_text().replace("unit_id = 1", 'unit_id = "1"').replace('start = "00:00"', 'start = "0:00"'))
    bad = site.vouch("config", "check", "--json", str(broken), check=False)
    assert bad.returncode == 78 and bad.stderr == "", "with --json, the errors are in the document only"
    failed = json.loads(bad.stdout)
    assert failed["ok"] is False and failed["device"] is None
    assert [(e["file"], e["column"]) for e in failed["errors"]] == [(str(broken), 9), (str(broken), 11)]
    assert failed["errors"][1]["message"] == '"unit_id" in [modbus.device] must be an integer from 0 to 255, found a string'
    # The same keys whatever the outcome (an empty error list has no items), held to a snapshot.
    golden = (Path(__file__).parent / "golden" / "json" / "vouch_config_check.keys").read_text().split()
    assert key_paths(failed) == golden
    assert key_paths(ok) == [k for k in golden if not k.startswith("errors[]")]
