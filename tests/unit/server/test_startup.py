"""Start-up's process settings."""

from __future__ import annotations

import platform

import pytest

from pyzk.server.startup import keep_large_buffers_out_of_the_heap


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt's mmap threshold is glibc's")
def test_the_mmap_threshold_is_fixed_on_glibc() -> None:
    assert keep_large_buffers_out_of_the_heap() is True
