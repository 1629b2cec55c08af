"""Loaded by Python in every process of the README bisect test (PYTHONPATH): bisect-run's kernel
build and boot are replaced by a fake that reads the tree's `broken` file, so `git bisect run`
runs the README's command line unchanged and fast. Everything else (argument parsing, the default
suite path, listing the selected cases with the real suite binary, verdicts, exit codes) is real."""
import os
from pathlib import Path
from types import SimpleNamespace

if os.environ.get("GMEMTEST_FAKE_BISECT_BUILD"):
    from gmemharness import bisect_step, kbuild, session
    from gmemharness.outcomes import CaseOutcome, RunOutcome
    from gmemharness.results import CaseResult, KernelRun

    def _build(tree, out_dir, fragment, jobs, log_path, require_clean):
        kbuild.check_kernel_tree(Path(tree), require_clean)
        Path(log_path).write_text("fake build\n")
        out_dir.mkdir(parents=True, exist_ok=True)
        image = out_dir / "bzImage"
        image.write_text("broken" if (Path(tree) / "broken").exists() else "fine")
        config = out_dir / "config"
        config.write_text("CONFIG_KVM=y\n")
        return kbuild.BuildArtifacts(image, config, Path(log_path), 0.0)

    def _run_kernel(kernel, opts, *args):
        opts.out_dir.mkdir(parents=True, exist_ok=True)
        run = KernelRun(label="step", hello={"event": "hello"})
        bad = kernel.bzimage.read_text() == "broken"
        run.outcome = RunOutcome.FAIL if bad else RunOutcome.OK
        for name in bisect_step.list_selected_cases(opts.binary, opts.gtest_filter):
            run.cases[name] = CaseResult(name, CaseOutcome.FAIL if bad else CaseOutcome.PASS,
                                         "flag accepted" if bad else "")
        return run

    kbuild.build = _build
    bisect_step.kernelsource.from_bzimage = lambda bzimage, config, label, origin: SimpleNamespace(bzimage=bzimage)
    session.run_kernel = _run_kernel
