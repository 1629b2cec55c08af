"""`run --kernel-tree DIR --series S`: the series applied to the harness's own copy of DIR (DIR
untouched, git or not), the kernel cached by base identity and patch content, one line for a
patch that does not apply, --profile reaching the suite's argv, and CI's line for a series
kernel the cache lacks. kbuild.build is faked (it writes a bootable-looking bzImage that carries
the built f.c), QEMU is the scripted fake."""
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import FAKE_QEMU, FAKE_SUITE, LINES, make_patch, write_bzimage
from gmemharness import cache, cli, image, kbuild, profiles, series_kernel

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def base(tmp_path) -> Path:
    tree = tmp_path / "linux-source-7.3"
    (tree / "arch" / "x86").mkdir(parents=True)
    (tree / "Makefile").write_text("VERSION = 7\nPATCHLEVEL = 3\nSUBLEVEL = 4\n")
    (tree / "Kconfig").write_text("")
    (tree / "f.c").write_text(LINES)
    return tree


def git(tree: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(tree), "-c", "user.name=t", "-c", "user.email=t@t", *args],
                          check=True, capture_output=True, text=True).stdout


def write_series(root: Path, name: str, *edits: tuple[str, str], start: str = LINES) -> Path:
    """A series directory `root/name`, one patch per (old line, new line) edit of f.c."""
    text = start
    for i, (old, new) in enumerate(edits, 1):
        changed = text.replace(old, new)
        patch = make_patch(root / f"mk-{name}-{i}", f"{i:04d}-{name}-{i}.patch", "f.c", text, changed)
        (root / name).mkdir(parents=True, exist_ok=True)
        patch.rename(root / name / patch.name)
        text = changed
    return root / name


@pytest.fixture
def builds(monkeypatch, tmp_path) -> list[Path]:
    """kbuild.build faked: records the trees it built; the image carries the tree's f.c."""
    built = []

    def build(tree, out_dir, fragment=None, jobs=None, log_path=None, require_clean=True):
        kbuild.check_kernel_tree(Path(tree), require_clean)
        built.append(Path(tree))
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        log_path = Path(log_path or Path(out_dir) / "build.log")
        log_path.write_text("fake build\n")
        bzimage = write_bzimage(Path(out_dir) / "bzImage")
        bzimage.write_bytes(bzimage.read_bytes() + (Path(tree) / "f.c").read_bytes())
        config = Path(out_dir) / ".config"
        config.write_text("CONFIG_KVM=y\n")
        return kbuild.BuildArtifacts(bzimage, config, log_path, 1.0)

    monkeypatch.setattr(kbuild, "build", build)
    return built


@pytest.fixture
def boot_args(monkeypatch) -> list[list[str]]:
    """The suite arguments each boot's image carries."""
    seen = []
    real = image.boot_layer

    def boot_layer(binary, args, *rest, **kw):
        seen.append(list(args))
        return real(binary, args, *rest, **kw)
    monkeypatch.setattr(image, "boot_layer", boot_layer)
    return seen


def run(tmp_path: Path, tree: Path, *extra: str) -> int:
    return cli.main(["run", "--kernel-tree", str(tree), "--binary", str(FAKE_SUITE),
                     "--out", str(tmp_path / "out"), "--accel", "tcg", *extra,
                     "--", "--fake_cases=Fake.A,Fake.B"])


def cached_images() -> list[Path]:
    return sorted(series_kernel.kernels_dir().glob("*/bzImage"))


def cache_entries() -> list[Path]:
    root = series_kernel.kernels_dir()
    return sorted(root.iterdir()) if root.is_dir() else []


def test_a_series_is_applied_to_a_copy_of_a_plain_tree_and_the_label_names_it(
        tmp_path, base, builds, guest, capsys):
    first = write_series(tmp_path / "s", "uffd-v2-12-13", ("line 3\n", "line three\n"), ("line 5\n", "line five\n"))
    second = write_series(tmp_path / "s", "write-v7", ("line 9\n", "line nine\n"),
                          start=LINES.replace("line 3\n", "line three\n").replace("line 5\n", "line five\n"))
    assert run(tmp_path, base, "--series", str(first), "--series", str(second)) == 0
    assert (base / "f.c").read_text() == LINES, "the base tree must not be modified"
    assert sorted(p.name for p in base.iterdir()) == ["Kconfig", "Makefile", "arch", "f.c"]
    image_bytes = cached_images()[0].read_bytes()
    assert b"line three\n" in image_bytes and b"line five\n" in image_bytes and b"line nine\n" in image_bytes
    captured = capsys.readouterr()
    assert "linux-source-7.3+uffd-v2-12-13+write-v7" in captured.out   # the matrix
    assert "linux-source-7.3+uffd-v2-12-13+write-v7: 6.99.0-test from tree" in captured.err
    assert (tmp_path / "out" / "linux-source-7.3+uffd-v2-12-13+write-v7" / "boot-1" / "console.log").is_file()


def test_a_git_tree_is_left_as_it_was(tmp_path, base, builds, guest):
    git(base, "init", "-q")
    git(base, "add", "-A")
    git(base, "commit", "-qm", "base")
    head = git(base, "rev-parse", "HEAD")
    patches = write_series(tmp_path / "s", "fix", ("line 3\n", "line three\n"))
    assert run(tmp_path, base, "--series", str(patches)) == 0
    assert git(base, "status", "--porcelain", "--ignored") == ""
    assert git(base, "rev-parse", "HEAD") == head
    assert git(base, "worktree", "list").count("\n") == 1, "no worktree of the base is left behind"
    assert b"line three\n" in cached_images()[0].read_bytes()
    assert ".git" not in os.listdir(builds[0])


def test_a_second_run_reuses_the_cached_kernel_and_says_so(tmp_path, base, builds, guest, capsys):
    patches = write_series(tmp_path / "s", "fix", ("line 3\n", "line three\n"))
    assert run(tmp_path, base, "--series", str(patches)) == 0
    capsys.readouterr()
    assert run(tmp_path, base, "--series", str(patches)) == 0
    assert len(builds) == 1, "the same inputs must not build again"
    assert "linux-source-7.3+fix: reusing the cached kernel" in capsys.readouterr().err


def test_the_cache_key_follows_patch_content_and_base_not_names(tmp_path, base):
    one = write_series(tmp_path / "a", "fix", ("line 3\n", "line three\n"))
    same = tmp_path / "copy-under-another-name"
    shutil.copytree(one, same)
    for patch in same.iterdir():
        patch.rename(same / f"renamed-{patch.name}")
    other = write_series(tmp_path / "c", "fix", ("line 3\n", "line 3 changed\n"))

    def key(path: Path) -> str:
        return series_kernel.SeriesKernel(base, [series_kernel.load(str(path))]).key
    assert key(one) == key(same)
    assert key(one) != key(other)
    before = key(one)
    (base / "f.c").write_text(LINES + "line 21\n")
    assert key(one) != before, "an edited base is another kernel"


def test_another_series_on_the_same_base_reverts_to_the_shared_prefix(tmp_path, base, builds, guest, capsys):
    old = write_series(tmp_path / "old", "s", ("line 3\n", "line three\n"), ("line 5\n", "line five\n"))
    new = write_series(tmp_path / "new", "s", ("line 3\n", "line three\n"), ("line 7\n", "line seven\n"))
    assert run(tmp_path, base, "--series", str(old)) == 0
    capsys.readouterr()
    assert run(tmp_path, base, "--series", str(new)) == 0
    assert "2 patches applied to the reused copy (kept 1 of its patches)" in capsys.readouterr().err
    assert len(builds) == 2 and builds[0] == builds[1]
    built = (builds[1] / "f.c").read_text()
    assert "line seven\n" in built and "line five\n" not in built and "line three\n" in built


def test_a_patch_that_does_not_apply_is_one_line_exit_5_and_no_cache_entry(tmp_path, base, builds, guest, capsys):
    patches = write_series(tmp_path / "s", "fix", ("line 3\n", "line three\n"), ("line 10\n", "line ten\n"))
    (base / "f.c").write_text(LINES.replace("line 11\n", "line eleven\n"))
    assert run(tmp_path, base, "--series", str(patches)) == 5
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert err.startswith("gmemharness: error: linux-source-7.3+fix: patch 2/2 of series fix "
                          "(0002-fix-2.patch, \"0002-fix-2.patch\") does not apply: f.c hunk @@ -7,7 +7,7 @@; "
                          "the rejects: cd "), err
    assert f"git apply --check --verbose {patches / '0002-fix-2.patch'}" in err
    assert cache_entries() == [] and builds == []
    assert (base / "f.c").read_text() == LINES.replace("line 11\n", "line eleven\n")


def test_the_rejects_command_shows_the_hunk(tmp_path, base, builds, guest, capsys):
    patches = write_series(tmp_path / "s", "fix", ("line 10\n", "line ten\n"))
    (base / "f.c").write_text(LINES.replace("line 11\n", "line eleven\n"))
    assert run(tmp_path, base, "--series", str(patches)) == 5
    command = capsys.readouterr().err.split("the rejects: ", 1)[1].strip()
    shown = subprocess.run(command, shell=True, capture_output=True, text=True)
    assert shown.returncode != 0 and "patch failed: f.c:7" in shown.stderr


def test_a_b4_mbox_is_split_into_its_patches(tmp_path, base, builds, guest, capsys):
    patches = write_series(tmp_path / "s", "fix", ("line 3\n", "line three\n"), ("line 5\n", "line five\n"))
    mbox = tmp_path / "v2_20260306_someone_fix_things.mbx"
    cover = "From git@z Thu Jan  1 00:00:00 1970\nSubject: [PATCH v2 0/2] fix things\n\ncover letter\n"
    mbox.write_text(cover + "".join(f"From git@z Thu Jan  1 00:00:00 1970\n{p.read_text()}"
                                    for p in sorted(patches.iterdir())))
    loaded = series_kernel.load(f"fix-v2={mbox}")
    assert loaded.label == "fix-v2" and [p.subject for p in loaded.patches] == ["0001-fix-1.patch", "0002-fix-2.patch"]
    assert series_kernel.load(str(mbox)).label == "v2_20260306_someone_fix_things"
    assert run(tmp_path, base, "--series", f"fix-v2={mbox}") == 0
    assert b"line three\nline 4\nline five\n" in cached_images()[0].read_bytes()
    assert "linux-source-7.3+fix-v2" in capsys.readouterr().out


def test_profiles_reach_the_suite_argv(tmp_path, base, builds, guest, boot_args):
    patches = write_series(tmp_path / "s", "fix", ("line 3\n", "line three\n"))
    assert run(tmp_path, base, "--series", str(patches), "--profile", "gmem-uffd-v2,gmem-write-v7",
               "--profile", "gmem-uffd-v2") == 0
    assert boot_args and "--series-profile=gmem-uffd-v2,gmem-write-v7" in boot_args[0]
    assert boot_args[0][-1] == "--fake_cases=Fake.A,Fake.B"


def test_an_unknown_profile_is_a_usage_error_naming_the_known_ones(tmp_path, base, builds, guest, capsys):
    assert run(tmp_path, base, "--profile", "gmem-uffd-v2,gmem-uffd-v9") == 2
    err = capsys.readouterr().err
    assert "unknown series profile gmem-uffd-v9" in err and "gmem-write-v7" in err and builds == []


def test_known_profiles_are_read_from_the_fixtures(tmp_path):
    names = profiles.known_profiles()
    assert {"gmem-uffd-v2", "gmem-write-v7"} <= set(names)
    for name in names:
        assert f'"{name}"' in "".join(p.read_text() for p in (REPO / "fixtures/uapi/series").glob("*.h"))
    fixtures = tmp_path / "fixtures"
    (fixtures / "uapi/series").mkdir(parents=True)
    (fixtures / "series.cc").write_text('#include "fixtures/uapi/series/only.h"\n')
    (fixtures / "uapi/series/only.h").write_text('inline constexpr Profile kProfile{\n    "only-v1", "s"};\n')
    (fixtures / "uapi/series/not_included.h").write_text('inline constexpr Profile kProfile{"other-v1"};\n')
    assert profiles.known_profiles(fixtures) == ["only-v1"]


def test_series_without_a_kernel_tree_is_a_usage_error(tmp_path, base, capsys):
    assert cli.main(["run", "--series", str(tmp_path), "--binary", str(FAKE_SUITE)]) == 2
    assert "--series applies to a --kernel-tree" in capsys.readouterr().err
    assert run(tmp_path, base, "--series", str(tmp_path / "none")) == 2


# --- CI: ci/check-series.sh ----------------------------------------------------------------------

@pytest.fixture
def ci_env(tmp_path, monkeypatch, base, guest) -> dict:
    """A series list naming `fix` on `base`, a series dir, a fake suite build and a fake QEMU on
    PATH for the script's own harness runs."""
    bindir, build = tmp_path / "bin", tmp_path / "build" / "cases"
    bindir.mkdir()
    build.mkdir(parents=True)
    (bindir / "qemu-system-x86_64").symlink_to(FAKE_QEMU)
    (build / "gmemtest").symlink_to(FAKE_SUITE)
    listing = tmp_path / "series.txt"
    listing.write_text(f"# a comment\n{base}  fix  --accel=tcg --filter=Fake.A\n")
    (tmp_path / "expect").mkdir()
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    return dict(os.environ, GMEMTEST_SERIES_LIST=str(listing), GMEMTEST_SERIES_DIR=str(tmp_path / "s"),
                GMEMTEST_SERIES_EXPECT=str(tmp_path / "expect"), GMEMTEST_BUILD=str(tmp_path / "build"),
                GMEMTEST_SERIES_OUT=str(tmp_path / "results"))


def check_series(env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([str(REPO / "ci" / "check-series.sh")], env=env, capture_output=True, text=True)


def test_ci_names_the_build_command_when_the_patches_are_missing(ci_env, base):
    done = check_series(ci_env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        f"series linux-source-7.3+fix: not checked: no patches at {ci_env['GMEMTEST_SERIES_DIR']}/fix; "
        f"build it with: {REPO}/harness/gmemharness.sh build --kernel-tree {base} "
        f"--series {ci_env['GMEMTEST_SERIES_DIR']}/fix"]


def test_ci_names_the_build_command_when_the_cache_lacks_the_kernel(ci_env, tmp_path, base):
    patches = write_series(tmp_path / "s", "fix", ("line 3\n", "line three\n"))
    done = check_series(ci_env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        f"linux-source-7.3+fix: not in the cache; build it with: {REPO}/harness/gmemharness.sh build "
        f"--kernel-tree {base} --series {patches}"]
    assert cache_entries() == []


def test_ci_checks_a_cached_series_kernel_against_its_list(ci_env, tmp_path, base, builds):
    patches = write_series(tmp_path / "s", "fix", ("line 3\n", "line three\n"))
    series_kernel.SeriesKernel(base, [series_kernel.load(str(patches))]).build(log=lambda line: None)
    done = check_series(ci_env)
    assert done.returncode == 6 and "no expectation file" in done.stdout, done.stdout + done.stderr
    (tmp_path / "expect" / "linux-source-7.3+fix.txt").write_text("Fake.A\n")
    done = check_series(ci_env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "expectations met" in done.stdout and len(builds) == 1
    assert (tmp_path / "results" / "linux-source-7.3+fix" / "results.json").is_file()
