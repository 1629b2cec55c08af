"""A clean Debian chroot made with debootstrap (minbase, from the mirror this machine's apt
sources name), cached as a tarball under the gmemtest cache so repeated runs unpack it in seconds.
Run as a script to build the cache: /usr/bin/python3 tests/debchroot.py [SUITE]"""
import os
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from gmemharness import cache, debapt  # noqa: E402

SUITE = "bookworm"


def tarball(suite: str = SUITE) -> Path:
    """The cached chroot tarball, debootstrapped on first use (a few minutes)."""
    out = Path(os.environ.get("GMEMTEST_CHROOT_CACHE", cache.cache_root())) / f"chroot-{suite}-minbase.tar"
    if out.is_file():
        return out
    if not shutil.which("debootstrap"):
        raise RuntimeError("debootstrap is not installed: apt-get install debootstrap")
    mirror = debapt.mirror_uris()[0]
    with cache.staged_dir(out.with_suffix(".d")) as root:
        subprocess.run(["debootstrap", "--variant=minbase", suite, str(root), mirror], check=True,
                       stdout=subprocess.DEVNULL)
        with cache.staged_file(out) as tmp:
            subprocess.run(["tar", "-cf", str(tmp), "-C", str(root), "."], check=True)
    shutil.rmtree(out.with_suffix(".d"), ignore_errors=True)
    return out


def unpack(dest: Path, suite: str = SUITE) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    subprocess.run(["tar", "-xf", str(tarball(suite)), "-C", str(dest)], check=True)
    shutil.copy("/etc/resolv.conf", dest / "etc/resolv.conf")
    return dest


def run_in(root: Path, script: str, timeout: float = 900) -> subprocess.CompletedProcess:
    """`script` (sh) inside the chroot with /proc, /sys and /dev mounted in a private mount
    namespace: the mounts end with it, whatever happens."""
    inner = (f"mount -t proc proc {root}/proc && mount -t sysfs sysfs {root}/sys && "
             f"mount --rbind /dev {root}/dev && exec chroot {root} /bin/sh -c \"$0\"")
    return subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", inner, script],
                          capture_output=True, text=True, timeout=timeout,
                          env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "DEBIAN_FRONTEND": "noninteractive",
                               "LC_ALL": "C"})


if __name__ == "__main__":
    print(tarball(sys.argv[1] if len(sys.argv) > 1 else SUITE))
