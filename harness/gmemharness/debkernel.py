"""Debian kernel packages as test kernels, fetched through the private apt config and cached.

A spec is a kernel release (`7.2.13+deb14-cloud-amd64`, the package name minus `linux-image-`)
or a short version (`7.2`, `6.12`) meaning the newest cloud-amd64 kernel of that series."""
import functools
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from . import cache, debapt, kernelsource
from .debapt import PrivateApt
from .errors import InfraError
from .kernelsource import KernelSource

FLAVOUR = "cloud-amd64"
_RELEASE_LIKE = re.compile(r"\d+\.\d+[^/\s]*-[a-z0-9-]+")


def kernels_dir() -> Path:
    return cache.cache_root() / "kernels" / "debian"


def private_apt() -> PrivateApt:
    return PrivateApt(cache.cache_root() / "apt")


def fetch(spec: str, apt: PrivateApt | None = None) -> KernelSource:
    """Resolve `spec`, download and unpack its packages once, and describe the result."""
    if _RELEASE_LIKE.fullmatch(spec) and (kernels_dir() / spec / "vmlinuz").is_file():
        return _describe(spec, kernels_dir() / spec)
    apt = apt or private_apt()
    apt.update()
    image_pkg = resolve_image_package(apt, spec)
    release = image_pkg.removeprefix("linux-image-")
    entry = kernels_dir() / release
    if not (entry / "vmlinuz").is_file():
        _download_and_unpack(apt, image_pkg, release, entry)
    return _describe(spec, entry)


def resolve_image_package(apt: PrivateApt, spec: str) -> str:
    exact = f"linux-image-{spec}"
    if apt.show(exact):
        return exact
    pattern = rf"linux-image-{re.escape(spec)}(\.[0-9]+)*(\+deb[0-9]+)?-{FLAVOUR}"
    candidates = apt.package_names(pattern)
    if not candidates:
        known = apt.package_names(rf"linux-image-[0-9].*-{FLAVOUR}")
        raise InfraError(f"no Debian kernel package matches {spec!r} (tried {exact} and "
                         f"{spec}.*-{FLAVOUR}); available: {', '.join(r.removeprefix('linux-image-') for r in known[-8:])}")
    versions = {name: (apt.show(name) or {}).get("version", "0") for name in candidates}
    return max(candidates, key=functools.cmp_to_key(
        lambda a, b: _compare_debian_versions(versions[a], versions[b])))


def _compare_debian_versions(a: str, b: str) -> int:
    if a == b:
        return 0
    gt = subprocess.run(["dpkg", "--compare-versions", a, "gt", b]).returncode == 0
    return 1 if gt else -1


def packages_for(apt: PrivateApt, image_pkg: str, release: str) -> dict[str, str]:
    """Name -> version of the image package and its dependencies built for the same release:
    on 7.x Debian splits the kernel into linux-binary-* (vmlinuz), linux-modules-* and
    linux-base-* (config, modules.builtin); 6.x ships one package."""
    fields = apt.show(image_pkg) or {}
    deps = [alt.split()[0] for dep in fields.get("depends", "").split(",")
            for alt in dep.split("|") if alt.strip()]
    names = [image_pkg] + [d for d in dict.fromkeys(deps) if d.endswith(f"-{release}")]
    versions = {}
    for name in names:
        shown = apt.show(name)
        if not shown:
            raise InfraError(f"{image_pkg} needs {name}, which apt cannot find")
        versions[name] = shown["version"]
    return versions


def _download_and_unpack(apt: PrivateApt, image_pkg: str, release: str, entry: Path) -> None:
    packages = packages_for(apt, image_pkg, release)
    with cache.staged_dir(entry) as stage, tempfile.TemporaryDirectory() as tmp:
        debs = apt.download(packages, Path(tmp))
        unpacked = Path(tmp) / "root"
        for deb in debs:
            debapt.unpack(deb, unpacked)
        _normalise_layout(unpacked, release, stage)
        (stage / "packages.txt").write_text("".join(f"{d.name}\n" for d in debs))


def _normalise_layout(unpacked: Path, release: str, stage: Path) -> None:
    """Into `stage`: vmlinuz, config (when shipped) and lib/modules/<release> with modules.dep."""
    mod_src = next((p for p in (unpacked / "usr/lib/modules" / release, unpacked / "lib/modules" / release)
                    if p.is_dir()), None)
    image = next((p for p in (unpacked / "boot" / f"vmlinuz-{release}",
                              mod_src / "vmlinuz" if mod_src else None) if p and p.is_file()), None)
    if image is None or mod_src is None:
        raise InfraError(f"the packages for {release} hold no vmlinuz or no modules directory")
    shutil.move(str(image), stage / "vmlinuz")
    config = next((p for p in (unpacked / "boot" / f"config-{release}", mod_src / "config") if p.is_file()), None)
    if config:
        shutil.move(str(config), stage / "config")
    mod_dst = stage / "lib/modules" / release
    mod_dst.parent.mkdir(parents=True)
    shutil.move(str(mod_src), mod_dst)
    if not (mod_dst / "modules.dep").is_file():
        proc = subprocess.run(["depmod", "-b", str(stage), release], capture_output=True, text=True)
        if proc.returncode != 0:
            raise InfraError(f"depmod for {release} failed: {proc.stderr.strip()}")


def _describe(label: str, entry: Path) -> KernelSource:
    config = entry / "config"
    debs = (entry / "packages.txt").read_text().split()
    image_deb = next((d for d in debs if d.startswith("linux-image-")), debs[0] if debs else "?")
    return kernelsource.from_bzimage(entry / "vmlinuz", modules_dir=entry,
                                     config=config if config.is_file() else None, label=label,
                                     origin=f"Debian {image_deb.removesuffix('.deb')}"
                                            + (f" (+{len(debs) - 1} split packages)" if len(debs) > 1 else ""))
