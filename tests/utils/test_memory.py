import platform
import sys

from infomatch.utils.memory import keep_freed_memory


def test_keep_freed_memory_applies_exactly_where_glibc_is_the_libc():
    on_glibc = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"
    assert keep_freed_memory() is on_glibc
    assert keep_freed_memory() is on_glibc  # calling it again is harmless
