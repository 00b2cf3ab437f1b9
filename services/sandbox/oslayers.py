"""Kernel-level layers applied inside the sandbox: rlimits, seccomp, Landlock, death signals.

Everything here runs in the fork server or a job process, never in the API server. The
seccomp filter is an allow-list (default: kill the process), so a system call nobody thought
of is refused too; it is built once in the fork server and loaded by each job right before
the strategy's code runs.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import resource
import signal
from dataclasses import dataclass
from typing import Any

# Set before numpy loads: BLAS/OpenMP thread pools would need clone(), which seccomp kills.
THREAD_ENV = {
    "OPENBLAS_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "NUMEXPR_NUM_THREADS": "1",
    "VECLIB_MAXIMUM_THREADS": "1",
    "BLIS_NUM_THREADS": "1",
}

# What a computing CPython needs once its input is read and its imports are done: memory,
# futexes, signals on itself, clocks, randomness, and read/write on fds it already holds.
# No open/openat, no exec, no clone/fork, no sockets, no kill, no prctl, no
# setrlimit, no ptrace, no io_uring, no mount/unshare/setns, no process_vm_*, no bpf.
SECCOMP_ALLOWED = (
    "read",
    "write",
    "readv",
    "writev",
    "pread64",
    "lseek",
    "close",
    "fstat",
    "mmap",
    "munmap",
    "mremap",
    "mprotect",
    "madvise",
    "brk",
    "futex",
    "rt_sigaction",
    "rt_sigprocmask",
    "rt_sigreturn",
    "sigaltstack",
    "exit",
    "exit_group",
    "getpid",
    "gettid",
    "getppid",
    "getuid",
    "geteuid",
    "getgid",
    "getegid",
    "clock_gettime",
    "clock_getres",
    "gettimeofday",
    "time",
    "nanosleep",
    "clock_nanosleep",
    "getrandom",
    "sched_yield",
    "sched_getaffinity",
    "getrusage",
    "times",
)

# The fork server's own filter, looser than a job's (it must fork, wait, kill its jobs and
# talk over the socket it holds) but with what turns a foothold into more taken away:
# starting programs, tracing or reading other processes, mounts and namespaces, new
# sockets, changing ids, kernel modules, keys, BPF, io_uring. Jobs inherit it under their own.
FORK_SERVER_DENIED = (
    "execve",
    "execveat",
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "pidfd_getfd",
    "kcmp",
    "mount",
    "umount2",
    "pivot_root",
    "chroot",
    "move_mount",
    "open_tree",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "mount_setattr",
    "unshare",
    "setns",
    "socket",
    "socketpair",
    "connect",
    "bind",
    "listen",
    "accept",
    "accept4",
    "setuid",
    "setgid",
    "setreuid",
    "setregid",
    "setresuid",
    "setresgid",
    "setgroups",
    "setfsuid",
    "setfsgid",
    "capset",
    "init_module",
    "finit_module",
    "delete_module",
    "kexec_load",
    "kexec_file_load",
    "bpf",
    "perf_event_open",
    "userfaultfd",
    "keyctl",
    "add_key",
    "request_key",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "open_by_handle_at",
    "name_to_handle_at",
    "reboot",
    "swapon",
    "swapoff",
    "acct",
    "quotactl",
    "syslog",
    "settimeofday",
    "clock_settime",
    "clock_adjtime",
    "adjtimex",
    "sethostname",
    "setdomainname",
    "iopl",
    "ioperm",
)
# clone() flags that make namespaces; a plain fork() passes none of them.
_CLONE_NAMESPACE_FLAGS = (
    0x00020000,  # CLONE_NEWNS
    0x02000000,  # CLONE_NEWCGROUP
    0x04000000,  # CLONE_NEWUTS
    0x08000000,  # CLONE_NEWIPC
    0x10000000,  # CLONE_NEWUSER
    0x20000000,  # CLONE_NEWPID
    0x40000000,  # CLONE_NEWNET
)

# Linux ABI numbers, stable across architectures that have the generic syscall table.
_PR_SET_PDEATHSIG = 1
_PR_SET_NO_NEW_PRIVS = 38
_SYS_LANDLOCK_CREATE_RULESET = 444
_SYS_LANDLOCK_RESTRICT_SELF = 446
_LANDLOCK_CREATE_RULESET_VERSION = 1
# Every filesystem right of each Landlock ABI version (v1..v3, then IOCTL_DEV in v5).
_LANDLOCK_FS_BITS = {1: 13, 2: 14, 3: 15, 4: 15, 5: 16}
_LANDLOCK_NET_ALL = 0b11  # bind and connect TCP (ABI 4+)
_LANDLOCK_SCOPE_ALL = 0b11  # abstract unix sockets and signals (ABI 6+)

_libc = ctypes.CDLL(None, use_errno=True)


def set_no_new_privs() -> None:
    """No exec can ever grant privileges again (setuid bits, file capabilities)."""
    if _libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"PR_SET_NO_NEW_PRIVS: {os.strerror(err)}")


def set_parent_death_signal() -> None:
    """Die with SIGKILL when the parent dies, so no job or fork server outlives the server."""
    _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


@dataclass(frozen=True)
class Limits:
    """Per-job resource limits; address space counts from the fork server's own size."""

    cpu_seconds: int
    address_space_bytes: int
    open_files: int


def apply_rlimits(limits: Limits) -> None:
    """Hard limits too, so the job cannot raise them back."""
    cpu = max(1, limits.cpu_seconds)
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    resource.setrlimit(resource.RLIMIT_AS, (limits.address_space_bytes,) * 2)
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_NOFILE, (limits.open_files,) * 2)
    for name in ("RLIMIT_NPROC", "RLIMIT_MEMLOCK", "RLIMIT_MSGQUEUE", "RLIMIT_LOCKS"):
        # Best effort: NPROC does not bind root, and some kernels lack the others.
        with contextlib.suppress(AttributeError, OSError, ValueError):
            resource.setrlimit(getattr(resource, name), (0, 0))


def virtual_memory_bytes(statm_fd: int) -> int:
    """Current address-space size, read from an fd opened on /proc/self/statm earlier."""
    pages = int(os.pread(statm_fd, 128, 0).split()[0])
    return pages * os.sysconf("SC_PAGE_SIZE")


# --- seccomp ---------------------------------------------------------------------------


def build_seccomp_filter() -> Any:
    """Build (do not load) the allow-list filter; raises ImportError/OSError if unsupported."""
    import pyseccomp

    kill = pyseccomp.KILL_PROCESS
    flt = pyseccomp.SyscallFilter(kill)
    flt.set_attr(pyseccomp.Attr.ACT_BADARCH, kill)  # i386/x32 entry points are refused too
    for name in SECCOMP_ALLOWED:
        try:
            flt.add_rule(pyseccomp.ALLOW, name)
        except OSError as exc:  # a name this architecture does not have (e.g. "time")
            if exc.errno not in (errno.EINVAL, errno.EFAULT, errno.EDOM):
                raise
    # pandas asks the terminal size when printing frames: answer "not a terminal" rather
    # than kill. No request (TIOCSTI included) does anything.
    flt.add_rule(pyseccomp.ERRNO(errno.ENOTTY), "ioctl")
    return flt


def build_fork_server_filter() -> Any:
    """Build (do not load) the fork server's deny-list filter: default allow, kill on the
    calls of FORK_SERVER_DENIED and on clone() with a namespace flag. clone3 (whose flags
    sit in memory a filter cannot read) answers ENOSYS, so libc falls back to clone()."""
    import pyseccomp

    kill = pyseccomp.KILL_PROCESS
    flt = pyseccomp.SyscallFilter(pyseccomp.ALLOW)
    flt.set_attr(pyseccomp.Attr.ACT_BADARCH, kill)
    for name in FORK_SERVER_DENIED:
        try:
            flt.add_rule(kill, name)
        except OSError as exc:  # a name this architecture does not have (e.g. "iopl")
            if exc.errno not in (errno.EINVAL, errno.EFAULT, errno.EDOM):
                raise
    for flag in _CLONE_NAMESPACE_FLAGS:
        flt.add_rule(kill, "clone", pyseccomp.Arg(0, pyseccomp.MASKED_EQ, flag, flag))
    flt.add_rule(pyseccomp.ERRNO(errno.ENOSYS), "clone3")
    return flt


def probe_seccomp(flt: Any) -> str:
    """Fork a throw-away child that loads the filter and makes a forbidden call.

    Returns "" when the child was killed by SIGSYS as expected, else what went wrong.
    """
    pid = os.fork()
    if pid == 0:
        try:
            set_parent_death_signal()
            flt.load()
            os.getppid()  # allowed: must survive
            os.kill(os.getppid(), 0)  # forbidden: must die here
        except BaseException:
            os._exit(3)
        os._exit(4)
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGSYS:
        return ""
    if os.WIFEXITED(status):
        code = os.WEXITSTATUS(status)
        return "loading the filter failed" if code == 3 else "the filter did not stop kill()"
    return f"probe child died by signal {os.WTERMSIG(status)}"


# --- Landlock --------------------------------------------------------------------------


def landlock_abi() -> int:
    """The kernel's Landlock ABI version, 0 when Landlock is missing or disabled."""
    _libc.syscall.restype = ctypes.c_long
    version = _libc.syscall(
        _SYS_LANDLOCK_CREATE_RULESET, None, ctypes.c_size_t(0), _LANDLOCK_CREATE_RULESET_VERSION
    )
    return max(0, int(version))


class _RulesetAttr(ctypes.Structure):
    _fields_ = [
        ("handled_access_fs", ctypes.c_uint64),
        ("handled_access_net", ctypes.c_uint64),
        ("scoped", ctypes.c_uint64),
    ]


def apply_landlock(abi: int) -> None:
    """Enter a new Landlock domain with no rules: no path can be opened, created, executed
    or removed; with ABI 4+ no TCP bind/connect; with ABI 6+ no signals or abstract unix
    sockets towards processes outside the domain. Fds already open keep working."""
    if abi < 1:
        raise OSError(errno.ENOSYS, "Landlock is not available")
    attr = _RulesetAttr()
    attr.handled_access_fs = (1 << _LANDLOCK_FS_BITS.get(abi, 16)) - 1
    size = 8
    if abi >= 4:
        attr.handled_access_net = _LANDLOCK_NET_ALL
        size = 16
    if abi >= 6:
        attr.scoped = _LANDLOCK_SCOPE_ALL
        size = 24
    _libc.syscall.restype = ctypes.c_long
    fd = _libc.syscall(_SYS_LANDLOCK_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(size), 0)
    if fd < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"landlock_create_ruleset: {os.strerror(err)}")
    try:
        set_no_new_privs()
        if _libc.syscall(_SYS_LANDLOCK_RESTRICT_SELF, fd, 0) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"landlock_restrict_self: {os.strerror(err)}")
    finally:
        os.close(fd)


def drop_root(host_uid: int) -> bool:
    """Become `host_uid` (as uid and gid, no groups) when running as real root with no
    user namespace (the unshare and bare methods): gives up every capability and makes
    RLIMIT_NPROC and signal permission checks bind. Best effort."""
    if os.getuid() != 0:
        return False
    try:
        os.setgroups([])
        os.setresgid(host_uid, host_uid, host_uid)
        os.setresuid(host_uid, host_uid, host_uid)
    except OSError:
        return False
    return True
