"""The bank's HTTP API against its OpenAPI document, end to end: a real `vouch-bank serve` with an API
token, fed by a real agent (simulated meter, a stoppage), then every documented operation called and
its answer checked against the document; a table of bad requests with the status and code each must
get; revocation from the moment it is made; the per-device upload limit.
"""
import gzip
import json
import os
import secrets
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate as validate_spec
from referencing import Registry
from referencing.jsonschema import DRAFT202012

from vouch_site import Site, free_port, wait_for_port, wait_until

TOKEN = secrets.token_hex(32)


def call(port, method, path, body=None, headers=None, token=TOKEN):
    """(status, headers, body bytes) of one request; never raises for an HTTP status."""
    h = dict(headers or {})
    if token is not None:
        h.setdefault("Authorization", f"Bearer {token}")
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=body, method=method, headers=h)
    try:
        with urllib.request.urlopen(request, timeout=10) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


@pytest.fixture(scope="module")
def bank(tmp_path_factory):
    """A site whose press stops once, delivering to a bank started with an API token."""
    work = tmp_path_factory.mktemp("bank-api")
    site = Site(work / "site", stop_after=4, stop_for=8, stop_rule="3s", summary_interval="3s", batch_interval="1s")
    token_file = work / "api.token"
    token_file.write_text(TOKEN + "\n")
    os.chmod(token_file, 0o600)
    site.prepare()
    site._spawn("bank", [str(site.bin_dir / "vouch-bank"), "serve", "--db", str(site.bank_db), "--key", str(site.bank_key),
                         "--listen", f"127.0.0.1:{site.bank_port}", "--api-token-file", str(token_file),
                         "--device-rate", "1", "--device-burst", "100"])
    assert wait_for_port(site.bank_port), "vouch-bank did not start"
    site.start_meter()
    site.start_agent()
    try:
        ended = wait_until(lambda: [e for e in site.events() if e["status"] == "ended"], timeout=60)
        assert ended, site.logs["agent"].read_text()[-3000:]
        assert site.stop_process("agent") == 0
        site.port = site.bank_port
        # One batch file of the device, to upload again by hand.
        export = subprocess.run([str(site.bin_dir / "vouch"), "evidence", "export", "--config", str(site.config)],
                                capture_output=True, text=True, check=True).stdout
        lines = export.splitlines()
        starts = [i for i, l in enumerate(lines) if l and not l.startswith("[")]
        site.batch_file = ("\n".join(lines[starts[0]:starts[1]]) + "\n").encode()
        yield site
    finally:
        site.stop()


@pytest.fixture(scope="module")
def spec(bank):
    status, headers, body = call(bank.port, "GET", "/openapi.yaml", token=None)
    assert status == 200 and headers["Content-Type"].startswith("application/yaml")
    document = yaml.safe_load(body)
    assert document == yaml.safe_load((Path(__file__).resolve().parents[2] / "Sources/VouchBank/openapi.yaml").read_text()), \
        "the served document is the one in the repository"
    validate_spec(document)
    return document


def response_validator(spec, operation, status, content_type="application/json"):
    registry = Registry().with_resource("urn:vouch-bank", DRAFT202012.create_resource(spec))
    responses = operation["responses"]
    assert str(status) in responses, f"status {status} is not documented for {operation['operationId']}"
    response = responses[str(status)]
    if "$ref" in response:
        response = spec["components"]["responses"][response["$ref"].split("/")[-1]]
    schema = response["content"][content_type]["schema"]
    schema = json.loads(json.dumps(schema).replace('"#/components', '"urn:vouch-bank#/components'))
    return Draft202012Validator(schema, registry=registry)


def conforms(spec, path, method, status, body, content_type="application/json"):
    operation = spec["paths"][path][method]
    validator = response_validator(spec, operation, status, content_type)
    errors = sorted(validator.iter_errors(json.loads(body)), key=str)
    assert not errors, f"{method.upper()} {path} {status}: {errors[0].message} at {list(errors[0].absolute_path)}"


def test_every_documented_operation_answers_as_documented(bank, spec):
    device = bank.device_id
    events = json.loads(call(bank.port, "GET", "/v1/events")[2])["events"]
    rseq = 1
    cases = {
        ("/healthz", "get"): ("GET", "/healthz", None, {}, 200),
        ("/metrics", "get"): ("GET", "/metrics", None, {}, 200),
        ("/openapi.yaml", "get"): ("GET", "/openapi.yaml", None, {}, 200),
        ("/v1/batches", "post"): ("POST", "/v1/batches", bank.batch_file, {"Content-Type": "application/vouch-batch"}, 200),
        ("/v1/devices", "get"): ("GET", "/v1/devices", None, {}, 200),
        ("/v1/devices", "post"): ("POST", "/v1/devices", bank.enrollment.read_bytes(), {"Content-Type": "application/json"}, 201),
        ("/v1/devices/{device}", "get"): ("GET", f"/v1/devices/{device}", None, {}, 200),
        ("/v1/devices/{device}/proof", "get"): ("GET", f"/v1/devices/{device}/proof?rseq={rseq}", None, {}, 200),
        ("/v1/events", "get"): ("GET", "/v1/events?status=ended", None, {}, 200),
        ("/v1/incidents", "get"): ("GET", f"/v1/incidents?device={device}", None, {}, 200),
        ("/v1/devices/{device}/summaries", "get"): ("GET", f"/v1/devices/{device}/summaries?channel=meter.power", None, {}, 200),
        ("/v1/gaps", "get"): ("GET", f"/v1/gaps?device={device}", None, {}, 200),
    }
    documented = {(p, m) for p, ops in spec["paths"].items() for m in ops if m in ("get", "post", "put", "delete", "patch")}
    # Revocation is checked by its own test (it ends the device's uploads).
    assert documented - set(cases) == {("/v1/devices/{device}/revoke", "post")}, "an operation without a conformance case"
    for (path, op), (method, url, body, headers, expected) in cases.items():
        status, answer_headers, answer = call(bank.port, method, url, body=body, headers=headers)
        assert status == expected, (url, status, answer[:300])
        content_type = answer_headers["Content-Type"].split(";")[0]
        if content_type == "application/json":
            conforms(spec, path, op, status, answer)
        else:
            assert content_type in spec["paths"][path][op]["responses"][str(status)]["content"]
    # What the answers say is what the agent sent.
    devices = json.loads(call(bank.port, "GET", "/v1/devices")[2])["devices"]
    assert [d["id"] for d in devices] == [device] and devices[0]["status"] == "active"
    assert devices[0]["chain"]["batches"] == len(bank.batches()) and devices[0]["chain"]["last_bseq"] == len(bank.batches())
    assert [e["rule"] for e in events] == ["press-stop"]
    proof = json.loads(call(bank.port, "GET", f"/v1/devices/{device}/proof?rseq=1")[2])
    proof_file = bank.workdir / "r1.proof.json"
    proof_file.write_text(json.dumps(proof))
    check = subprocess.run([str(bank.bin_dir / "vouch-bank"), "proof", "--check", str(proof_file), "--enrollment", str(bank.enrollment)],
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    # Summaries: what the agent summarised, page by page, each once.
    everything = json.loads(call(bank.port, "GET", f"/v1/devices/{device}/summaries")[2])
    assert not everything["truncated"] and len(everything["summaries"]) >= 4
    assert {s["channel"] for s in everything["summaries"]} >= {"meter.power"}
    pages, after = [], None
    while True:
        page = json.loads(call(bank.port, "GET", f"/v1/devices/{device}/summaries?limit=3" + (f"&after_rseq={after}" if after else ""))[2])
        pages += page["summaries"]
        if not page["truncated"]:
            break
        after = page["next_after_rseq"]
    assert pages == everything["summaries"]
    first = everything["summaries"][0]
    window = json.loads(call(bank.port, "GET", f"/v1/devices/{device}/summaries?from_ms={first['wall_ms'] + 1}")[2])["summaries"]
    assert first not in window and all(s["wall_ms"] > first["wall_ms"] for s in window)
    metrics = call(bank.port, "GET", "/metrics", token=None)[2].decode()
    assert 'vouch_bank_uploads_total{verdict="accepted"}' in metrics and device not in metrics


BATCH = {"Content-Type": "application/vouch-batch"}


def bad_cases(bank):
    b = bank.batch_file
    token_line, first_record = b.split(b"\n")[0], b.split(b"\n")[1]
    header, payload, signature = token_line.split(b".")
    # Another base64url character in the signature's first place: still a JWS, no longer the device's signature.
    flipped = (b"B" if signature[:1] == b"A" else b"A") + signature[1:]
    enrollment = json.loads(bank.enrollment.read_text())
    other = dict(enrollment, device="someone-else")
    return [
        # (name, method, path, body, headers, token, status, code)
        ("upload without content type", "POST", "/v1/batches", b, {}, None, 415, "E_CONTENT_TYPE"),
        ("upload as JSON", "POST", "/v1/batches", b, {"Content-Type": "application/json"}, None, 415, "E_CONTENT_TYPE"),
        ("upload with brotli", "POST", "/v1/batches", b, dict(BATCH, **{"Content-Encoding": "br"}), None, 415, "E_CONTENT_ENCODING"),
        ("gzip that is not gzip", "POST", "/v1/batches", b, dict(BATCH, **{"Content-Encoding": "gzip"}), None, 400, "E_BATCH_MALFORMED"),
        ("gzip bomb", "POST", "/v1/batches", gzip.compress(b"\n" * (5 << 20)), dict(BATCH, **{"Content-Encoding": "gzip"}), None, 413, "E_TOO_LARGE"),
        ("body over 4 MiB", "POST", "/v1/batches", b"x" * ((4 << 20) + 1), BATCH, None, 413, "E_TOO_LARGE"),
        ("empty body", "POST", "/v1/batches", b"", BATCH, None, 400, "E_BATCH_MALFORMED"),
        ("not a batch", "POST", "/v1/batches", b"hello\n", BATCH, None, 400, None),
        ("JWS with two parts", "POST", "/v1/batches", header + b"." + payload + b"\n" + first_record + b"\n", BATCH, None, 400, None),
        ("JWS header not base64url", "POST", "/v1/batches", b"!!!." + payload + b"." + signature + b"\n" + first_record + b"\n", BATCH, None, 400, None),
        ("signature altered", "POST", "/v1/batches", header + b"." + payload + b"." + flipped + b[len(token_line):], BATCH, None, 401, "E_JWS_SIGNATURE"),
        ("records cut off", "POST", "/v1/batches", token_line + b"\n", BATCH, None, 400, None),
        ("a record altered", "POST", "/v1/batches", b.replace(first_record, first_record.replace(b"[", b"[ ", 1)), BATCH, None, 400, None),
        ("GET on the upload path", "GET", "/v1/batches", None, {}, None, 405, "E_NO_ROUTE"),
        ("unknown path", "GET", "/v1/nothing", None, {}, TOKEN, 404, "E_NO_ROUTE"),
        ("devices without a token", "GET", "/v1/devices", None, {}, None, 401, "E_API_TOKEN"),
        ("devices with a wrong token", "GET", "/v1/devices", None, {}, "x" * 64, 401, "E_API_TOKEN"),
        ("devices with basic auth", "GET", "/v1/devices", None, {"Authorization": "Basic dm91Y2g6dm91Y2g="}, None, 401, "E_API_TOKEN"),
        ("events without a token", "GET", "/v1/events", None, {}, None, 401, "E_API_TOKEN"),
        ("incidents with a wrong token", "GET", "/v1/incidents", None, {}, TOKEN[:-1] + "0", 401, "E_API_TOKEN"),
        ("proof without a token", "GET", f"/v1/devices/{bank.device_id}/proof?rseq=1", None, {}, None, 401, "E_API_TOKEN"),
        ("enroll without a token", "POST", "/v1/devices", bank.enrollment.read_bytes(), {"Content-Type": "application/json"}, None, 401, "E_API_TOKEN"),
        ("unknown device", "GET", "/v1/devices/nobody", None, {}, TOKEN, 404, "E_NOT_FOUND"),
        ("revoke an unknown device", "POST", "/v1/devices/nobody/revoke", None, {}, TOKEN, 404, "E_NOT_FOUND"),
        ("proof without rseq", "GET", f"/v1/devices/{bank.device_id}/proof", None, {}, TOKEN, 400, "E_QUERY"),
        ("proof with rseq=abc", "GET", f"/v1/devices/{bank.device_id}/proof?rseq=abc", None, {}, TOKEN, 400, "E_QUERY"),
        ("proof with rseq=0", "GET", f"/v1/devices/{bank.device_id}/proof?rseq=0", None, {}, TOKEN, 400, "E_QUERY"),
        ("proof of a record not held", "GET", f"/v1/devices/{bank.device_id}/proof?rseq=999999", None, {}, TOKEN, 404, "E_NOT_FOUND"),
        ("events with status=open", "GET", "/v1/events?status=open", None, {}, TOKEN, 400, "E_QUERY"),
        ("events with severity=high", "GET", "/v1/events?severity=high", None, {}, TOKEN, 400, "E_QUERY"),
        ("events with since_ms=yesterday", "GET", "/v1/events?since_ms=yesterday", None, {}, TOKEN, 400, "E_QUERY"),
        ("events of a 200-character device", "GET", "/v1/events?device=" + "d" * 200, None, {}, TOKEN, 400, "E_QUERY"),
        ("enroll as text", "POST", "/v1/devices", bank.enrollment.read_bytes(), {"Content-Type": "text/plain"}, TOKEN, 415, "E_CONTENT_TYPE"),
        ("enroll broken JSON", "POST", "/v1/devices", b"{\"device\":", {"Content-Type": "application/json"}, TOKEN, 400, "E_ENROLLMENT"),
        ("enroll without a key", "POST", "/v1/devices", b"{\"device\":\"x\"}", {"Content-Type": "application/json"}, TOKEN, 400, "E_ENROLLMENT"),
        ("enroll with an altered kid", "POST", "/v1/devices", json.dumps(dict(enrollment, kid="x" * 43)).encode(), {"Content-Type": "application/json"}, TOKEN, 400, "E_ENROLLMENT"),
        ("enroll the key for another device", "POST", "/v1/devices", json.dumps(other).encode(), {"Content-Type": "application/json"}, TOKEN, 409, "E_ENROLLMENT"),
        ("summaries with from_ms=noon", "GET", f"/v1/devices/{bank.device_id}/summaries?from_ms=noon", None, {}, TOKEN, 400, "E_QUERY"),
        ("summaries with until before from", "GET", f"/v1/devices/{bank.device_id}/summaries?from_ms=10&until_ms=5", None, {}, TOKEN, 400, "E_QUERY"),
        ("summaries with limit=0", "GET", f"/v1/devices/{bank.device_id}/summaries?limit=0", None, {}, TOKEN, 400, "E_QUERY"),
        ("summaries with limit=5001", "GET", f"/v1/devices/{bank.device_id}/summaries?limit=5001", None, {}, TOKEN, 400, "E_QUERY"),
        ("summaries of an unknown device", "GET", "/v1/devices/nobody/summaries", None, {}, TOKEN, 404, "E_NOT_FOUND"),
        ("summaries without a token", "GET", f"/v1/devices/{bank.device_id}/summaries", None, {}, None, 401, "E_API_TOKEN"),
        ("gaps with since_ms=-1", "GET", "/v1/gaps?since_ms=-1", None, {}, TOKEN, 400, "E_QUERY"),
        ("enroll a document over 64 KiB", "POST", "/v1/devices", b" " * (65 * 1024), {"Content-Type": "application/json"}, TOKEN, 413, "E_TOO_LARGE"),
    ]


def test_a_wrong_method_on_each_documented_path_is_405_naming_the_documented_methods(bank, spec):
    for path, ops in spec["paths"].items():
        documented = sorted(m.upper() for m in ops if m in ("get", "post", "put", "delete", "patch"))
        wrong = "DELETE" if "DELETE" not in documented else "PATCH"
        status, headers, body = call(bank.port, wrong, path.replace("{device}", bank.device_id))
        assert status == 405, (path, status, body)
        assert sorted(m.strip() for m in headers["Allow"].split(",")) == documented, (path, headers["Allow"])
        assert json.loads(body)["error"]["code"] == "E_NO_ROUTE"


def test_bad_requests_get_a_4xx_with_a_stable_code_and_nothing_changes(bank, spec):
    cases = bad_cases(bank)
    assert len(cases) >= 30
    before = call(bank.port, "GET", "/v1/devices")[2]
    failures = []
    for name, method, path, body, headers, token, status, code in cases:
        got, answer_headers, answer = call(bank.port, method, path, body=body, headers=headers, token=token)
        error = json.loads(answer).get("error", {}) if answer[:1] == b"{" else {}
        if got != status or (code and error.get("code") != code) or not error.get("message"):
            failures.append(f"{name}: expected {status} {code or ''}, got {got} {answer[:200]!r}")
        if got == 401:
            assert answer_headers.get("WWW-Authenticate") == 'Bearer realm="vouch-bank"', name
    assert not failures, "\n".join(failures)
    assert call(bank.port, "GET", "/v1/devices")[2] == before, "a refused request changed what the bank holds"
    assert call(bank.port, "GET", "/healthz", token=None)[0] == 200, "the receiver is still up"


def test_uploads_beyond_the_device_rate_get_429_with_retry_after(bank):
    # --device-rate 1 --device-burst 100: the burst is spent by a quick run of resends.
    statuses = []
    for _ in range(120):
        status, headers, body = call(bank.port, "POST", "/v1/batches", body=bank.batch_file, headers=BATCH, token=None)
        statuses.append(status)
        if status == 429:
            assert int(headers["Retry-After"]) >= 1 and json.loads(body)["error"]["code"] == "E_RATE_LIMITED"
            break
    assert statuses[0] == 200 and statuses[-1] == 429, statuses[-3:]
    time.sleep(2.1)
    assert call(bank.port, "POST", "/v1/batches", body=bank.batch_file, headers=BATCH, token=None)[0] == 200, "tokens come back"


def test_a_revoked_device_is_refused_from_the_moment_of_revocation(bank, spec):
    assert call(bank.port, "POST", "/v1/batches", body=bank.batch_file, headers=BATCH, token=None)[0] in (200, 429)
    time.sleep(1.1)
    status, _, body = call(bank.port, "POST", f"/v1/devices/{bank.device_id}/revoke")
    assert status == 200
    conforms(spec, "/v1/devices/{device}/revoke", "post", 200, body)
    revoked = json.loads(body)
    assert revoked["status"] == "revoked" and revoked["revoked_at_ms"] <= int(time.time() * 1000)
    status, _, body = call(bank.port, "POST", "/v1/batches", body=bank.batch_file, headers=BATCH, token=None)
    assert status == 403 and json.loads(body)["error"]["code"] == "E_DEVICE_REVOKED"
    # Revoking again keeps the first time; what the device sent is still there.
    again = json.loads(call(bank.port, "POST", f"/v1/devices/{bank.device_id}/revoke")[2])
    assert again["revoked_at_ms"] == revoked["revoked_at_ms"]
    assert json.loads(call(bank.port, "GET", "/v1/events")[2])["events"], "the evidence stays"


def test_without_a_token_file_the_api_is_off(tmp_path):
    site = Site(tmp_path / "site")
    site.prepare()
    port = free_port()
    proc = subprocess.Popen([str(site.bin_dir / "vouch-bank"), "serve", "--db", str(site.bank_db), "--key", str(site.bank_key),
                             "--listen", f"127.0.0.1:{port}"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        assert wait_for_port(port)
        for token in (None, TOKEN, ""):
            status, _, body = call(port, "GET", "/v1/devices", token=token)
            assert status == 401 and json.loads(body)["error"]["code"] == "E_API_DISABLED", body
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.mark.parametrize("content,mode,message", [
    ("short", 0o600, "at least 32 printable characters"),
    ("x" * 40, 0o644, "readable by other users (mode 644): chmod 600 it"),
])
def test_a_bad_token_file_stops_serve_with_what_is_wrong(tmp_path, content, mode, message):
    site = Site(tmp_path / "site")
    site.prepare()
    token = tmp_path / "api.token"
    token.write_text(content)
    os.chmod(token, mode)
    run = subprocess.run([str(site.bin_dir / "vouch-bank"), "serve", "--db", str(site.bank_db), "--key", str(site.bank_key),
                          "--listen", f"127.0.0.1:{free_port()}", "--api-token-file", str(token)], capture_output=True, text=True, timeout=30)
    assert run.returncode == 1 and message in run.stderr, run.stderr
