"""How the fork server is started: inside bubblewrap, inside unshare, or bare.

Only trusted code lives here; it builds command lines and never runs strategy code. The
bubblewrap sandbox gets a private user, pid, network, IPC and UTS namespace, no capabilities,
a clean environment, and a read-only view of just the Python installation, the installed
packages and the `services` package: not the repository, not /etc, not /home, not /tmp.

Started as root, the sandbox must not be host root: bubblewrap maps its user to whoever
starts it. So a root server starts bwrap as an unprivileged host uid (`host_uid`, a setting)
through `setpriv`, and that bwrap makes the namespaces. The Python prefix may sit under a
directory that uid cannot traverse (/root is 0700), so an outer bwrap, still root, first
builds a mount view holding just the bound paths under 0755 parents; it makes no other
namespace and only waits for its child. unshare and the bare method have no filesystem view:
there the fork server drops to `host_uid` itself after its imports (`oslayers.drop_root`).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from services.sandbox.oslayers import THREAD_ENV

NOBODY = 65534
# The default unprivileged host uid (and gid) of the sandbox when the server runs as root:
# one no account, distribution range, systemd dynamic user or usual subuid range uses, so
# a process that escaped every other layer shares its uid with nothing it could signal,
# trace or read. `nobody` is shared by other daemons (NFS squashing, some services).
DEFAULT_HOST_UID = 2_000_000_000
# BLAS builds on some hosts need these to pick a safe kernel; they carry no secrets.
_PASSTHROUGH_ENV = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "LANG", "LC_ALL")
_ROOT_LINKS = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")
_ETC_FILES = ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/localtime")
_PACKAGES = ("numpy", "pandas", "pyseccomp")


@dataclass(frozen=True)
class Launch:
    """One way to start the fork server: its name, argv prefix and environment."""

    method: str  # "bwrap", "unshare" or "none"
    argv: tuple[str, ...]
    env: dict[str, str]


def project_root() -> Path:
    """The directory holding the `services` package."""
    return Path(__file__).resolve().parents[2]


def zygote_env() -> dict[str, str]:
    """A minimal environment: the server's secrets (API keys, DB URLs) never reach a job."""
    env = {"PATH": "/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE": "1", **THREAD_ENV}
    for name in _PASSTHROUGH_ENV:
        if name in os.environ:
            env[name] = os.environ[name]
    return env


def python_argv(python: str, config: str) -> list[str]:
    """-E and -s: no PYTHON* variables and no user site, whatever the server's env holds."""
    root = str(project_root())
    bootstrap = (
        f"import sys; sys.path.insert(0, {root!r}); "
        "from services.sandbox.zygote import main; main(sys.argv)"
    )
    return [python, "-E", "-s", "-B", "-c", bootstrap, config]


def _python_paths(python: str) -> list[str]:
    """What the fork server reads: the interpreter's prefixes (stdlib and site-packages),
    the preloaded packages if they live elsewhere, and the `services` package. Not the
    repository around it (its .env, .git and other packages stay invisible)."""
    paths = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
    paths.add(str(Path(python).parent.parent))
    paths.add(str(Path(os.path.realpath(python)).parent.parent))
    for name in _PACKAGES:
        spec = importlib.util.find_spec(name)
        if spec is None or not spec.origin:
            continue
        origin = Path(spec.origin)
        paths.add(str(origin.parent if origin.name == "__init__.py" else origin))
    paths.add(str(project_root() / "services"))
    return sorted(p for p in paths if p and os.path.exists(p))


def _without_nested(paths: list[str]) -> list[str]:
    kept: list[str] = []
    for path in sorted(set(paths), key=len):
        if not any(path == k or path.startswith(k.rstrip("/") + "/") for k in kept):
            kept.append(path)
    return kept


def privilege_drop(host_uid: int) -> int | None:
    """The host uid the sandbox must drop to: `host_uid` when the server is root, None when
    it already runs unprivileged (a developer's machine: nothing to drop)."""
    return host_uid if os.geteuid() == 0 else None


def _bind_list(python: str) -> tuple[list[str], list[str], list[tuple[str, str]]]:
    """Paths to bind read-only (directories, then single /etc files) and root symlinks."""
    binds = ["/usr"]
    links: list[tuple[str, str]] = []
    for name in _ROOT_LINKS:
        path = f"/{name}"
        if os.path.islink(path):
            links.append((os.readlink(path), path))
        elif os.path.isdir(path):
            binds.append(path)
    binds += [p for p in _python_paths(python) if not p.startswith("/usr/")]
    files = [path for path in _ETC_FILES if os.path.exists(path)]
    return _without_nested(binds), files, links


def _outer_view_argv(bwrap: str, python: str, setpriv: str, host_uid: int) -> list[str]:
    """Root's bwrap: a mount view where the inner, unprivileged bwrap can reach every path
    it binds (parents made 0755: bwrap would make them 0700, root's), then `setpriv` to
    `host_uid` with no groups and no capabilities. No other namespace is made here."""
    dirs, files, links = _bind_list(python)
    argv = [bwrap, "--die-with-parent", "--cap-drop", "ALL"]
    argv += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]  # for setpriv only
    argv += ["--perms", "01777", "--dir", "/tmp"]  # where the inner bwrap builds its root
    parents: list[str] = []
    for path in [*dirs, *files]:
        parent = Path(path).parent
        for ancestor in [*reversed(parent.parents), parent]:
            name = str(ancestor)
            if name != "/" and name not in parents and name != "/tmp":
                parents.append(name)
    for name in parents:
        argv += ["--perms", "0755", "--dir", name]
    for target, path in links:
        argv += ["--symlink", target, path]
    for path in [*dirs, *files]:
        argv += ["--ro-bind", path, path]
    # The host's /proc, read-write: a user namespace may mount its own proc only where a
    # fully visible, writable one exists. Only the inner bwrap sees it, before pivot_root.
    argv += ["--bind", "/proc", "/proc", "--dev", "/dev", "--"]
    ids = str(host_uid)
    argv += [setpriv, f"--reuid={ids}", f"--regid={ids}", "--clear-groups"]
    argv += ["--inh-caps=-all", "--bounding-set=-all", "--"]
    return argv


def bwrap_argv(
    python: str, *, user_namespace: bool, drop_to: int | None = None
) -> list[str] | None:
    """The bubblewrap prefix, or None when bwrap (or, to drop root, setpriv) is missing.

    `drop_to`: the host uid to run as (the server is root); see the module docstring."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return None
    outer: list[str] = []
    if drop_to is not None:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            return None  # never run the sandbox as host root
        outer = _outer_view_argv(bwrap, python, setpriv, drop_to)
    argv = [
        *outer,
        bwrap,
        "--unshare-ipc",
        "--unshare-pid",
        "--unshare-net",
        "--unshare-uts",
        "--unshare-cgroup-try",
        "--die-with-parent",
        "--new-session",
        "--clearenv",
        "--cap-drop",
        "ALL",
        "--hostname",
        "sandbox",
    ]
    if user_namespace:
        argv += ["--unshare-user", "--uid", str(NOBODY), "--gid", str(NOBODY)]
    dirs, files, links = _bind_list(python)
    for target, path in links:
        argv += ["--symlink", target, path]
    for path in [*dirs, *files]:
        argv += ["--ro-bind", path, path]
    argv += ["--proc", "/proc", "--dev", "/dev", "--chdir", "/"]
    for name, value in zygote_env().items():
        argv += ["--setenv", name, value]
    return [*argv, "--"]


def unshare_argv(user_map: str | None) -> list[str] | None:
    """util-linux unshare: namespaces without a filesystem view (Landlock covers files).

    `user_map` is "nobody" (a user namespace where we are uid 65534; util-linux 2.38+),
    "root" (a user namespace where we are its root, with no power outside) or None.
    """
    unshare = shutil.which("unshare")
    if unshare is None:
        return None
    argv = [unshare]
    if user_map == "nobody":
        argv += ["--user", f"--map-user={NOBODY}", f"--map-group={NOBODY}"]
    elif user_map == "root":
        argv += ["--user", "--map-root-user"]
    argv += ["--net", "--ipc", "--uts", "--pid", "--fork", "--kill-child"]
    return [*argv, "--"]


def candidates(mode: str, python: str, host_uid: int = DEFAULT_HOST_UID) -> list[Launch]:
    """Launch methods to try, strongest first; `mode` is a setting (auto/bwrap/unshare/none).

    As root, unshare gets no user namespace: one made by root maps its user to host root,
    and the fork server could not then drop to `host_uid`, which it does without one."""
    env = zygote_env()
    drop_to = privilege_drop(host_uid)
    found: list[Launch] = []
    if mode in ("auto", "bwrap"):
        for user_ns in (True, False):
            argv = bwrap_argv(python, user_namespace=user_ns, drop_to=drop_to)
            if argv is not None:
                found.append(Launch("bwrap", tuple(argv), env))
    if mode in ("auto", "unshare"):
        user_maps: tuple[str | None, ...] = ("nobody", "root", None)
        for user_map in user_maps if drop_to is None else (None,):
            argv = unshare_argv(user_map)
            if argv is not None:
                found.append(Launch("unshare", tuple(argv), env))
    if mode in ("auto", "none"):
        found.append(Launch("none", (), env))
    return found
