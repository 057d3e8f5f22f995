#!/usr/bin/env python3
"""Installs the vouch .deb into a fresh Debian 12 root and follows the README's "Install on a gateway"
section there, up to a verified batch at a bank. Called by `scripts/package-deb --check`; exits 1 with the
failed step named.

The root comes from mmdebstrap (variant apt: Debian's essential packages and apt, nothing of this
machine), kept as a tarball in .build/deb for a week. apt installs the package in it, so the package's
Depends are proved too: a library the binary needs but the package does not name is missing there.
Inside the root, as the package left it: the user, groups, directories and files; `vouch config check`
on the shipped config; then the technician's steps with a site config: `vouch enroll` as root (the key
must end up the vouch user's), the agent run as user vouch as the unit runs it, `vouch status` over the
control socket, and the bank (on this machine, over loopback, which the chroot shares) verifying the
exported chain. Runs in its own mount namespace (unshare), so the mounts it makes vanish with it.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts" / "sim"))
from vouch_site import free_port, wait_for_port, wait_until  # noqa: E402  (the simulated site's helpers)

CACHE = ROOT / ".build" / "deb" / "rootfs-bookworm.tar"

def debian_sources():
    """Where the fresh root's packages come from: $VOUCH_DEBIAN_MIRROR, else this machine's own apt sources
    (the mirrors scripts/setup installed from, so a CI that reaches only its own mirror works too), else
    deb.debian.org."""
    if os.environ.get("VOUCH_DEBIAN_MIRROR"):
        return os.environ["VOUCH_DEBIAN_MIRROR"]
    for path in ("/etc/apt/sources.list.d/debian.sources", "/etc/apt/sources.list"):
        if Path(path).is_file() and any(line.strip() and not line.lstrip().startswith("#") for line in Path(path).read_text().splitlines()):
            return path
    return "http://deb.debian.org/debian"


MIRROR = debian_sources()
BIN_DIR = Path(os.environ.get("VOUCH_BIN_DIR", ROOT / ".build" / "debug"))
PYTHON = os.environ.get("VOUCH_VENV", str(ROOT / ".venv")) + "/bin/python"

SITE_CONFIG = """\
# The technician's edit of /etc/vouch/vouch.toml for the check's simulated site.
[device]
id = "deb-check-1"
data_dir = "/var/lib/vouch"

[bank]
url = "http://127.0.0.1:{bank_port}"
timeout = "5s"
receipt_key = "/etc/vouch/bank.jwk"

[shift]
timezone = "UTC"
start = "00:00"
end = "24:00"

[evidence]
summary_interval = "2s"
batch_interval = "2s"

[[modbus.device]]
name = "meter"
url = "tcp://127.0.0.1:{meter_port}"
unit_id = 1
timeout = "500ms"
poll_interval = "500ms"

[[modbus.device.channel]]
name = "power"
register = "input"
address = 52
type = "float32"
unit = "W"
"""


class CheckFailed(Exception):
    pass


def step(text):
    print(f"install-check: {text}", flush=True)


def run(argv, *, check=True, timeout=600, **kw):
    result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kw)
    if check and result.returncode != 0:
        raise CheckFailed(f"{' '.join(map(str, argv))} exited {result.returncode}\n{result.stdout}{result.stderr}")
    return result


def wait_for(predicate, timeout, what):
    if not wait_until(predicate, timeout):
        raise CheckFailed(f"timed out after {timeout:.0f} s waiting for {what}")


def fresh_root(target):
    if not CACHE.exists() or time.time() - CACHE.stat().st_mtime > 7 * 86400:
        step(f"building a fresh Debian 12 root with mmdebstrap from {MIRROR} (about 40 s)")
        CACHE.parent.mkdir(parents=True, exist_ok=True)
        partial = CACHE.with_suffix(".partial.tar")
        run(["mmdebstrap", "--quiet", "--variant=apt", "bookworm", str(partial), MIRROR], timeout=900)
        partial.rename(CACHE)
    run(["tar", "-C", str(target), "-xf", str(CACHE)])


def chroot(root, *argv, user=None, check=True, timeout=600):
    command = ["chroot", str(root)]
    if user:
        command += ["runuser", "-u", user, "--"]
    return run(command + list(argv), check=check, timeout=timeout)


def main(deb):
    work = Path(tempfile.mkdtemp(prefix="vouch-install-check."))
    root = work / "root"
    root.mkdir()
    processes = []
    try:
        fresh_root(root)
        # The chroot's own /proc and /dev; this process runs in a private mount namespace.
        run(["mount", "-t", "proc", "proc", str(root / "proc")])
        run(["mount", "--rbind", "/dev", str(root / "dev")])
        shutil.copy("/etc/resolv.conf", root / "etc" / "resolv.conf")
        shutil.copy(deb, root / "tmp" / "vouch.deb")

        step("apt-get install ./vouch.deb in the fresh root (pulls its Depends from Debian)")
        chroot(root, "apt-get", "update", "-qq", timeout=900)
        installed = chroot(root, "env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "install", "-y", "-qq",
                           "--no-install-recommends", "/tmp/vouch.deb", timeout=900)
        if "vouch: installed." not in installed.stdout:
            raise CheckFailed("postinst did not print its first-install guidance:\n" + installed.stdout)

        step("what the package left: binary, unit, conffile, user, groups, data directory")
        status = chroot(root, "dpkg-query", "-W", "-f", "${Status} ${Version}", "vouch").stdout
        if not status.startswith("install ok installed"):
            raise CheckFailed(f"dpkg says vouch is {status!r}")
        missing = chroot(root, "sh", "-c", "ldd /usr/bin/vouch | grep 'not found' || true").stdout.strip()
        if missing:
            raise CheckFailed("the binary needs libraries the package does not depend on:\n" + missing)
        version = chroot(root, "vouch", "--version").stdout.strip()
        if not status.split()[-1].startswith(version):
            raise CheckFailed(f"vouch --version says {version!r}, the package is {status.split()[-1]!r}")
        for path in ["usr/bin/vouch", "lib/systemd/system/vouch.service", "lib/udev/rules.d/60-vouch-gpio.rules",
                     "etc/vouch/vouch.toml", "usr/share/vouch/modbus/eastron-sdm630.toml", "usr/share/vouch/boards/rpi4/board.toml",
                     "usr/share/bash-completion/completions/vouch", "usr/share/zsh/vendor-completions/_vouch",
                     "usr/share/fish/vendor_completions.d/vouch.fish", "usr/share/doc/vouch/copyright"]:
            if not (root / path).is_file():
                raise CheckFailed(f"/{path} is missing after the install")
        conffiles = chroot(root, "dpkg-query", "-W", "-f", "${Conffiles}", "vouch").stdout
        if "/etc/vouch/vouch.toml" not in conffiles:
            raise CheckFailed(f"/etc/vouch/vouch.toml is not a conffile: {conffiles!r}")
        groups = chroot(root, "id", "-nG", "vouch").stdout.split()
        for group in ["vouch", "gpio", "dialout"]:
            if group not in groups:
                raise CheckFailed(f"user vouch is not in group {group} (groups: {groups})")
        shell = chroot(root, "getent", "passwd", "vouch").stdout.strip().split(":")[-1]
        if shell != "/usr/sbin/nologin":
            raise CheckFailed(f"user vouch has a login shell: {shell}")
        data = chroot(root, "stat", "-c", "%U:%G %a", "/var/lib/vouch").stdout.strip()
        if data != "vouch:vouch 750":
            raise CheckFailed(f"/var/lib/vouch is {data}, expected vouch:vouch 750")
        shipped = chroot(root, "vouch", "config", "check", "/etc/vouch/vouch.toml", check=False)
        if shipped.returncode != 0:
            raise CheckFailed("the shipped /etc/vouch/vouch.toml does not pass `vouch config check`:\n" + shipped.stdout + shipped.stderr)

        step("the README's steps: site config, enroll as root, bank enrols, agent as user vouch")
        bank_port, meter_port = free_port(), free_port()
        bank_db, bank_key = work / "bank.sqlite", work / "bank.key"
        jwk = run([BIN_DIR / "vouch-bank", "key", "--key", bank_key]).stdout
        (root / "etc" / "vouch" / "bank.jwk").write_text(jwk)
        (root / "etc" / "vouch" / "vouch.toml").write_text(SITE_CONFIG.format(bank_port=bank_port, meter_port=meter_port))
        chroot(root, "vouch", "config", "check")
        enrol = chroot(root, "vouch", "enroll")
        if "owner vouch" not in enrol.stderr:
            raise CheckFailed("`vouch enroll` as root did not give the key to user vouch:\n" + enrol.stderr)
        key_mode = chroot(root, "stat", "-c", "%U %a", "/var/lib/vouch/device.key").stdout.strip()
        if key_mode != "vouch 600":
            raise CheckFailed(f"the device key is {key_mode}, expected vouch 600")
        enrollment = work / "enrollment.json"
        enrollment.write_text(enrol.stdout)
        run([BIN_DIR / "vouch-bank", "devices", "add", enrollment, "--db", bank_db])

        def spawn(name, argv):
            log = open(work / f"{name}.log", "w")
            proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
            processes.append((name, proc, log))
            return proc

        spawn("bank", [BIN_DIR / "vouch-bank", "serve", "--db", bank_db, "--key", bank_key, "--listen", f"127.0.0.1:{bank_port}"])
        spawn("meter", [PYTHON, ROOT / "scripts" / "sim" / "meter.py", "--port", str(meter_port), "--stop-for", "0"])
        wait_for(lambda: wait_for_port(bank_port, 1) and wait_for_port(meter_port, 1), 30, "the bank and the meter to listen")
        # As the unit runs it: user vouch with its groups, the agent itself the process signalled (no runuser
        # in between, so its own exit status is seen).
        uid, gid = (root / "etc" / "passwd").read_text().split("\nvouch:", 1)[1].split(":")[1:3]
        groups = [line.split(":")[2] for line in (root / "etc" / "group").read_text().splitlines()
                  if line.split(":")[0] in ("gpio", "dialout")]
        agent = spawn("agent", ["chroot", f"--userspec={uid}:{gid}", f"--groups={','.join(groups)}", root,
                                "vouch", "run", "--config", "/etc/vouch/vouch.toml"])

        def status():
            result = chroot(root, "vouch", "status", "--json", user="vouch", check=False, timeout=30)
            return json.loads(result.stdout) if result.returncode == 0 else None

        def delivered():
            if agent.poll() is not None:
                raise CheckFailed(f"the agent exited with {agent.returncode}:\n" + (work / "agent.log").read_text()[-3000:])
            s = status()
            return s is not None and ((s.get("uplink") or {}).get("last_receipt_bseq") or 0) >= 2

        wait_for(delivered, 90, "`vouch status` to show the bank's receipt for a second batch")
        answer = status()
        proc_status = Path(f"/proc/{agent.pid}/status").read_text()
        running_uid = proc_status.split("\nUid:")[1].split()[0]
        running_groups = set(proc_status.split("\nGroups:")[1].split("\n")[0].split())
        if running_uid != uid or not set(groups) <= running_groups:
            raise CheckFailed(f"the agent runs as uid {running_uid} with groups {running_groups}, expected {uid} with {groups}")
        step(f"vouch status over the socket as user vouch: device {answer.get('device')}, "
             f"version {answer.get('version')}, last receipt bseq {answer['uplink']['last_receipt_bseq']}")
        os.killpg(agent.pid, 15)
        if agent.wait(timeout=30) != 0:
            raise CheckFailed(f"the agent did not stop cleanly on SIGTERM (exit {agent.returncode})")

        exported = work / "deb-check-1.batches"
        exported.write_text(run([BIN_DIR / "vouch-bank", "export", "--db", bank_db, "--device", "deb-check-1"]).stdout)
        verdict = run([BIN_DIR / "vouch-bank", "verify", "--enrollment", enrollment, exported], check=False)
        last = verdict.stdout.strip().splitlines()[-1] if verdict.stdout.strip() else ""
        counted = re.search(r": (\d+) batch\(es\) ok, 0 failed$", last)
        if verdict.returncode != 0 or not counted or int(counted.group(1)) < 2:
            raise CheckFailed("the bank's copy of the chain does not verify:\n" + verdict.stdout + verdict.stderr)
        step(f"verified at the bank: {last}")

        step("a reinstall (the upgrade path) keeps the edited config and the key")
        key_before = (root / "var/lib/vouch/device.key").read_bytes()
        config_before = (root / "etc/vouch/vouch.toml").read_text()
        chroot(root, "dpkg", "-i", "/tmp/vouch.deb")
        if (root / "etc/vouch/vouch.toml").read_text() != config_before:
            raise CheckFailed("reinstalling the package replaced the technician's /etc/vouch/vouch.toml")
        if (root / "var/lib/vouch/device.key").read_bytes() != key_before:
            raise CheckFailed("reinstalling the package changed the device key")

        step("apt-get remove --purge keeps the evidence")
        chroot(root, "apt-get", "remove", "--purge", "-y", "-qq", "vouch")
        if not (root / "var" / "lib" / "vouch" / "outbox.sqlite").exists():
            raise CheckFailed("purging the package deleted /var/lib/vouch/outbox.sqlite (the evidence)")
        if (root / "etc" / "vouch" / "vouch.toml").exists():
            raise CheckFailed("purge left the conffile /etc/vouch/vouch.toml")
        step("ok")
        return 0
    except (CheckFailed, subprocess.TimeoutExpired) as failure:
        print(f"install-check: FAIL: {failure}", file=sys.stderr)
        for name, _, _ in processes:
            log = work / f"{name}.log"
            if log.exists():
                print(f"--- {name}.log (last lines)\n" + "\n".join(log.read_text().splitlines()[-15:]), file=sys.stderr)
        return 1
    finally:
        for _, proc, log in reversed(processes):
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, 9)
                except ProcessLookupError:
                    pass
                proc.wait()
            log.close()
        subprocess.run(["umount", "-R", str(root / "dev")], capture_output=True)
        subprocess.run(["umount", str(root / "proc")], capture_output=True)
        if os.environ.get("VOUCH_KEEP_INSTALL_ROOT") != "1":
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"install-check: kept {work}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print("usage: install_check.py VOUCH.deb (run by scripts/package-deb --check)", file=sys.stderr)
        sys.exit(64)
    if os.environ.get("VOUCH_INSTALL_CHECK_NAMESPACE") != "1":
        # A private mount namespace: /proc and /dev mounted into the root disappear with this process.
        os.execvp("unshare", ["unshare", "--mount", "--propagation", "private", "env", "VOUCH_INSTALL_CHECK_NAMESPACE=1",
                              sys.executable, *sys.argv])
    sys.exit(main(Path(sys.argv[1]).resolve()))
