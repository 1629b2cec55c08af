"""Kernel modules for the image: resolve dependencies through modules.dep, order them for
loading, decompress them (busybox insmod takes plain .ko files)."""
import gzip
import lzma
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from .errors import InfraError

# kvm_amd and kvm_intel are both packed; the guest loads whichever its (virtual) CPU supports.
KVM_MODULES = ("kvm", "kvm_amd", "kvm_intel")
_KO = re.compile(r"\.ko(\.xz|\.zst|\.gz)?$")


def module_name(path: str) -> str:
    return _KO.sub("", path.rsplit("/", 1)[-1]).replace("-", "_")


def _is_release_dir(path: Path) -> bool:
    return (path / "kernel").is_dir() or (path / "modules.dep").is_file()


def find_release_dir(modules_dir: Path, release: str) -> Path:
    """Accept an INSTALL_MOD_PATH root, a .../lib/modules dir, or the <release> dir itself."""
    if not modules_dir.is_dir():
        raise InfraError(f"modules dir {modules_dir} does not exist")
    for candidate in (modules_dir / "lib/modules" / release, modules_dir / "usr/lib/modules" / release,
                      modules_dir / release):
        if _is_release_dir(candidate):
            return candidate
    if _is_release_dir(modules_dir):
        return modules_dir
    others = sorted(p.name for base in (modules_dir / "lib/modules", modules_dir)
                    if base.is_dir() for p in base.iterdir() if _is_release_dir(p))
    hint = f"; it has modules for {', '.join(others)}" if others else ""
    raise InfraError(f"no modules for kernel {release} under {modules_dir}{hint}")


@dataclass(frozen=True)
class Module:
    name: str
    path: Path          # possibly compressed file on the host
    relpath: str        # path inside the image, always uncompressed (.ko)


class ModuleTree:
    def __init__(self, release_dir: Path):
        self.root = release_dir
        self.deps: dict[str, list[str]] = {}   # name -> dependency names
        self.files: dict[str, str] = {}       # name -> path relative to root
        dep_file = release_dir / "modules.dep"
        if dep_file.is_file():
            self._read_modules_dep(dep_file.read_text())
        else:
            self._scan_with_modinfo()
        builtin = release_dir / "modules.builtin"
        self.builtin = ({module_name(line.strip()) for line in builtin.read_text().splitlines()}
                        if builtin.is_file() else None)

    def _read_modules_dep(self, text: str) -> None:
        for line in text.splitlines():
            target, sep, deps = line.partition(":")
            if not sep:
                continue
            name = module_name(target)
            self.files[name] = target.strip()
            self.deps[name] = [module_name(d) for d in deps.split()]

    def _scan_with_modinfo(self) -> None:
        for path in sorted(self.root.rglob("*.ko*")):
            if _KO.search(path.name):
                self.files[module_name(path.name)] = str(path.relative_to(self.root))
        self.deps = {name: None for name in self.files}  # filled lazily by _deps_of

    def _deps_of(self, name: str) -> list[str]:
        if self.deps.get(name) is None:
            out = subprocess.run(["modinfo", "-F", "depends", str(self.root / self.files[name])],
                                 capture_output=True, text=True).stdout
            self.deps[name] = [module_name(d) for d in out.strip().split(",") if d]
        return self.deps[name]

    def has(self, name: str) -> bool:
        return name in self.files

    def is_builtin(self, name: str) -> bool | None:
        """True/False when modules.builtin says; None when the tree has no modules.builtin."""
        return None if self.builtin is None else name in self.builtin

    def load_order(self, wanted: list[str]) -> list[Module]:
        """Modules in `wanted` that exist as files, with their dependencies first."""
        order: list[str] = []
        visiting: set[str] = set()

        def visit(name: str) -> None:
            if name in order or name not in self.files:
                return
            if name in visiting:
                raise InfraError(f"dependency cycle through module {name} in {self.root}")
            visiting.add(name)
            for dep in self._deps_of(name):
                visit(dep)
            visiting.discard(name)
            order.append(name)

        for name in wanted:
            visit(name.replace("-", "_"))
        return [Module(n, self.root / self.files[n], _KO.sub(".ko", self.files[n])) for n in order]


def read_uncompressed(path: Path) -> bytes:
    data = path.read_bytes()
    if path.name.endswith(".xz"):
        return lzma.decompress(data)
    if path.name.endswith(".gz"):
        return gzip.decompress(data)
    if path.name.endswith(".zst"):
        proc = subprocess.run(["zstd", "-dc", str(path)], capture_output=True)
        if proc.returncode != 0:
            raise InfraError(f"cannot decompress {path}: {proc.stderr.decode(errors='replace')}")
        return proc.stdout
    return data
