"""What a test image is built from: a kernel image plus, optionally, its modules and config."""
import re
from dataclasses import dataclass
from pathlib import Path

from . import bzimage, kmods
from .errors import InfraError


@dataclass(frozen=True)
class KernelSource:
    label: str                  # what the user asked for, used to name results and expectations
    bzimage: Path
    release: str                # uname -r
    modules_dir: Path | None    # the <release> directory of the modules tree
    config: Path | None         # the kernel's .config, when known
    origin: str                 # "debian <package versions>", "bzImage", "tree <dir>"


def from_bzimage(path: Path, modules_dir: Path | None = None, config: Path | None = None,
                 label: str | None = None, origin: str = "bzImage") -> KernelSource:
    """A user-built kernel: validate the image, locate its modules and config, check for KVM."""
    image = bzimage.inspect(Path(path))
    release_dir = kmods.find_release_dir(Path(modules_dir), image.release) if modules_dir else None
    if config is None:
        config = _guess_config(image.path, release_dir)
    source = KernelSource(label=label or image.release, bzimage=image.path, release=image.release,
                          modules_dir=release_dir, config=config, origin=origin)
    check_has_kvm(source)
    return source


def _guess_config(image: Path, release_dir: Path | None) -> Path | None:
    """The config beside the modules (Debian layout) or, for a tree's arch/x86/boot/bzImage,
    the tree's .config."""
    candidates = [release_dir / "config"] if release_dir else []
    if image.parts[-4:-1] == ("arch", "x86", "boot"):
        candidates.append(image.parents[3] / ".config")
    return next((c for c in candidates if c.is_file()), None)


def config_value(config_text: str, option: str) -> str | None:
    m = re.search(rf"^{option}=(.*)$", config_text, re.M)
    return m.group(1) if m else None


def check_has_kvm(source: KernelSource) -> None:
    """Refuse a kernel that cannot offer /dev/kvm, as far as the files tell before booting.
    (Anything these files cannot tell, the guest's init reports after loading modules.)"""
    if source.config:
        if config_value(source.config.read_text(errors="replace"), "CONFIG_KVM") not in ("y", "m"):
            raise InfraError(f"kernel {source.label} is built without KVM "
                             f"(CONFIG_KVM is not set in {source.config})")
        return
    if source.modules_dir:
        tree = kmods.ModuleTree(source.modules_dir)
        if not tree.has("kvm") and tree.is_builtin("kvm") is False:
            raise InfraError(f"kernel {source.label} has no KVM: no kvm module in "
                             f"{source.modules_dir} and modules.builtin does not list it")
