"""The guest's scratch disk: a sparse image with an ext4 filesystem the guest can mount."""
import subprocess

import pytest

from gmemharness import scratch_disk
from gmemharness.errors import InfraError


def test_the_disk_is_a_sparse_ext4_image_without_journal_or_checksums(tmp_path):
    disk = scratch_disk.create(tmp_path / "scratch.img")
    assert disk.stat().st_size == scratch_disk.SIZE_MB << 20
    assert disk.stat().st_blocks * 512 < 4 << 20          # sparse: mkfs wrote little
    with open(disk, "rb") as f:
        f.seek(1024 + 56)
        assert f.read(2) == b"\x53\xef"                     # the ext2/3/4 superblock magic
    features = subprocess.run(["dumpe2fs", "-h", str(disk)], capture_output=True, text=True).stdout
    line = next(l for l in features.splitlines() if l.startswith("Filesystem features:"))
    assert "extent" in line and "has_journal" not in line and "metadata_csum" not in line


def test_an_existing_file_is_replaced(tmp_path):
    (tmp_path / "scratch.img").write_bytes(b"old" * 1000)
    disk = scratch_disk.create(tmp_path / "scratch.img", size_mb=8)
    assert disk.stat().st_size == 8 << 20


def test_without_mkfs_the_error_says_what_to_install(monkeypatch, tmp_path):
    monkeypatch.setattr(scratch_disk.shutil, "which", lambda name: None)
    monkeypatch.setattr(scratch_disk.Path, "is_file", lambda self: False)
    with pytest.raises(InfraError, match="e2fsprogs"):
        scratch_disk.create(tmp_path / "scratch.img")


def test_a_failed_mkfs_leaves_no_file(monkeypatch, tmp_path):
    monkeypatch.setattr(scratch_disk, "mkfs_ext4", lambda: "false")
    with pytest.raises(InfraError, match="mkfs.ext4"):
        scratch_disk.create(tmp_path / "scratch.img")
    assert not (tmp_path / "scratch.img").exists()
