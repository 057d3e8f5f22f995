"""The detection scenario suite (Tests/Scenarios, issue 7) tested: the generator is deterministic, its configs
are valid, its labels say what its CSVs hold, the runner's matcher scores events as documented, and the
whole suite passes through `vouch detect replay` (skipped, with the reason, while the replay cannot run
a configured detector kind yet: it turns on by itself once the detectors are merged).
"""
import csv
import json
import os
import statistics
import subprocess
import sys
import textwrap
from datetime import datetime, timezone
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ROOT / "Tests" / "Scenarios"
sys.path.insert(0, str(SCENARIOS))
import generate  # noqa: E402
import run  # noqa: E402

VOUCH = Path(os.environ.get("VOUCH_BIN_DIR") or ROOT / ".build" / "debug") / "vouch"
NAMES = list(generate.SCENARIOS)


@pytest.fixture(scope="session")
def suite(tmp_path_factory):
    out = tmp_path_factory.mktemp("scenarios")
    generate.write(out)
    return out


def labels_of(suite, name):
    return json.loads((suite / name / "labels.json").read_text())


def when(text):
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


class History:
    """A scenario's CSV: rows by epoch second."""

    def __init__(self, path):
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            self.header = reader.fieldnames
            self.rows = list(reader)
        self.times = [when(r["timestamp"]) for r in self.rows]
        self.index = {t: i for i, t in enumerate(self.times)}

    def at(self, t):
        return self.rows[self.index[t]]

    def values(self, column, start, end):
        """Cells of `column` for start <= t < end (None for an empty cell)."""
        return [None if r[column] == "" else float(r[column]) for t, r in zip(self.times, self.rows) if start <= t < end]

    def last_valid_before(self, column, t):
        i = self.index[t] - 1
        while self.rows[i][column] == "":
            i -= 1
        return float(self.rows[i][column])


def local(t):
    return datetime.fromtimestamp(t, generate.ZONE)


# ------------------------------------------------------------------------------------- generator


def test_generation_is_byte_identical_every_run(tmp_path):
    generate.write(tmp_path / "a")
    generate.write(tmp_path / "b")
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    assert len(files) == 3 * len(NAMES)
    assert files == sorted(p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*") if p.is_file())
    for f in files:
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes(), f


def test_a_separate_process_generates_the_same_bytes(suite, tmp_path):
    # Another interpreter (another hash seed): nothing may depend on set or dict hashing.
    env = dict(os.environ, PYTHONHASHSEED="12345")
    subprocess.run([sys.executable, str(SCENARIOS / "generate.py"), "--out", str(tmp_path), "--only", "dst-autumn-week", "--only", "theft-at-night"],
                   check=True, capture_output=True, env=env)
    for name in ("dst-autumn-week", "theft-at-night"):
        for f in ("config.toml", "history.csv", "labels.json"):
            assert (tmp_path / name / f).read_bytes() == (suite / name / f).read_bytes(), f"{name}/{f}"


@pytest.mark.parametrize("name", NAMES)
def test_every_config_passes_config_check(suite, name):
    p = subprocess.run([str(VOUCH), "config", "check", str(suite / name / "config.toml")], capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr


@pytest.mark.parametrize("name", NAMES)
def test_scenarios_are_multi_day_every_60_s_with_sensor_days_counted(suite, name):
    lab = labels_of(suite, name)
    h = History(suite / name / "history.csv")
    channels = [c for c in h.header if c not in ("timestamp", "release")]
    assert channels == lab["channels"]
    assert lab["days"] >= 3 and (lab["class"] == "alarm" or lab["days"] >= 3)
    if name.startswith("normal-") or name.startswith("dst-"):
        assert lab["days"] >= 7
    assert lab["sensor_days"] == pytest.approx(len(channels) * (when(lab["end"]) - when(lab["start"])) / 86400, abs=1e-3)
    steps = {b - a for a, b in zip(h.times, h.times[1:])}
    assert steps == {60} or (lab["gaps"] and steps == {60, 60 + 60 * 40}), steps
    assert len(h.rows) == lab["rows"]
    assert all(c in lab["noise"] for c in channels)
    for r in lab["rules"].values():
        assert r["channel"] in channels
    # Every scenario says what must happen, or that nothing must.
    assert lab["class"] == ("alarm" if lab["expected_alarms"] else "normal")


# --------------------------------------------------------------------------- labels against CSV


def in_shift(t, lab, config):
    lt = local(t)
    holidays = [line.split("=", 1)[1] for line in config.splitlines() if line.startswith("holidays")]
    if holidays and lt.date().isoformat() in holidays[0]:
        return False
    return lt.weekday() < 5 and 6 <= lt.hour < 22


def in_maintenance(t, config):
    lines = config.splitlines()
    for i, line in enumerate(lines):
        if line == "[[calendar.maintenance]]":
            start = generate.utc(lines[i + 1].split('"')[1])
            end = generate.utc(lines[i + 2].split('"')[1])
            if start <= t < end:
                return True
    return False


def all_labels():
    out = []
    for name in NAMES:
        s = generate.SCENARIOS[name]()
        lab = s.labels()
        out += [pytest.param(name, "alarm", k, id=f"{name}-alarm-{k}") for k in range(len(lab["expected_alarms"]))]
        out += [pytest.param(name, "record", k, id=f"{name}-record-{k}") for k in range(len(lab["expected_records"]))]
    return out


@pytest.mark.parametrize("name,what,k", all_labels())
def test_each_label_is_in_the_csv_at_its_time(suite, name, what, k):
    lab = labels_of(suite, name)
    label = (lab["expected_alarms"] if what == "alarm" else lab["expected_records"])[k]
    rule = lab["rules"][label["rule"]]
    config = (suite / name / "config.toml").read_text()
    assert f'id = "{rule["id"]}"' in config and rule["kind"] == label["kind"] and rule["channel"] == label["channel"]
    assert label["severity"] == ("record" if what == "record" else label["severity"])
    h = History(suite / name / "history.csv")
    t = when(label["condition_start"])
    assert t in h.index, "the condition starts on a sample"
    row, column = h.at(t), label["channel"]
    before = t - 60
    minimum = generate.seconds(rule.get(generate.MIN_DURATION_KEY[rule["kind"]], generate.DEFAULT_MIN.get(rule["kind"], "0s")))
    assert label["allowed_delay_s"] == minimum + 120

    if rule["kind"] == "weight_drop":
        settled = statistics.median(v for v in h.values(column, t - 20 * 60, t - 5 * 60) if v is not None)
        reference = statistics.median(v for v in h.values(column, h.times[0], h.times[0] + 3600) if v is not None)
        tolerance = rule["tolerance_percent"] / 100 * settled
        v, prev = float(row[column]), h.last_valid_before(column, t)

        def holds(x):
            return settled - x > tolerance or reference - x > rule["cumulative"]
        assert holds(v) and not holds(prev), (settled, reference, prev, v)
        assert row["release"] == ("1" if what == "record" else "0")
    elif rule["kind"] == "contact":
        assert row[column] == "1" and h.at(before)[column] == "0"
        assert not generate.in_business_hours(t)
    elif rule["kind"] == "comm_loss":
        assert row[column] == "" and h.at(before)[column] != ""
        assert all(v is None for v in h.values(column, t, t + generate.seconds(rule["duration"]) + 60))
    elif rule["kind"] == "flatline":
        held = h.values(column, t, t + generate.seconds(rule["duration"]) + 120)
        assert len(set(held)) == 1 and held[0] is not None
        assert float(h.at(before)[column]) != held[0]
    elif rule["kind"] == "count_drop":
        drop = h.last_valid_before(column, t) - float(row[column])
        assert drop >= rule["drop"]
        later = [v for v in h.values(column, t, t + 86400) if v is not None]
        assert later == sorted(later), "it counts on from the lower value"
    elif rule["kind"] == "run_state":
        held = [v for v in h.values(column, t, t + generate.seconds(rule["min_stop"]) + 120) if v is not None]
        assert all(v < rule["stopped_below"] for v in held)
        assert h.last_valid_before(column, t) >= rule["stopped_below"]
        if what == "alarm":
            assert in_shift(t, lab, config) and not in_maintenance(t, config)
        else:
            assert not in_shift(t, lab, config) or in_maintenance(t, config)
    elif rule["kind"] == "threshold":
        held = [v for v in h.values(column, t, t + generate.seconds(rule["min_duration"]) + 120) if v is not None]
        assert held and all(v > rule["above"] for v in held)
        assert h.last_valid_before(column, t) <= rule["above"]
        assert rule["when"] == "outside_shift" and not in_shift(t, lab, config)
    elif rule["kind"] == "baseline":
        # Idle in the shift on a weekday: about 8 % of the running level, where the same hour of the
        # previous weeks ran at full power.
        held = [v for v in h.values(column, t, t + generate.seconds(rule["min_duration"]) + 120) if v is not None]
        week_before = [v for v in h.values(column, t - 7 * 86400, t - 7 * 86400 + generate.seconds(rule["min_duration"])) if v is not None]
        assert held and max(held) < 0.15 * statistics.median(week_before)
        assert h.last_valid_before(column, t) > 0.5 * statistics.median(week_before)
        assert in_shift(t, lab, config)
    else:
        pytest.fail(f"no check for kind {rule['kind']}")


def test_pilferage_drops_are_each_under_the_sudden_tolerance_and_together_past_the_cumulative(suite):
    lab = labels_of(suite, "slow-pilferage")
    rule = lab["rules"]["stock"]
    h = History(suite / "slow-pilferage" / "history.csv")
    levels = []
    for when_local in generate.PILFER:
        t = generate.utc(when_local)
        before = statistics.median(v for v in h.values("scale.weight", t - 40 * 60, t - 20 * 60) if v is not None)
        after = statistics.median(v for v in h.values("scale.weight", t + 20 * 60, t + 40 * 60) if v is not None)
        assert 0 < before - after < rule["tolerance_percent"] / 100 * before
        levels.append(after)
    reference = statistics.median(v for v in h.values("scale.weight", h.times[0], h.times[0] + 3600) if v is not None)
    assert reference - levels[1] < rule["cumulative"] < reference - levels[2]


def test_the_power_gap_has_no_rows_and_is_labelled_undetectable(suite):
    lab = labels_of(suite, "gateway-power-loss")
    h = History(suite / "gateway-power-loss" / "history.csv")
    (u,) = lab["undetectable"]
    a, b = when(u["from"]), when(u["to"])
    assert b - a == 40 * 60
    assert u["reason"].startswith("not detectable by channel detectors: the agent raises gateway-power-loss at its restart")
    assert not [t for t in h.times if a <= t < b]
    assert a - 60 in h.index and b in h.index
    # The press runs through it: nothing to alarm.
    assert float(h.at(a - 60)["press.power"]) > 20 and float(h.at(b)["press.power"]) > 20
    assert lab["tolerated"][0]["kind"] == "comm_loss"


def test_dst_week_shift_starts_follow_local_time(suite):
    h = History(suite / "dst-autumn-week" / "history.csv")
    assert any(r["timestamp"].endswith("+02:00") for r in h.rows) and h.rows[-1]["timestamp"].endswith("+01:00")
    starts = {}
    for (t, r), prev in zip(zip(h.times[1:], h.rows[1:]), h.rows):
        if r["press.power"] and prev["press.power"] and float(prev["press.power"]) < 1 <= float(r["press.power"]):
            starts.setdefault(local(t).date().isoformat(), t)
    # Warm-up at 05:40-05:46 local on every shift day, whatever the offset.
    assert sorted(starts) == ["2026-10-21", "2026-10-22", "2026-10-23", "2026-10-26", "2026-10-27"]
    for t in starts.values():
        lt = local(t)
        assert lt.hour == 5 and 40 <= lt.minute <= 47, lt
    assert [datetime.fromtimestamp(starts[d], timezone.utc).hour for d in ("2026-10-22", "2026-10-26")] == [3, 4]
    # The door opens only inside business hours (07:00-18:00 local), also after the change.
    for t, r in zip(h.times, h.rows):
        if r["gpio.door"] == "1":
            assert generate.in_business_hours(t), r["timestamp"]


@pytest.mark.parametrize("name", [n for n in NAMES if "door" in n or "warehouse" in n or "release" in n])
def test_doors_of_normal_scenarios_open_only_in_business_hours(suite, name):
    h = History(suite / name / "history.csv")
    for t, r in zip(h.times, h.rows):
        if r.get("gpio.door") == "1":
            assert generate.in_business_hours(t), r["timestamp"]


def test_noise_is_as_stated(suite):
    h = History(suite / "normal-warehouse-week" / "history.csv")
    # A quiet night hour: the load cell within +-0.2 % (+ drift) of its median, sigma about 0.07 %.
    night = [v for v in h.values("scale.weight", generate.utc("2026-09-16T01:00"), generate.utc("2026-09-16T03:00")) if v is not None]
    m = statistics.median(night)
    assert max(abs(v - m) for v in night) <= 0.0026 * m
    assert 0.0004 < statistics.pstdev(night) / m < 0.0010
    # Forklift bumps in business hours: 0.6-1.2 % for 1-2 samples.
    day = [v for v in h.values("scale.weight", generate.utc("2026-09-14T07:00"), generate.utc("2026-09-14T18:00")) if v is not None]
    assert any(abs(v - statistics.median(day)) > 0.005 * statistics.median(day) for v in day)
    # Failed polls: some, but rare.
    empty = sum(1 for r in h.rows if r["scale.weight"] == "")
    assert 3 <= empty <= 40
    # Power: running noise about 1 %, idle about 8 % of running.
    p = History(suite / "normal-press-week" / "history.csv")
    run_ = [v for v in p.values("press.power", generate.utc("2026-05-12T13:00"), generate.utc("2026-05-12T15:00")) if v is not None and v > 20]
    assert 0.005 < statistics.pstdev(run_) / statistics.mean(run_) < 0.02 and len(run_) > 100
    idle = [v for v in p.values("press.power", generate.utc("2026-05-12T12:10"), generate.utc("2026-05-12T12:20")) if v is not None]
    assert all(0.07 * statistics.mean(run_) < v < 0.09 * statistics.mean(run_) for v in idle)
    # The holiday: stopped all day.
    assert all(v is None or v < 1 for v in p.values("press.power", generate.utc("2026-05-14T00:00"), generate.utc("2026-05-15T00:00")))
    # The energy counter never goes down in a normal week.
    e = [v for v in p.values("press.energy", p.times[0], p.times[-1] + 60) if v is not None]
    assert e == sorted(e) and e[-1] > e[0]
    # PIR false triggers at night are single samples.
    d = History(suite / "normal-door-week" / "history.csv")
    night_hits = [i for i, (t, r) in enumerate(zip(d.times, d.rows)) if r["gpio.motion"] == "1" and not generate.in_business_hours(t)]
    assert night_hits and all(d.rows[i - 1]["gpio.motion"] == "0" and d.rows[i + 1]["gpio.motion"] == "0" for i in night_hits)


# ------------------------------------------------------------------------------------- matcher

LABELS = {
    "scenario": "synthetic", "class": "alarm", "interval_s": 60, "sensor_days": 10.0,
    "expected_alarms": [{"rule": "stock", "kind": "weight_drop", "channel": "scale.weight", "severity": "alarm",
                         "condition_start": "2026-11-18T01:10:00Z", "allowed_delay_s": 420}],
    "expected_records": [], "tolerated": [], "undetectable": [],
}


def event(rule="stock", start="2026-11-18T01:10:00.000Z", at="2026-11-18T01:15:00.000Z", severity="alarm", phase="start", channel="scale.weight"):
    return {"event_id": f"{rule}-{start}", "phase": phase, "rule": rule, "kind": "weight_drop", "channel": channel, "severity": severity,
            "start": start, "at": at, "explanation": "synthetic"}


def test_an_alarm_in_time_is_detected_with_its_delay():
    r = run.score(LABELS, [event(), event(phase="end", at="2026-11-18T03:00:00Z")])
    (a,) = r["alarms"]
    assert a["detected"] and a["delay_s"] == 300 and not a["late"] and a["severity_ok"]
    assert r["false_alarms"] == []
    assert all(ok for _, ok, _ in run.goals([r]))


def test_an_alarm_raised_after_its_allowance_is_late():
    r = run.score(LABELS, [event(at="2026-11-18T01:17:01Z")])
    assert r["alarms"][0]["detected"] and r["alarms"][0]["late"] and r["alarms"][0]["delay_s"] == 421
    assert [name for name, ok, _ in run.goals([r]) if not ok] == ["delay"]


def test_the_start_window_is_one_interval_before_to_the_allowance_after():
    assert run.score(LABELS, [event(start="2026-11-18T01:09:00Z")])["alarms"][0]["detected"]
    assert run.score(LABELS, [event(start="2026-11-18T01:17:00Z", at="2026-11-18T01:17:00Z")])["alarms"][0]["detected"]
    early = run.score(LABELS, [event(start="2026-11-18T01:08:59Z")])
    assert not early["alarms"][0]["detected"] and len(early["false_alarms"]) == 1
    late = run.score(LABELS, [event(start="2026-11-18T01:17:01Z", at="2026-11-18T01:17:01Z")])
    assert not late["alarms"][0]["detected"] and len(late["false_alarms"]) == 1


def test_another_rule_or_channel_does_not_count_and_is_a_false_alarm():
    r = run.score(LABELS, [event(rule="scale-comm"), event(channel="scale.other")])
    assert not r["alarms"][0]["detected"] and len(r["false_alarms"]) == 2
    assert [name for name, ok, _ in run.goals([r]) if not ok] == ["detection"]


def test_a_record_where_an_alarm_is_expected_is_missed():
    r = run.score(LABELS, [event(severity="record")])
    assert not r["alarms"][0]["detected"] and r["alarms"][0]["note"].startswith("only recorded")
    assert r["false_alarms"] == [] and len(r["other_records"]) == 1


def test_a_warning_where_an_alarm_is_expected_is_detected_with_the_wrong_severity():
    r = run.score(LABELS, [event(severity="warning")])
    assert r["alarms"][0]["detected"] and not r["alarms"][0]["severity_ok"]
    assert [name for name, ok, _ in run.goals([r]) if not ok] == ["labelled"]


def test_a_second_alarm_for_one_condition_is_a_false_alarm():
    r = run.score(LABELS, [event(), event(start="2026-11-18T01:12:00Z", at="2026-11-18T01:18:00Z")])
    assert r["alarms"][0]["detected"] and r["alarms"][0]["delay_s"] == 300
    assert len(r["false_alarms"]) == 1 and r["false_rate"] == 0.1


def test_an_expected_record_raised_as_an_alarm_is_a_false_alarm():
    labels = dict(LABELS, **{"class": "normal", "expected_alarms": [], "expected_records": [dict(LABELS["expected_alarms"][0], severity="record")]})
    ok = run.score(labels, [event(severity="record")])
    assert ok["records"][0]["present"] and ok["false_alarms"] == []
    bad = run.score(labels, [event(severity="alarm")])
    assert len(bad["false_alarms"]) == 1
    assert {name for name, met, _ in run.goals([bad]) if not met} == {"false alarms", "labelled"}
    missing = run.score(labels, [])
    assert not missing["records"][0]["present"]
    assert [name for name, met, _ in run.goals([missing]) if not met] == ["labelled"]


def test_tolerated_events_are_neither_detections_nor_false_alarms():
    labels = dict(LABELS, **{"class": "normal", "expected_alarms": [],
                             "tolerated": [{"rule": "meter-comm", "from": "2026-03-18T08:59:00Z", "to": "2026-03-18T09:41:00Z"}]})
    r = run.score(labels, [event(rule="meter-comm", severity="warning", start="2026-03-18T08:59:00Z", at="2026-03-18T09:40:00Z"),
                           event(rule="press-stop", severity="alarm", start="2026-03-18T09:40:00Z", at="2026-03-18T09:45:00Z")])
    assert len(r["tolerated"]) == 1 and [e["rule"] for e in r["false_alarms"]] == ["press-stop"]


def test_the_false_alarm_goal_counts_normal_scenarios_only():
    normal = dict(LABELS, **{"class": "normal", "expected_alarms": [], "sensor_days": 100.0})
    one = run.score(normal, [event(start="2026-11-18T05:00:00Z", at="2026-11-18T05:00:00Z")])
    assert run.goals([one])[1][1], "1 per 100 sensor-days is the limit"
    two = run.score(normal, [event(start="2026-11-18T05:00:00Z", at="2026-11-18T05:00:00Z"), event(start="2026-11-18T06:00:00Z", at="2026-11-18T06:00:00Z")])
    assert not run.goals([two])[1][1]
    alarm_scenario = run.score(LABELS, [event(), event(start="2026-11-18T05:00:00Z"), event(start="2026-11-18T06:00:00Z")])
    assert run.goals([alarm_scenario, one])[1][1]


# ------------------------------------------------------------------------------ runner, whole


FAKE_VOUCH = textwrap.dedent('''\
    #!{python}
    """A stand-in for `vouch detect replay` that answers from the labels (mode: perfect, silent, unbuilt)."""
    import json, os, sys
    from pathlib import Path
    args = sys.argv[1:]
    opt = {{args[i]: args[i + 1] for i in range(2, len(args) - 1, 2)}}
    mode = os.environ["FAKE_VOUCH_MODE"]
    if mode == "unbuilt":
        sys.stderr.write("vouch detect replay: rule stock: kind weight_drop is not built into this vouch yet\\n")
        sys.exit(78)
    labels = json.loads((Path(opt["--config"]).parent / "labels.json").read_text())
    lines = []
    if mode == "perfect":
        for label in labels["expected_alarms"] + labels["expected_records"]:
            t = label["condition_start"]
            lines.append(json.dumps({{"event_id": label["rule"] + t, "phase": "start", "rule": label["rule"], "kind": label["kind"],
                                     "channel": label["channel"], "severity": label["severity"], "start": t, "at": t}}))
    Path(opt["--out"]).write_text("timestamp\\n")
    Path(opt["--events"]).write_text("".join(l + "\\n" for l in lines))
    ''')


@pytest.mark.parametrize("mode,status,says", [
    ("perfect", 0, "every goal met"),
    ("silent", 1, "goals not met: detection, labelled"),
    ("unbuilt", 2, "not merged into this build yet"),
])
def test_the_runner_end_to_end_with_a_stand_in_replay(tmp_path, mode, status, says):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "vouch"
    fake.write_text(FAKE_VOUCH.format(python=sys.executable))
    fake.chmod(0o755)
    env = dict(os.environ, VOUCH_BIN_DIR=str(bin_dir), FAKE_VOUCH_MODE=mode)
    p = subprocess.run([sys.executable, str(SCENARIOS / "run.py"), "--dir", str(tmp_path / "scn"), "--keep"], capture_output=True, text=True, env=env)
    assert p.returncode == status, p.stdout + p.stderr
    assert says in p.stdout + p.stderr
    if mode != "unbuilt":
        assert (tmp_path / "scn" / "theft-at-night" / "events.jsonl").exists(), "--keep leaves the replay's output"
        assert "n/a: gateway power loss" in p.stdout


def test_the_whole_suite_through_vouch_detect_replay():
    env = dict(os.environ, VOUCH_BIN_DIR=str(VOUCH.parent))
    p = subprocess.run([sys.executable, str(SCENARIOS / "run.py")], capture_output=True, text=True, env=env)
    if p.returncode == 2 and run.NOT_BUILT in p.stderr:
        pytest.skip("vouch detect replay cannot run the scenarios' rules yet: " + p.stderr.strip().splitlines()[0].split("exited 78: ")[-1])
    assert p.returncode == 0, p.stdout + p.stderr
