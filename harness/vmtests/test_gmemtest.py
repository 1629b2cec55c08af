"""Every gtest case on every --gmem-kernel, one pytest test each (the plugin parametrises it):

    cd harness && /usr/bin/python3 -m pytest vmtests --gmem-kernel 7.2 --gmem-kernel 6.12 -v
"""
from gmemharness.pytest_plugin import check


def test_case(gmemtest_case):
    check(gmemtest_case)
