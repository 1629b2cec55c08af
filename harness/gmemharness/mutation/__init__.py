"""`gmemharness mutate`: plant single-point bugs in kernel source files, rebuild, boot, run the
suite, and report which mutants no case notices (operators.py, runner.py, report.py)."""
