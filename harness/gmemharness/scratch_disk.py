"""The scratch disk every test guest gets: a sparse raw image holding an empty ext4 filesystem,
attached as virtio-blk. /init mounts it and names the mount point in GMEMTEST_DIRECT_IO_DIR, so
the suite's O_DIRECT cases pin their buffers through a real bio (the initramfs is tmpfs, which
copies O_DIRECT through the page cache).

Made with mkfs.ext4 on a plain file: no root, no loop device. Features that would make the guest
kernel need more than ext4 itself are left out: no journal (jbd2 only matters on a Debian kernel
as a module dependency) and no metadata checksums (they need the crc32c crypto driver, which a
Debian kernel may carry only as a module that nothing would load)."""
import shutil
import subprocess
from pathlib import Path

from .errors import InfraError

SIZE_MB = 64
GUEST_DEVICE = "/dev/vda"      # the first (only) virtio-blk disk
DRIVE_ID = "scratch"
MKFS_FEATURES = "^has_journal,^metadata_csum,^metadata_csum_seed,^orphan_file"
MODULES = ("virtio_pci", "virtio_blk", "ext4")   # loaded in this order (with their dependencies)


def mkfs_ext4() -> str:
    for candidate in (shutil.which("mkfs.ext4"), "/usr/sbin/mkfs.ext4", "/sbin/mkfs.ext4"):
        if candidate and Path(candidate).is_file():
            return candidate
    raise InfraError("mkfs.ext4 not found: install e2fsprogs (apt-get install e2fsprogs); the guest's "
                     "scratch disk for O_DIRECT cases is formatted with it")


def create(path: Path, size_mb: int = SIZE_MB) -> Path:
    """A sparse `size_mb` MiB file at `path` holding an empty ext4 filesystem."""
    path.unlink(missing_ok=True)
    with open(path, "wb") as f:
        f.truncate(size_mb << 20)
    proc = subprocess.run([mkfs_ext4(), "-q", "-F", "-L", "gmemtest", "-b", "4096", "-O", MKFS_FEATURES,
                           "-E", "lazy_itable_init=1", str(path)], capture_output=True, text=True)
    if proc.returncode != 0:
        path.unlink(missing_ok=True)
        raise InfraError(f"mkfs.ext4 {path} failed: {(proc.stderr or proc.stdout).strip()[-300:]}")
    return path


def qemu_args(path: Path) -> list[str]:
    # cache=unsafe: the disk is thrown away after the boot; the guest's O_DIRECT still goes
    # through its own block layer, which is what the cases test.
    return ["-drive", f"file={path},format=raw,if=none,id={DRIVE_ID},cache=unsafe",
            "-device", f"virtio-blk-pci,drive={DRIVE_ID}"]
