#!/usr/bin/env python3
"""Builds (and caches) the qemu VM that scripts/gpio-vm-test boots: Debian's kernel with the kernel's
own GPIO simulator, gpio-sim, so the GPIO code runs against the real character-device uAPI.

Debian's kernels build neither gpio-sim (CONFIG_GPIO_SIM) nor the interrupt simulator it needs
(CONFIG_IRQ_SIM), so the module is built here, out of tree, for the exact kernel the VM boots. The
kernel itself, busybox, the Cpio writer, module dependency resolution and the ext4 system disk come
from scripts/vm/vmbuild.py (imported, not copied). What this adds, cached under .build/vm/
(git-ignored), each artefact with a stamp (the SHA-256 of what it was built from) as in vmbuild.py:

  gpio/src/<version>/{gpio-sim.c, gpiolib.h, irq_sim.c}
      The three source files, from `linux-source-6.1` at the version of the booted kernel (read from
      the "Debian 6.1.x-y" in its version string; `apt-get download linux-source-6.1=<version>`, an
      exact name and version, never a glob). That .deb is ~140 MB and holds the whole tree as one
      .tar.xz: it is streamed through dpkg-deb and Python's lzma, only these three files are written,
      and the .deb is deleted (about 10 s, once per kernel version).
  gpio/<abi>/gpio_sim.ko
      gpio-sim.c + irq_sim.c linked into one module by kbuild against the installed
      `linux-headers-<abi>` (installed with apt-get if missing: the headers Debian builds its out-of-tree
      modules against, vermagic and modversions included), debug info stripped. One change to the
      sources: irq_sim.c calls `handle_simple_irq(irq_to_desc(irqnum))` and irq_to_desc is not exported
      to modules, so that becomes `generic_handle_irq(irqnum)` (the same for a simple irq). The kernel
      does not enforce module signatures (loading it only taints). Two seconds to build.
  gpio/<abi>/modules/*.ko, order.json
      What gpio_sim.ko needs at load, read from its .modinfo `depends` (configfs) and resolved with
      vmbuild's module_load_order from `linux-image-<abi>` (fetched again by exact name, unpacked,
      deleted: vmbuild's kernel cache keeps only the modules the power-cut VM needs).
  gpio-initrd.gz
      vmbuild's initramfs with scripts/vm/gpio-init as /init and the modules in load order: virtio and
      ext4 (to mount the system disk), configfs, gpio_sim.
  gpio/vouch-gpio-probe
      scripts/vm/gpio_probe.c, the C baseline and self-check of the bed, linked statically against
      libgpiod v1 (libgpiod-dev's libgpiod.a), so it needs nothing from the disk.
  gpio-system.img
      vmbuild's ext4 system disk with /bin/vouch-gpio-probe and, when VOUCH_BIN_DIR has them,
      /bin/vouch-gpio-vmtest and /bin/vouch (Swift debug builds: every library `ldd` lists plus the
      loader go to /lib). A changed binary rebuilds only this.

A cached run only hashes inputs: about a second (the two debug binaries are most of it).

Used as a module by scripts/gpio-vm-test (`ensure_gpio_vm(bin_dir)`), or on its own to build and print
what it built: scripts/vm/gpiosim.py [--bin-dir DIR]
"""
import argparse
import json
import lzma
import os
import re
import shutil
import subprocess
import sys
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import vmbuild  # noqa: E402
from vmbuild import BuildError, fresh, mark, run, say, sha256_of  # noqa: E402

ROOT = vmbuild.ROOT
VM_DIR = vmbuild.VM_DIR
CACHE = vmbuild.CACHE
GPIO_CACHE = CACHE / "gpio"

# Host packages: qemu, busybox, mkfs.ext4 (as vmbuild), gcc/make/binutils for the module and the
# probe, libgpiod-dev for the probe. linux-headers-<abi> is added once the ABI is known.
APT_PACKAGES = ["qemu-system-x86", "busybox-static", "e2fsprogs", "gcc", "make", "binutils", "libc6-dev",
                "libgpiod-dev", "ca-certificates"]

# Source file in linux-source -> name in the module's build directory (gpio-sim.c is renamed
# because the module, gpio-sim.ko, is made of two objects and kbuild wants gpio-sim.o for itself).
SIM_SOURCES = {
    "drivers/gpio/gpio-sim.c": "gpio-sim-main.c",
    "drivers/gpio/gpiolib.h": "gpiolib.h",
    "kernel/irq/irq_sim.c": "irq_sim.c",
}
IRQ_TO_DESC_CALL = "handle_simple_irq(irq_to_desc(irqnum));"
IRQ_TO_DESC_FIX = "generic_handle_irq(irqnum);"
KBUILD = "obj-m := gpio-sim.o\ngpio-sim-y := gpio-sim-main.o irq_sim.o\n"

LIBGPIOD_A = Path("/usr/lib/x86_64-linux-gnu/libgpiod.a")
GPIOD_H = Path("/usr/include/gpiod.h")

# The binaries from VOUCH_BIN_DIR the disk carries when they exist.
FROM_BIN_DIR = ["vouch-gpio-vmtest", "vouch"]


def kernel_source_version(kernel):
    """The Debian version of the source the booted kernel was built from, e.g. 6.1.192-3."""
    if kernel.vmlinux is not None:
        with open(kernel.vmlinux, "rb") as f:
            found = re.search(rb"Linux version \S+ [^\n\0]*? Debian (\d[\w.+~-]*) \(", f.read())
        if found:
            return found.group(1).decode()
    # The compressed kernel hides its version string: take the version apt would install today.
    out = run(["apt-cache", "policy", f"linux-image-{kernel.abi}"])
    found = re.search(r"Candidate:\s*(\S+)", out)
    if not found or found.group(1) == "(none)":
        raise BuildError(f"cannot tell which source version linux-image-{kernel.abi} was built from")
    return found.group(1)


def ensure_sim_sources(kernel):
    version = kernel_source_version(kernel)
    series = ".".join(kernel.abi.split(".")[:2])  # 6.1.0-57-amd64 -> 6.1
    package = f"linux-source-{series}"
    target = GPIO_CACHE / "src" / version
    done = target / "complete"
    if done.exists() and all((target / Path(p).name).exists() for p in SIM_SOURCES):
        return target, version
    started = time.monotonic()
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    download = GPIO_CACHE / "download"
    if download.exists():
        shutil.rmtree(download)
    say(f"downloading {package}={version} (~140 MB) for gpio-sim's sources")
    deb = vmbuild.download_deb(package, download, version)
    # The .deb holds usr/src/linux-source-6.1.tar.xz: stream it, keep three files, never unpack the tree.
    wanted = {f"linux-source-{series}/{p}": Path(p).name for p in SIM_SOURCES}
    dpkg = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(deb)], stdout=subprocess.PIPE)
    try:
        with tarfile.open(fileobj=dpkg.stdout, mode="r|") as outer:
            for member in outer:
                if not member.name.endswith(f"usr/src/linux-source-{series}.tar.xz"):
                    continue
                with lzma.open(outer.extractfile(member)) as xz, tarfile.open(fileobj=xz, mode="r|") as inner:
                    for entry in inner:
                        if entry.name in wanted and entry.isfile():
                            (target / wanted.pop(entry.name)).write_bytes(inner.extractfile(entry).read())
                            if not wanted:
                                break
                break
    finally:
        dpkg.stdout.close()
        dpkg.kill()
        dpkg.wait()
    if wanted:
        raise BuildError(f"{deb.name} has no {', '.join(sorted(wanted))}")
    shutil.rmtree(download)
    done.write_text(f"{package}={version}\n")
    say(f"gpio-sim sources cached in {target.relative_to(ROOT)} ({time.monotonic() - started:.1f} s)")
    return target, version


def headers_dir(abi):
    return Path("/usr/src") / f"linux-headers-{abi}"


def ensure_sim_module(kernel, sources):
    headers = headers_dir(kernel.abi)
    if not (headers / "Makefile").exists():
        raise BuildError(f"{headers} is missing: apt-get install linux-headers-{kernel.abi}")
    kdir = GPIO_CACHE / kernel.abi
    target = kdir / "gpio_sim.ko"
    inputs = [sources / Path(p).name for p in SIM_SOURCES] + [headers / "Module.symvers", headers / ".config"]
    stamp = sha256_of(*inputs, extra=KBUILD + IRQ_TO_DESC_CALL + IRQ_TO_DESC_FIX)
    if fresh(target, stamp):
        return target
    started = time.monotonic()
    build = kdir / "build"
    if build.exists():
        shutil.rmtree(build)
    build.mkdir(parents=True)
    for source, name in SIM_SOURCES.items():
        shutil.copy2(sources / Path(source).name, build / name)
    irq_sim = (build / "irq_sim.c").read_text()
    if irq_sim.count(IRQ_TO_DESC_CALL) != 1:
        raise BuildError(f"irq_sim.c no longer calls `{IRQ_TO_DESC_CALL}` exactly once: see how it fires the "
                         f"simulated irq now and update IRQ_TO_DESC_CALL in {Path(__file__).name}")
    (build / "irq_sim.c").write_text(irq_sim.replace(IRQ_TO_DESC_CALL, IRQ_TO_DESC_FIX))
    (build / "Kbuild").write_text(KBUILD)
    run(["make", "-C", str(headers), f"M={build}", f"-j{os.cpu_count() or 1}", "modules"])
    shutil.copy2(build / "gpio-sim.ko", target)
    run(["strip", "--strip-debug", str(target)])
    vermagic = vmbuild.elf_modinfo(target).get("vermagic", "")
    if not vermagic.startswith(kernel.abi + " "):
        raise BuildError(f"built gpio-sim.ko for '{vermagic}', not for {kernel.abi}")
    shutil.rmtree(build)
    mark(target, stamp)
    say(f"gpio-sim module built for {kernel.abi}: {target.relative_to(ROOT)} ({time.monotonic() - started:.1f} s)")
    return target


def ensure_load_modules(kernel, module):
    """[(name, path)] of what `module` depends on (from its modinfo), in load order, from linux-image-<abi>."""
    needed = [d.replace("-", "_") for d in vmbuild.elf_modinfo(module).get("depends", "").split(",") if d]
    mdir = GPIO_CACHE / kernel.abi / "modules"
    order_file = mdir / "order.json"
    if order_file.exists():
        cached = json.loads(order_file.read_text())
        if set(needed) <= set(cached["wanted"]) and all((mdir / f"{n}.ko").exists() for n in cached["order"]):
            return [(n, mdir / f"{n}.ko") for n in cached["order"]]
    started = time.monotonic()
    package = f"linux-image-{kernel.abi}"
    download = GPIO_CACHE / "download"
    if download.exists():
        shutil.rmtree(download)
    say(f"downloading {package} (~70 MB) for the modules gpio-sim needs: {', '.join(needed) or 'none'}")
    deb = vmbuild.download_deb(package, download)
    unpacked = download / "unpacked"
    run(["dpkg-deb", "-x", str(deb), str(unpacked)])
    order = vmbuild.module_load_order(vmbuild.unpacked_modules_dir(unpacked, deb), needed)
    if mdir.exists():
        shutil.rmtree(mdir)
    mdir.mkdir(parents=True)
    for name, path in order:
        shutil.copy2(path, mdir / f"{name}.ko")
    order_file.write_text(json.dumps({"wanted": needed, "order": [n for n, _ in order]}))
    shutil.rmtree(download)
    say(f"modules for gpio-sim cached in {mdir.relative_to(ROOT)}: {' '.join(n for n, _ in order)} "
        f"({time.monotonic() - started:.1f} s)")
    return [(n, mdir / f"{n}.ko") for n, _ in order]


def ensure_probe():
    source = VM_DIR / "gpio_probe.c"
    target = GPIO_CACHE / "vouch-gpio-probe"
    stamp = sha256_of(source, LIBGPIOD_A, GPIOD_H)
    if not fresh(target, stamp):
        target.parent.mkdir(parents=True, exist_ok=True)
        run(["gcc", "-O2", "-Wall", "-Wextra", "-Werror", "-static", "-o", str(target), str(source), str(LIBGPIOD_A)])
        mark(target, stamp)
        say(f"C probe built: {target.relative_to(ROOT)}")
    return target


@dataclass
class GPIOVM:
    kernel: vmbuild.Kernel
    initrd: Path
    system_image: Path
    programs: list  # names in the system disk's /bin
    source_version: str


def ensure_gpio_vm(bin_dir):
    """Everything needed to boot the GPIO VM, built or taken from the cache."""
    CACHE.mkdir(parents=True, exist_ok=True)
    vmbuild.ensure_packages(APT_PACKAGES)
    kernel = vmbuild.ensure_kernel()
    vmbuild.ensure_packages([f"linux-headers-{kernel.abi}"])
    sources, version = ensure_sim_sources(kernel)
    module = ensure_sim_module(kernel, sources)
    loaded_first = {name for name, _ in kernel.modules}
    modules = list(kernel.modules)
    modules += [(n, p) for n, p in ensure_load_modules(kernel, module) if n not in loaded_first]
    modules.append(("gpio_sim", module))
    initrd = vmbuild.ensure_initramfs(kernel, init=VM_DIR / "gpio-init", modules=modules,
                                      target=CACHE / "gpio-initrd.gz")
    binaries = {"vouch-gpio-probe": ensure_probe()}
    for name in FROM_BIN_DIR:
        if (Path(bin_dir) / name).exists():
            binaries[name] = Path(bin_dir) / name
    # The sim board's file, for `vouch gpio list --board sim` against the chips gpio-init makes.
    files = {"boards/sim/board.toml": ROOT / "boards" / "sim" / "board.toml"}
    system_image = vmbuild.ensure_disk_image(CACHE / "gpio-system.img", binaries, label="vouch-gpio", files=files)
    return GPIOVM(kernel, initrd, system_image, sorted(binaries), version)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin-dir", default=os.environ.get("VOUCH_BIN_DIR") or str(ROOT / ".build" / "debug"))
    args = ap.parse_args()
    started = time.monotonic()
    try:
        vm = ensure_gpio_vm(args.bin_dir)
    except BuildError as e:
        print(f"vm: error: {e}", file=sys.stderr)
        return 1
    say(f"ready in {time.monotonic() - started:.1f} s: kernel {vm.kernel.abi} ({vm.source_version}), {vm.initrd}, "
        f"{vm.system_image} ({', '.join(vm.programs)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
