"""Two NUMA nodes for every guest. QEMU describes its nodes in ACPI SRAT; a kernel built without
ACPI NUMA (tinyconfig-based trees, such as a bisect's) sees one node there, so where its config has
CONFIG_NUMA_EMU it is given two emulated nodes on the command line instead."""
from .kernelsource import KernelSource, config_value

NODES = 2


def kernel_args(kernel: KernelSource) -> list[str]:
    """Extra kernel command-line arguments that make `kernel` see NODES nodes."""
    if kernel.config is None or not kernel.config.is_file():
        return []
    config = kernel.config.read_text(errors="replace")
    if config_value(config, "CONFIG_ACPI_NUMA") == "y":
        return []           # SRAT gives it QEMU's nodes
    if config_value(config, "CONFIG_NUMA_EMU") == "y":
        return [f"numa=fake={NODES}"]
    return []
