"""gmemharness: boot kernels under QEMU, run the gmemtest suite inside, report per case."""
