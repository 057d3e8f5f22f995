#!/usr/bin/env python3
"""Builds (and caches) the qemu VM that scripts/power-cut-campaign boots again and again.

What the VM is made of, all cached under .build/vm/ (git-ignored):

  kernel/<abi>/vmlinuz, kernel/<abi>/vmlinux, kernel/<abi>/modules/*.ko
      Debian's own kernel: the ABI that `linux-image-amd64` depends on today, fetched with
      `apt-get download linux-image-<abi>-amd64` (that exact name: a glob pulls every ABI, 1.6 GB),
      unpacked with dpkg-deb. Only vmlinuz and the modules the VM needs are kept, plus vmlinux, the
      kernel uncompressed here (Python's lzma): qemu boots that ELF directly through its PVH entry
      point, which saves the ~4.5 s the xz decompressor takes under TCG at every boot. Debian builds
      virtio-pci, virtio-blk and ext4 (with jbd2, mbcache, crc16) as modules; their dependencies are
      read from each module's own .modinfo section (the .deb has no modules.dep: depmod runs at
      install time), and crc32c is added because ext4 and jbd2 only ask for it by a soft
      dependency (the metadata checksums that mkfs.ext4 turns on by default need it at mount).
  initrd.gz
      A newc cpio, written here (so /dev/console can be a device node without mknod rights):
      busybox-static, the modules in load order (modules/order), scripts/vm/init as /init. Small,
      so every boot unpacks it in a blink.
  system.img
      An ext4 image (mkfs.ext4 -d, no journal; attached read-only) with /bin/vouch and
      /bin/vouch-bank from VOUCH_BIN_DIR, the C meter (scripts/vm/meter.c, compiled here with gcc
      and libmodbus), the sqlite3 shell (the self-test tampers with it), every library `ldd` lists
      for them plus the dynamic loader, flattened into /lib, and the host's CA bundle in
      /etc/ssl/certs. Kept off the initramfs because the debug builds of vouch and vouch-bank and
      the Swift runtime are ~300 MB: unpacking that into RAM at every boot would cost seconds under
      TCG, while a disk is only read where the loader touches it.

Each artefact carries a stamp: the SHA-256 of everything it was built from. A changed vouch binary,
library, init script, meter source or this file rebuilds what depends on it; otherwise a run reuses
the cache and this takes about a second.

Used as a module by scripts/power-cut-campaign (`ensure_vm(bin_dir)`) and by scripts/vm/gpiosim.py
(the gpio-sim VM of scripts/gpio-vm-test: the same kernel, its own initramfs and system disk through
ensure_initramfs(init=, modules=, target=) and ensure_disk_image), or on its own to build and print
what it built: scripts/vm/vmbuild.py [--bin-dir DIR]
"""
import argparse
import gzip
import hashlib
import json
import lzma
import os
import re
import shutil
import struct
import subprocess
import sys
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VM_DIR = Path(__file__).resolve().parent
CACHE = ROOT / ".build" / "vm"

# Debian packages the VM build and the campaign use: qemu to boot, busybox for the guest's userland,
# e2fsprogs for mkfs.ext4, gcc and libmodbus-dev for the meter, sqlite3 for the guest's self-test
# tampering (the host reads the outbox with Python's sqlite3).
APT_PACKAGES = ["qemu-system-x86", "busybox-static", "e2fsprogs", "gcc", "libc6-dev", "libmodbus-dev", "sqlite3",
                "ca-certificates"]

# What the guest needs to see its disks and mount ext4. Their hard dependencies are resolved from
# modinfo; crc32c_generic comes first because ext4/jbd2 only name it as a soft dependency.
ROOT_MODULES = ["crc32c_generic", "virtio_pci", "virtio_blk", "ext4"]

# The system image's /bin: the agent and the bank from VOUCH_BIN_DIR, the meter built here, and
# Debian's sqlite3 shell.
FROM_BIN_DIR = ["vouch", "vouch-bank"]
SQLITE3 = Path("/usr/bin/sqlite3")
# The system's CA bundle, as on any Debian gateway: `vouch run` makes a TLS context at start even for
# an http:// bank, and without /etc/ssl/certs that fails (E_AGENT_TLS ... unknownError([])).
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")


class BuildError(Exception):
    pass


def say(message):
    print(f"vm: {message}", flush=True)


def run(cmd, **kwargs):
    """Runs a command and raises BuildError with its output if it fails."""
    result = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    if result.returncode != 0:
        raise BuildError(f"`{' '.join(map(str, cmd))}` failed with status {result.returncode}:\n"
                         f"{(result.stderr or result.stdout).strip()[-2000:]}")
    return result.stdout


def sha256_of(*paths, extra=""):
    digest = hashlib.sha256(extra.encode())
    for path in paths:
        digest.update(str(path).encode() + b"\0")
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def fresh(artefact, stamp):
    """True when `artefact` exists and was built from inputs whose digest is `stamp`."""
    stamp_file = Path(str(artefact) + ".stamp")
    return artefact.exists() and stamp_file.exists() and stamp_file.read_text().strip() == stamp


def mark(artefact, stamp):
    Path(str(artefact) + ".stamp").write_text(stamp + "\n")


# --- host packages -------------------------------------------------------------------------------

def ensure_packages(packages=APT_PACKAGES):
    """Installs the missing Debian packages (apt-get update first, once, only when something is missing)."""
    query = subprocess.run(["dpkg-query", "-W", "-f=${Package} ${Status}\n", *packages], capture_output=True, text=True)
    installed = {line.split()[0] for line in query.stdout.splitlines() if line.endswith(" install ok installed")}
    missing = [p for p in packages if p not in installed]
    if not missing:
        return
    if os.geteuid() != 0:
        raise BuildError(f"need root to install the Debian packages {' '.join(missing)}")
    say(f"installing Debian packages: {' '.join(missing)}")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    run(["apt-get", "update", "-qq"], env=env)
    run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing], env=env)


# --- kernel --------------------------------------------------------------------------------------

def kernel_abi():
    """The image package `linux-image-amd64` depends on now, e.g. linux-image-6.1.0-57-amd64."""
    def ask():
        out = subprocess.run(["apt-cache", "depends", "linux-image-amd64"], capture_output=True, text=True).stdout
        found = re.findall(r"Depends:\s*(linux-image-\d[\w.+-]*-amd64)\b", out)
        return found[0] if found else None

    package = ask()
    if package is None:
        # apt's lists may never have been fetched on a fresh machine.
        run(["apt-get", "update", "-qq"], env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
        package = ask()
    return package


def elf_modinfo(path):
    """The key=value strings of a kernel module's .modinfo section (a tiny ELF64 reader)."""
    data = Path(path).read_bytes()
    if data[:4] != b"\x7fELF" or data[4] != 2:
        raise BuildError(f"{path} is not an ELF64 kernel module")
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)

    def section(i):
        name, _type, _flags, _addr, offset, size = struct.unpack_from("<IIQQQQ", data, shoff + i * shentsize)
        return name, offset, size

    _, names_offset, _ = section(shstrndx)
    for i in range(shnum):
        name, offset, size = section(i)
        if data[names_offset + name:data.index(b"\0", names_offset + name)] == b".modinfo":
            fields = {}
            for entry in data[offset:offset + size].split(b"\0"):
                key, sep, value = entry.decode(errors="replace").partition("=")
                if sep:
                    fields.setdefault(key, value)
            return fields
    raise BuildError(f"{path} has no .modinfo section")


def module_load_order(modules_dir, wanted):
    """`wanted` plus their dependencies, each after what it depends on."""
    by_name = {ko.stem.replace("-", "_"): ko for ko in Path(modules_dir).rglob("*.ko")}
    order, visiting = [], set()

    def visit(name, needed_by):
        if name in order:
            return
        if name in visiting:
            raise BuildError(f"kernel module dependency cycle through {name}")
        if name not in by_name:
            raise BuildError(f"kernel module {name} (needed by {needed_by}) is not in {modules_dir}: "
                             f"built into this kernel, or renamed? See modules.builtin there")
        visiting.add(name)
        depends = elf_modinfo(by_name[name]).get("depends", "")
        for dependency in filter(None, depends.split(",")):
            visit(dependency.replace("-", "_"), name)
        visiting.discard(name)
        order.append(name)

    for name in wanted:
        visit(name, "the VM")
    return [(name, by_name[name]) for name in order]


@dataclass
class Kernel:
    abi: str
    vmlinuz: Path
    modules: list  # [(name, path)] in load order
    vmlinux: Path = None  # uncompressed, with a PVH entry point: what qemu boots fastest

    @property
    def boot_image(self):
        return self.vmlinux or self.vmlinuz


def has_pvh_entry(elf):
    """True if an ELF64 kernel carries the Xen PHYS32_ENTRY note that qemu's -kernel needs to boot it via PVH."""
    data = Path(elf).read_bytes()
    if data[:4] != b"\x7fELF" or data[4] != 2:
        return False
    phoff, = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    for i in range(phnum):
        p_type, _flags, offset, _vaddr, _paddr, filesz = struct.unpack_from("<IIQQQQ", data, phoff + i * phentsize)
        if p_type != 4:  # PT_NOTE
            continue
        position, end = offset, offset + filesz
        while position + 12 <= end:
            namesz, descsz, note_type = struct.unpack_from("<III", data, position)
            name = data[position + 12:position + 12 + namesz].rstrip(b"\0")
            if name == b"Xen" and note_type == 18:  # XEN_ELFNOTE_PHYS32_ENTRY
                return True
            position += 12 + (namesz + 3) // 4 * 4 + (descsz + 3) // 4 * 4
    return False


def uncompress_kernel(vmlinuz, vmlinux):
    """Writes the ELF kernel inside a bzImage to `vmlinux` if it is xz- or gzip-compressed and boots
    via PVH; returns whether it did (else the VM boots vmlinuz, which only costs time)."""
    data = Path(vmlinuz).read_bytes()
    for magic, decompressor in [(b"\xfd7zXZ\x00", lambda: lzma.LZMADecompressor(format=lzma.FORMAT_XZ)),
                                (b"\x1f\x8b\x08\x00", lambda: zlib.decompressobj(16 + zlib.MAX_WBITS))]:
        start = data.find(magic)
        while start >= 0:
            try:
                elf = decompressor().decompress(data[start:])
            except (lzma.LZMAError, zlib.error):
                elf = b""
            if elf[:4] == b"\x7fELF":
                Path(vmlinux).write_bytes(elf)
                if has_pvh_entry(vmlinux):
                    return True
                Path(vmlinux).unlink()
                return False
            start = data.find(magic, start + 1)
    return False


def download_deb(package, into, version=None):
    """Fetches exactly `package` (at `version`, if given) with apt-get download into `into`; returns the .deb.
    Never a pattern: `apt-get download linux-image-*` would fetch every ABI there is (1.6 GB)."""
    into = Path(into)
    into.mkdir(parents=True, exist_ok=True)
    run(["apt-get", "download", "-o", "APT::Sandbox::User=root", f"{package}={version}" if version else package], cwd=into)
    debs = list(into.glob(f"{package}_*.deb"))
    if len(debs) != 1:
        raise BuildError(f"apt-get download {package} left {[d.name for d in debs]} in {into}")
    return debs[0]


def unpacked_modules_dir(unpacked, deb):
    """lib/modules/<version> inside an unpacked linux-image .deb."""
    modules_dir = next(Path(unpacked).glob("lib/modules/*"), None) or next(Path(unpacked).glob("usr/lib/modules/*"), None)
    if modules_dir is None:
        raise BuildError(f"{Path(deb).name} has no lib/modules/<version> directory")
    return modules_dir


def ensure_kernel():
    package = kernel_abi()
    cached = sorted(CACHE.glob("kernel/*/vmlinuz"))
    if package is None:
        if not cached:
            raise BuildError("cannot tell which kernel linux-image-amd64 depends on (apt-cache depends "
                             "linux-image-amd64 names none, even after apt-get update), and none is cached")
        package = "linux-image-" + cached[-1].parent.name  # offline: the newest one cached
    abi = package.removeprefix("linux-image-")
    kdir = CACHE / "kernel" / abi
    vmlinuz = kdir / "vmlinuz"
    if not (vmlinuz.exists() and (kdir / "modules" / "order.json").exists()):
        if kdir.exists():
            shutil.rmtree(kdir)
        download = CACHE / "kernel" / "download"
        if download.exists():
            shutil.rmtree(download)
        download.mkdir(parents=True)
        say(f"downloading {package} (Debian's kernel, ~70 MB)")
        started = time.monotonic()
        deb = download_deb(package, download)
        unpacked = download / "unpacked"
        run(["dpkg-deb", "-x", str(deb), str(unpacked)])
        found = list(unpacked.glob("boot/vmlinuz-*"))
        if len(found) != 1:
            raise BuildError(f"{deb.name} holds {len(found)} boot/vmlinuz-* files, expected 1")
        modules_dir = unpacked_modules_dir(unpacked, deb)
        order = module_load_order(modules_dir, ROOT_MODULES)
        (kdir / "modules").mkdir(parents=True)
        for name, path in order:
            shutil.copy2(path, kdir / "modules" / f"{name}.ko")
        shutil.copy2(found[0], vmlinuz)
        if not uncompress_kernel(vmlinuz, kdir / "vmlinux"):
            say("note: could not extract a PVH-bootable vmlinux from vmlinuz; booting the compressed kernel (slower)")
        (kdir / "modules" / "order.json").write_text(json.dumps([name for name, _ in order]))
        shutil.rmtree(download)  # the .deb and the 400 MB of other modules are not needed again
        say(f"kernel {abi} cached in {kdir.relative_to(ROOT)} ({time.monotonic() - started:.1f} s); "
            f"modules in load order: {' '.join(name for name, _ in order)}")
    names = json.loads((kdir / "modules" / "order.json").read_text())
    vmlinux = kdir / "vmlinux"
    return Kernel(abi, vmlinuz, [(n, kdir / "modules" / f"{n}.ko") for n in names], vmlinux if vmlinux.exists() else None)


# --- initramfs -----------------------------------------------------------------------------------

class Cpio:
    """A newc ("070701") archive, the format the kernel unpacks into its initial rootfs."""

    def __init__(self):
        self.out = bytearray()
        self.inode = 1

    def _entry(self, name, mode, data=b"", rdev=(0, 0)):
        encoded = name.encode() + b"\0"
        fields = [self.inode, mode, 0, 0, 1, 0, len(data), 0, 0, rdev[0], rdev[1], len(encoded), 0]
        self.inode += 1
        self.out += b"070701" + b"".join(b"%08X" % f for f in fields) + encoded
        self.out += b"\0" * (-len(self.out) % 4) + data
        self.out += b"\0" * (-len(self.out) % 4)

    def directory(self, name):
        self._entry(name, 0o040755)

    def file(self, name, data, executable=False):
        self._entry(name, 0o100755 if executable else 0o100644, data)

    def symlink(self, name, target):
        self._entry(name, 0o120777, target.encode())

    def char_device(self, name, major, minor):
        self._entry(name, 0o020600, rdev=(major, minor))

    def finish(self):
        self._entry("TRAILER!!!", 0)
        return bytes(self.out)


def ensure_initramfs(kernel, init=None, modules=None, target=None):
    """The initramfs: busybox, `modules` ([(name, path)] in load order; default the kernel's) and `init`
    (default scripts/vm/init) as /init, written to `target` (default initrd.gz). scripts/gpio-vm-test
    builds its own with other arguments."""
    init = Path(init) if init else VM_DIR / "init"
    modules = kernel.modules if modules is None else modules
    target = Path(target) if target else CACHE / "initrd.gz"
    busybox = Path("/bin/busybox")
    probe = subprocess.run(["ldd", str(busybox)], capture_output=True, text=True)
    if "not a dynamic executable" not in probe.stdout + probe.stderr:
        raise BuildError(f"{busybox} is not statically linked: install busybox-static (not busybox)")
    stamp = sha256_of(init, busybox, Path(__file__), *(p for _, p in modules),
                      extra=json.dumps([name for name, _ in modules]))
    if fresh(target, stamp):
        return target
    cpio = Cpio()
    for d in ["bin", "dev", "proc", "sys", "tmp", "vm", "data", "lib64", "modules", "etc"]:
        cpio.directory(d)
    # The kernel opens /dev/console for init's stdin/out/err before anything is mounted.
    cpio.char_device("dev/console", 5, 1)
    cpio.file("bin/busybox", busybox.read_bytes(), executable=True)
    cpio.symlink("bin/sh", "busybox")
    cpio.file("init", init.read_bytes(), executable=True)
    cpio.file("etc/passwd", b"root:x:0:0:root:/tmp:/bin/sh\n")
    cpio.file("etc/group", b"root:x:0:\n")
    for name, path in modules:
        cpio.file(f"modules/{name}.ko", Path(path).read_bytes())
    cpio.file("modules/order", ("\n".join(name for name, _ in modules) + "\n").encode())
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(gzip.compress(cpio.finish(), compresslevel=6))
    mark(target, stamp)
    say(f"initramfs built: {target.relative_to(ROOT)} ({target.stat().st_size // 1024} KiB)")
    return target


# --- the meter and the system disk ---------------------------------------------------------------

def ensure_meter():
    source = VM_DIR / "meter.c"
    target = CACHE / "vouch-vm-meter"
    stamp = sha256_of(source, Path("/usr/include/modbus/modbus.h"))
    if not fresh(target, stamp):
        target.parent.mkdir(parents=True, exist_ok=True)
        run(["gcc", "-O2", "-Wall", "-Wextra", "-Werror", "-I/usr/include/modbus", "-o", str(target), str(source), "-lmodbus", "-lm"])
        mark(target, stamp)
        say(f"meter built: {target.relative_to(ROOT)}")
    return target


def shared_libraries(binary):
    """Every library `ldd` resolves for `binary`, plus the dynamic loader, as real files (none for a
    statically linked binary)."""
    probe = subprocess.run(["ldd", str(binary)], capture_output=True, text=True)
    if "not a dynamic executable" in probe.stdout + probe.stderr:
        return {}
    out = run(["ldd", str(binary)])
    libraries = {}
    for line in out.splitlines():
        line = line.strip()
        if "not found" in line:
            raise BuildError(f"{binary}: a library is missing on this host: {line} (scripts/setup installs them)")
        match = re.match(r"(\S+) => (/\S+)", line) or re.match(r"(/\S+) \(0x", line)
        if match:
            path = Path(match.groups()[-1])
            libraries[Path(match.group(1)).name] = path.resolve()
    if "ld-linux-x86-64.so.2" not in libraries:
        raise BuildError(f"ldd {binary} names no /lib64/ld-linux-x86-64.so.2 loader: not an x86-64 glibc binary?")
    return libraries


def ensure_system_image(bin_dir, meter):
    binaries = {name: Path(bin_dir) / name for name in FROM_BIN_DIR}
    binaries.update({"vouch-vm-meter": meter, "sqlite3": SQLITE3})
    return ensure_disk_image(CACHE / "system.img", binaries)


def ensure_disk_image(target, binaries, label="vouch-system", files=None):
    """An ext4 image at `target` with `binaries` ({name in /bin: host path}) in /bin, every library they
    need plus the loader in /lib, the CA bundle, and `files` ({path in the image: host path}); rebuilt
    only when one of them changed."""
    files = dict(files or {})
    target = Path(target)
    libraries = {}
    for binary in binaries.values():
        if not binary.exists():
            raise BuildError(f"{binary} does not exist")
        libraries.update(shared_libraries(binary))
    inputs = [*binaries.values(), *sorted(libraries.values()), CA_BUNDLE, *(files[k] for k in sorted(files))]
    stamp = sha256_of(*inputs, Path(__file__), extra=json.dumps(sorted(binaries)) + json.dumps(sorted(libraries)) + label
                      + json.dumps(sorted(files)))
    if fresh(target, stamp):
        return target
    started = time.monotonic()
    staging = target.parent / (target.stem + "-staging")
    if staging.exists():
        shutil.rmtree(staging)
    (staging / "bin").mkdir(parents=True)
    (staging / "lib").mkdir()
    for name, path in binaries.items():
        shutil.copy2(path, staging / "bin" / name)
    for soname, path in libraries.items():
        shutil.copy2(path, staging / "lib" / soname)
    (staging / "etc" / "ssl" / "certs").mkdir(parents=True)
    shutil.copy2(CA_BUNDLE, staging / "etc" / "ssl" / "certs" / CA_BUNDLE.name)
    for inside, path in files.items():
        (staging / inside).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, staging / inside)
    size = sum(p.stat().st_size for p in staging.rglob("*") if p.is_file())
    size_mib = size * 5 // 4 // (1 << 20) + 32  # room for ext4's own metadata
    if target.exists():
        target.unlink()
    run(["mkfs.ext4", "-q", "-F", "-L", label, "-O", "^has_journal", "-E", "root_owner=0:0",
         "-d", str(staging), str(target), f"{size_mib}M"])
    shutil.rmtree(staging)
    mark(target, stamp)
    say(f"system disk built: {target.relative_to(ROOT)} ({size_mib} MiB: {', '.join(binaries)}, "
        f"{len(libraries)} libraries) in {time.monotonic() - started:.1f} s")
    return target


@dataclass
class VM:
    kernel: Kernel
    initrd: Path
    system_image: Path


def ensure_vm(bin_dir):
    """Everything needed to boot the power-cut VM, built or taken from the cache."""
    for name in FROM_BIN_DIR:
        if not (Path(bin_dir) / name).exists():
            raise BuildError(f"{Path(bin_dir) / name} does not exist: build it first (swift build), or set VOUCH_BIN_DIR")
    CACHE.mkdir(parents=True, exist_ok=True)
    ensure_packages()
    kernel = ensure_kernel()
    initrd = ensure_initramfs(kernel)
    meter = ensure_meter()
    system_image = ensure_system_image(bin_dir, meter)
    return VM(kernel, initrd, system_image)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin-dir", default=os.environ.get("VOUCH_BIN_DIR") or str(ROOT / ".build" / "debug"))
    args = ap.parse_args()
    started = time.monotonic()
    try:
        vm = ensure_vm(args.bin_dir)
    except BuildError as e:
        print(f"vm: error: {e}", file=sys.stderr)
        return 1
    say(f"ready in {time.monotonic() - started:.1f} s: kernel {vm.kernel.abi}, {vm.initrd}, {vm.system_image}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
