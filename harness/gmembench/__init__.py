"""gmembench: read gmemtest_bench's Google Benchmark JSON, compare two kernels within a noise band
measured from repetitions, set the figures beside the reference ones from the kernel discussions,
plot the demand-paging rate, and run the benchmarks inside a kernel booted under QEMU."""
