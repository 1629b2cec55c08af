"""Kernel checks and image building, on synthetic kernels and module trees."""
import shlex
from pathlib import Path

import pytest

from conftest import FAKE_SUITE, write_bzimage, write_modules
from gmemharness import bzimage, cpio, image
from gmemharness.errors import InfraError
from gmemharness.kernelsource import from_bzimage


def test_a_valid_bzimage_gives_its_release(tmp_path):
    info = bzimage.inspect(write_bzimage(tmp_path / "bzImage", release="7.2.13+deb14-cloud-amd64"))
    assert info.release == "7.2.13+deb14-cloud-amd64"


def put(path, data):
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("make, message", [
    (lambda p: p, "does not exist"),
    (lambda p: put(p, b"\x7fELF" + bytes(4000)), "ELF"),
    (lambda p: write_bzimage(p, arch_magic=b"ARM\x64"), "arm64"),
    (lambda p: put(p, bytes(4096)), "not an x86 bzImage"),
    (lambda p: put(p, write_bzimage(p).read_bytes()[:5000]), "truncated"),
    (lambda p: put(p, b"tiny"), "only 4 bytes"),
])
def test_bad_kernel_images_are_refused_with_the_reason(tmp_path, make, message):
    with pytest.raises(InfraError, match=message):
        bzimage.inspect(make(tmp_path / "bzImage"))


def test_a_kernel_whose_config_lacks_kvm_is_refused(tmp_path):
    config = tmp_path / "config"
    config.write_text("CONFIG_64BIT=y\n# CONFIG_KVM is not set\n")
    with pytest.raises(InfraError, match="without KVM"):
        from_bzimage(write_bzimage(tmp_path / "bzImage"), config=config)


def test_a_modules_tree_without_kvm_is_refused(tmp_path):
    mods = write_modules(tmp_path / "mods", kvm=False)
    (mods / "lib/modules/6.99.0-test/modules.builtin").write_text("kernel/net/other.ko\n")
    with pytest.raises(InfraError, match="no KVM"):
        from_bzimage(write_bzimage(tmp_path / "bzImage"), mods)


def test_modules_for_another_release_are_refused_naming_what_is_there(tmp_path):
    mods = write_modules(tmp_path / "mods", release="6.1.0-other")
    with pytest.raises(InfraError, match="6.1.0-other"):
        from_bzimage(write_bzimage(tmp_path / "bzImage"), mods)


def test_the_image_holds_busybox_init_suite_and_kvm_modules_in_load_order(tmp_path, fake_kernel):
    out = image.build_base(image.ImageSpec(fake_kernel, [FAKE_SUITE]), tmp_path / "base.cpio")
    files = cpio.read_names(out.read_bytes())
    assert {"init", "bin/busybox", "gmemtest/fake_suite.sh"} <= files.keys()
    assert files["lib/modules/kernel/arch/x86/kvm/kvm.ko"] == b"module kernel/arch/x86/kvm/kvm.ko.xz"
    assert [line.split()[0] for line in files["etc/gmemtest/modules"].decode().splitlines()] == [
        "irqbypass", "kvm", "kvm_amd"]
    assert not any(name.endswith(".xz") for name in files)


def test_a_requested_module_that_does_not_exist_fails_the_build_and_writes_nothing(tmp_path, fake_kernel):
    out = tmp_path / "base.cpio"
    with pytest.raises(InfraError, match="no module vfio"):
        image.build_base(image.ImageSpec(fake_kernel, [FAKE_SUITE], ["vfio"]), out)
    assert list(tmp_path.glob("*base.cpio*")) == []


def test_the_boot_layer_passes_arguments_through_the_shell_intact(tmp_path):
    args = ["--gtest_filter=A.*-A.b", "--x=it's quoted"]
    conf = cpio.read_names(image.boot_layer("gmemtest", args))["etc/gmemtest/boot.conf"].decode()
    values = dict(line.split("=", 1) for line in conf.splitlines())
    assert shlex.split(shlex.split(values["GMEMTEST_ARGS"])[0]) == args
    assert values["GMEMTEST_STREAM"] == image.RESULT_PORT
    assert shlex.split(values["GMEMTEST_SCRATCH_DEVICE"]) == [""]   # no disk unless the guest gets one


def test_the_boot_layer_names_the_scratch_device_for_init_to_mount():
    conf = cpio.read_names(image.boot_layer("gmemtest", [], scratch_device="/dev/vda"))["etc/gmemtest/boot.conf"]
    assert "GMEMTEST_SCRATCH_DEVICE=/dev/vda\n" in conf.decode()


def test_the_scratch_disk_modules_follow_kvm_with_their_dependencies_first(tmp_path):
    import lzma
    moddir = tmp_path / "mods/lib/modules/6.99.0-test"
    deps = {"kernel/arch/x86/kvm/kvm.ko.xz": [], "kernel/fs/mbcache.ko.xz": [], "kernel/fs/jbd2/jbd2.ko.xz": [],
            "kernel/fs/ext4/ext4.ko.xz": ["kernel/fs/mbcache.ko.xz", "kernel/fs/jbd2/jbd2.ko.xz"],
            "kernel/drivers/block/virtio_blk.ko.xz": []}
    for rel in deps:
        (moddir / rel).parent.mkdir(parents=True, exist_ok=True)
        (moddir / rel).write_bytes(lzma.compress(b"m"))
    (moddir / "modules.dep").write_text("".join(f"{k}: {' '.join(v)}\n" for k, v in deps.items()))
    kernel = from_bzimage(write_bzimage(tmp_path / "bzImage"), tmp_path / "mods", label="test")
    out = image.build_base(image.ImageSpec(kernel, [FAKE_SUITE]), tmp_path / "base.cpio")
    modules = cpio.read_names(out.read_bytes())["etc/gmemtest/modules"].decode()
    # virtio_pci is built in here (no file): skipped, the others in dependency order.
    assert [line.split()[0] for line in modules.splitlines()] == ["kvm", "virtio_blk", "mbcache", "jbd2", "ext4"]


def test_a_dynamic_binary_brings_its_libraries_and_loader(tmp_path, fake_kernel):
    out = image.build_base(image.ImageSpec(fake_kernel, [FAKE_SUITE, Path("/bin/ls")]),
                           tmp_path / "base.cpio")
    names = cpio.read_names(out.read_bytes()).keys()
    assert "gmemtest/ls" in names
    assert any("libc.so" in n for n in names) and any("ld-linux" in n for n in names)


def test_cpio_round_trip_keeps_files_links_and_parent_directories(tmp_path):
    with open(tmp_path / "a.cpio", "wb") as f:
        w = cpio.CpioWriter(f)
        w.file("a/b/c.txt", b"hello")
        w.symlink("bin/sh", "busybox")
        w.close()
    names = cpio.read_names((tmp_path / "a.cpio").read_bytes())
    assert names == {"a": b"", "a/b": b"", "a/b/c.txt": b"hello", "bin": b"", "bin/sh": b"busybox"}
