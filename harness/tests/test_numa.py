"""Two NUMA nodes for kernels without ACPI NUMA: numa=fake=2 where CONFIG_NUMA_EMU is built in."""
import dataclasses
import json

import pytest

from conftest import FAKE_QEMU, FAKE_SUITE
from gmemharness import numa, qemu, session


@pytest.mark.parametrize("config,args", [
    ("CONFIG_KVM=y\nCONFIG_NUMA=y\nCONFIG_NUMA_EMU=y\n", ["numa=fake=2"]),          # a tinyconfig tree
    ("CONFIG_KVM=y\nCONFIG_ACPI_NUMA=y\nCONFIG_NUMA_EMU=y\n", []),                   # SRAT suffices
    ("CONFIG_KVM=y\nCONFIG_NUMA=y\n# CONFIG_NUMA_EMU is not set\n", []),              # nothing to do
])
def test_numa_emulation_only_where_srat_cannot_help(fake_kernel, tmp_path, config, args):
    path = tmp_path / "config"
    path.write_text(config)
    assert numa.kernel_args(dataclasses.replace(fake_kernel, config=path)) == args


def test_a_kernel_without_config_gets_nothing(fake_kernel):
    assert numa.kernel_args(dataclasses.replace(fake_kernel, config=None)) == []


def test_the_boot_of_such_a_kernel_carries_numa_fake(fake_kernel, tmp_path, monkeypatch):
    config = tmp_path / "config"
    config.write_text("CONFIG_KVM=y\nCONFIG_NUMA=y\nCONFIG_NUMA_EMU=y\n")
    monkeypatch.setattr(qemu, "qemu_binary", lambda: str(FAKE_QEMU))
    scripts = tmp_path / "scripts.json"
    scripts.write_text(json.dumps([[["stream", {"event": "harness-boot"}], ["stream", {"event": "hello"}],
                                    ["stream", {"event": "done"}]]]))
    monkeypatch.setenv("FAKE_GUEST_SCRIPTS", str(scripts))
    opts = session.RunOptions(binary=FAKE_SUITE, out_dir=tmp_path / "out", accel="tcg",
                              suite_args=["--fake_cases=Fake.A"])
    session.run_kernel(dataclasses.replace(fake_kernel, config=config), opts)
    cmdline = (tmp_path / "out/test/boot-1/qemu-cmdline.txt").read_text()
    assert "numa=fake=2" in cmdline
