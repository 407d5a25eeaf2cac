"""Build (and cache) the one VM image every interop role boots: a kernel and a zstd cpio initramfs.

The root file system is ``debootstrap --variant=minbase bookworm`` with the real PPTP client
(pptp-linux + pppd), the reference server (poptop pptpd), iperf3 and a few tools, plus the PPP/MPPE
kernel modules taken from the Debian kernel package behind ``linux-image-amd64``.  The whole tree is
the initramfs, so the VM needs no disk.  ``/init`` (below) reads ``pptplab.*`` words from the kernel
command line, loads the modules, configures eth0, mounts the host's 9p share on ``/share``, starts
busybox syslogd writing to ``/share/messages``, runs ``/share/run.sh`` and powers off.

The image is cached in ``$PYPPTP_INTEROP_CACHE`` (default ``~/.cache/pypptp-interop``) under a
hash of its inputs: this file, the Debian mirror and suite, and the kernel package's version.
The Debian mirror is read from this machine's apt sources, never hard-coded.

Run it alone with ``python3 tests/interop/build_image.py`` (prints the image directory).
"""

from __future__ import annotations

import hashlib
import inspect
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

SUITE = "bookworm"
PACKAGES = [
    "pptp-linux",
    "ppp",
    "pptpd",
    "iperf3",
    "iproute2",
    "kmod",
    "procps",
    "iputils-ping",
    "busybox-static",
    "netbase",
]
MODULES = [
    "ppp_generic",
    "ppp_async",
    "ppp_synctty",
    "ppp_mppe",
    "libarc4",
    "ppp_deflate",
    "bsd_comp",
    "pptp",
    "pppox",
    "gre",
    "tun",
    "virtio_net",
    "virtio_pci",
    "9p",
    "9pnet_virtio",
]
STRIP = [
    "usr/share/doc",
    "usr/share/man",
    "usr/share/info",
    "usr/share/locale",
    "usr/share/i18n",
    "usr/share/zoneinfo",
    "usr/lib/x86_64-linux-gnu/gconv",
    "var/lib/apt/lists",
    "var/cache/apt",
    "var/cache/debconf",
    "var/log",
]

INIT = r"""#!/bin/bash
# pypptp interop lab /init: one image, every role; the role's script arrives on the 9p share.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev 2>/dev/null
mkdir -p /dev/pts /run /tmp /share /var/log /var/run
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /tmp
exec </dev/console >/dev/console 2>&1
for m in ppp_generic ppp_async ppp_synctty ppp_mppe ppp_deflate bsd_comp virtio_net virtio_pci 9p 9pnet_virtio; do
    modprobe "$m" 2>/dev/null
done
[ -e /dev/ppp ] || mknod /dev/ppp c 108 0
[ -e /dev/net/tun ] || { mkdir -p /dev/net; mknod /dev/net/tun c 10 200; }
LAB_ADDR=""; LAB_NAME=lab
for word in $(cat /proc/cmdline); do
    case "$word" in
        pptplab.addr=*) LAB_ADDR="${word#*=}" ;;
        pptplab.name=*) LAB_NAME="${word#*=}" ;;
    esac
done
hostname "$LAB_NAME"
ip link set lo up
sysctl -qw net.ipv6.conf.eth0.disable_ipv6=1
ip link set eth0 up
[ -n "$LAB_ADDR" ] && ip addr add "$LAB_ADDR" dev eth0
if mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 share /share; then
    busybox syslogd -O /share/messages
    echo "LAB BOOTED $LAB_NAME"
    bash /share/run.sh 2>&1 | tee /share/run.out
else
    echo "FAIL cannot mount the 9p share"
fi
sync
echo "LAB POWEROFF"
echo o > /proc/sysrq-trigger
sleep 10
"""


def cache_root() -> Path:
    return Path(os.environ.get("PYPPTP_INTEROP_CACHE") or Path.home() / ".cache" / "pypptp-interop")


def _run(argv: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(argv, capture_output=True, text=True, check=False, **kwargs)  # type: ignore[call-overload]
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def _sources_entries() -> list[tuple[str, list[str], list[str]]]:
    """(uri, suites, components) for every ``deb`` entry of this machine's apt sources."""
    entries: list[tuple[str, list[str], list[str]]] = []
    apt = Path("/etc/apt")
    one_line = [apt / "sources.list", *sorted((apt / "sources.list.d").glob("*.list"))]
    for path in one_line:
        if not path.is_file():
            continue
        for raw in path.read_text(errors="replace").splitlines():
            line = raw.split("#", 1)[0].strip()
            line = re.sub(r"\[[^]]*\]", " ", line)
            words = line.split()
            if len(words) >= 4 and words[0] == "deb":
                entries.append((words[1], [words[2]], words[3:]))
    for path in sorted((apt / "sources.list.d").glob("*.sources")):
        for stanza in re.split(r"\n\s*\n", path.read_text(errors="replace")):
            fields: dict[str, str] = {}
            for raw in stanza.splitlines():
                if raw.startswith("#") or ":" not in raw:
                    continue
                key, value = raw.split(":", 1)
                fields[key.strip().lower()] = value.strip()
            if "deb" not in fields.get("types", "").split() or fields.get("enabled", "yes").lower() == "no":
                continue
            for uri in fields.get("uris", "").split():
                entries.append((uri, fields.get("suites", "").split(), fields.get("components", "").split()))
    return entries


def debian_mirror(suite: str = SUITE) -> str:
    """The mirror this machine's apt uses for ``suite`` main (read now, never hard-coded)."""
    for uri, suites, components in _sources_entries():
        if suite in suites and "main" in components:
            return uri
    raise RuntimeError(f"no apt source for {suite} main in /etc/apt/sources.list{{,.d/*}}")


@dataclass(frozen=True)
class KernelPackage:
    name: str
    version: str


def kernel_package() -> KernelPackage:
    """The versioned package ``linux-image-amd64`` depends on, as this machine's apt sees it."""
    out = _run(["apt-cache", "depends", "linux-image-amd64"]).stdout
    match = re.search(r"Depends:\s*(linux-image-\S+)", out)
    if match is None:
        raise RuntimeError(f"cannot resolve linux-image-amd64:\n{out}")
    name = match.group(1)
    show = _run(["apt-cache", "show", "--no-all-versions", name]).stdout
    version = re.search(r"^Version:\s*(\S+)", show, re.M)
    return KernelPackage(name, version.group(1) if version else "?")


def image_key(mirror: str, kernel: KernelPackage) -> str:
    """A hash of everything the image is made from: packages, modules, /init, the recipe, mirror, kernel."""
    digest = hashlib.sha256()
    recipe = [SUITE, *PACKAGES, "|", *MODULES, "|", *STRIP, "|", INIT, inspect.getsource(build)]
    digest.update("\n".join(recipe).encode())
    digest.update(f"{mirror}\n{SUITE}\n{kernel.name}\n{kernel.version}\n".encode())
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class Image:
    directory: Path

    @property
    def kernel(self) -> Path:
        return self.directory / "vmlinuz"

    @property
    def initrd(self) -> Path:
        return self.directory / "initramfs.img"


def _module_closure(moddir: Path, wanted: list[str]) -> list[str]:
    """Relative paths of ``wanted`` modules (those not built in) and everything they depend on."""
    deps: dict[str, list[str]] = {}
    by_name: dict[str, str] = {}
    for line in (moddir / "modules.dep").read_text().splitlines():
        path, _, rest = line.partition(":")
        deps[path] = rest.split()
        stem = Path(path).name.split(".ko")[0].replace("-", "_")
        by_name[stem] = path
    todo = [by_name[name] for name in wanted if name in by_name]
    seen: set[str] = set()
    while todo:
        path = todo.pop()
        if path not in seen:
            seen.add(path)
            todo.extend(deps.get(path, []))
    return sorted(seen)


def build(dest: Path, mirror: str, kernel: KernelPackage, log: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="pypptp-image-") as tmp:
        work = Path(tmp)
        root = work / "root"
        with log.open("a") as out:
            out.write(f"debootstrap {SUITE} from {mirror}\n")
            out.flush()
            subprocess.run(
                ["debootstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}", SUITE, str(root), mirror],
                stdout=out,
                stderr=subprocess.STDOUT,
                check=True,
            )
        kdir = work / "kernel"
        kdir.mkdir()
        _run(["apt-get", "download", f"{kernel.name}={kernel.version}"], cwd=kdir)
        deb = next(kdir.glob("*.deb"))
        _run(["dpkg-deb", "-x", str(deb), str(kdir / "x")])
        vmlinuz = next((kdir / "x" / "boot").glob("vmlinuz-*"))
        release = vmlinuz.name.removeprefix("vmlinuz-")
        dst_mods = root / "lib" / "modules" / release
        dst_mods.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(kdir / "x" / "lib" / "modules" / release, dst_mods)
        _run(["chroot", str(root), "depmod", release])
        keep = set(_module_closure(dst_mods, MODULES))
        for module in dst_mods.rglob("*.ko*"):
            if str(module.relative_to(dst_mods)) not in keep:
                module.unlink()
        _run(["chroot", str(root), "depmod", release])
        for rel in STRIP:
            shutil.rmtree(root / rel, ignore_errors=True)
        (root / "var" / "log").mkdir(exist_ok=True)
        init = root / "init"
        init.write_text(INIT)
        init.chmod(0o755)
        dest.mkdir(parents=True, exist_ok=True)
        partial = dest / "initramfs.img.part"
        with partial.open("wb") as img:
            find = subprocess.Popen(["find", ".", "-print0"], cwd=root, stdout=subprocess.PIPE)
            cpio = subprocess.Popen(
                ["cpio", "--null", "-o", "-H", "newc", "--quiet"],
                cwd=root,
                stdin=find.stdout,
                stdout=subprocess.PIPE,
            )
            assert find.stdout is not None
            find.stdout.close()
            zstd = subprocess.Popen(["zstd", "-q", "-6", "-T0", "-c"], stdin=cpio.stdout, stdout=img)
            assert cpio.stdout is not None
            cpio.stdout.close()
            if zstd.wait() != 0 or cpio.wait() != 0 or find.wait() != 0:
                raise RuntimeError("packing the initramfs failed")
        shutil.copy2(vmlinuz, dest / "vmlinuz")
        partial.rename(dest / "initramfs.img")


def ensure_image() -> Image:
    """The cached image for the current inputs, built first if missing."""
    mirror = debian_mirror()
    kernel = kernel_package()
    dest = cache_root() / f"image-{image_key(mirror, kernel)}"
    image = Image(dest)
    if image.kernel.exists() and image.initrd.exists():
        return image
    dest.mkdir(parents=True, exist_ok=True)
    build(dest, mirror, kernel, dest / "build.log")
    return image


if __name__ == "__main__":
    print(ensure_image().directory)
    sys.exit(0)
