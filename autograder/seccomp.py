"""A seccomp filter that refuses new processes to the code that installs it, C included.

The audit hooks refuse ``os.fork``, ``subprocess`` and the like only as Python reports them;
``ctypes`` reaches libc's ``fork`` and ``execve`` directly. Installed (``deny_new_processes``)
in the trusted child and the student's kernel before any student code runs, this filter
makes the kernel answer ``fork``, ``vfork``, ``execve``, ``execveat`` and a ``clone`` that
is not a thread with EPERM, for every thread of the process and all it could start. Threads
still start: ``clone3`` gets ENOSYS, on which glibc falls back to ``clone(CLONE_THREAD)``.

Standard library only: the trusted child runs this file's text (it cannot import the
package), and the kernel imports it. On Linux x86-64 only; elsewhere it says why not.
"""

from __future__ import annotations

import ctypes
import errno
import platform
import struct
import sys

AUDIT_ARCH_X86_64 = 0xC000003E
NR = {"clone": 56, "fork": 57, "vfork": 58, "execve": 59, "execveat": 322, "clone3": 435}
CLONE_THREAD = 0x00010000
LD_ABS, JEQ, JSET, RET = 0x20, 0x15, 0x45, 0x06  # BPF_LD|W|ABS, BPF_JMP|JEQ|K, JSET|K, RET|K
ALLOW, ERRNO = 0x7FFF0000, 0x00050000  # SECCOMP_RET_ALLOW, SECCOMP_RET_ERRNO
SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC = 1, 1
SYS_SECCOMP, PR_SET_NO_NEW_PRIVS = 317, 38


def program() -> list[tuple[int, int, int, int]]:
    """The BPF program over ``struct seccomp_data`` (nr at 0, arch at 4, args[0] at 16):
    (code, jump if true, jump if false, k); jumps count the instructions skipped."""
    return [
        (LD_ABS, 0, 0, 4),  # 0: the architecture
        (JEQ, 1, 0, AUDIT_ARCH_X86_64),  # 1: x86-64 -> 3
        (RET, 0, 0, ALLOW),  # 2: another ABI: not ours to judge
        (LD_ABS, 0, 0, 0),  # 3: the system call's number
        (JEQ, 9, 0, NR["clone3"]),  # 4: -> 14 (ENOSYS)
        (JEQ, 7, 0, NR["fork"]),  # 5: -> 13 (EPERM)
        (JEQ, 6, 0, NR["vfork"]),  # 6: -> 13
        (JEQ, 5, 0, NR["execve"]),  # 7: -> 13
        (JEQ, 4, 0, NR["execveat"]),  # 8: -> 13
        (JEQ, 0, 2, NR["clone"]),  # 9: clone -> 10, anything else -> 12
        (LD_ABS, 0, 0, 16),  # 10: clone's flags (the low half of args[0])
        (JSET, 0, 1, CLONE_THREAD),  # 11: a thread -> 12, a process -> 13
        (RET, 0, 0, ALLOW),  # 12
        (RET, 0, 0, ERRNO | errno.EPERM),  # 13
        (RET, 0, 0, ERRNO | errno.ENOSYS),  # 14
    ]


def unsupported() -> str | None:
    if sys.platform != "linux" or platform.machine() != "x86_64":
        return f"no seccomp filter on {sys.platform}/{platform.machine()} (Linux x86-64 only)"
    return None


def deny_new_processes() -> str | None:
    """Install the filter on every thread of this process (for good); None when installed,
    else why it could not be."""
    reason = unsupported()
    if reason:
        return reason
    code = b"".join(struct.pack("<HBBI", *op) for op in program())
    filters = ctypes.create_string_buffer(code, len(code))

    class SockFprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    fprog = SockFprog(len(program()), ctypes.addressof(filters))
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        return f"prctl(NO_NEW_PRIVS): {errno.errorcode.get(ctypes.get_errno())}"
    flags, pointer = SECCOMP_FILTER_FLAG_TSYNC, ctypes.byref(fprog)
    if libc.syscall(SYS_SECCOMP, SECCOMP_SET_MODE_FILTER, flags, pointer) != 0:
        return f"seccomp(SET_MODE_FILTER): {errno.errorcode.get(ctypes.get_errno())}"
    return None
