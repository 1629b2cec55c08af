"""Errors the harness reports as one clear message instead of a traceback."""


class InfraError(Exception):
    """The run could not happen: no QEMU, a bad kernel file, a missing package, an image build
    that failed. Maps to the infrastructure exit code, never to a test verdict."""
