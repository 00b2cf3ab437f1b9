"""How the fork server is started: inside bubblewrap, inside unshare, or bare.

Only trusted code lives here; it builds command lines and never runs strategy code. The
bubblewrap sandbox gets a private user, pid, network, IPC and UTS namespace, no capabilities,
a clean environment, and a read-only view of just the Python installation, the installed
packages and the `services` package: not the repository, not /etc, not /home, not /tmp.
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


def bwrap_argv(python: str, *, user_namespace: bool) -> list[str] | None:
    """The bubblewrap prefix, or None when bwrap is not installed."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return None
    argv = [
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
    binds = ["/usr"]
    for name in _ROOT_LINKS:
        path = f"/{name}"
        if os.path.islink(path):
            argv += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            binds.append(path)
    binds += [p for p in _python_paths(python) if not p.startswith("/usr/")]
    for path in _without_nested(binds):
        argv += ["--ro-bind", path, path]
    for path in _ETC_FILES:
        if os.path.exists(path):
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


def candidates(mode: str, python: str) -> list[Launch]:
    """Launch methods to try, strongest first; `mode` is a setting (auto/bwrap/unshare/none)."""
    env = zygote_env()
    found: list[Launch] = []
    if mode in ("auto", "bwrap"):
        for user_ns in (True, False):
            argv = bwrap_argv(python, user_namespace=user_ns)
            if argv is not None:
                found.append(Launch("bwrap", tuple(argv), env))
    if mode in ("auto", "unshare"):
        for user_map in ("nobody", "root", None):
            argv = unshare_argv(user_map)
            if argv is not None:
                found.append(Launch("unshare", tuple(argv), env))
    if mode in ("auto", "none"):
        found.append(Launch("none", (), env))
    return found
