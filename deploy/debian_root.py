"""A Debian root to replay an image recipe in: debootstrap, chroot, mounts, a private network.

Used by check_image_recipe.py (standard library only; root required).
"""

from __future__ import annotations

import ctypes
import fcntl
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from dockerfile import IgnoreRules, Step

__all__ = [
    "CheckFailed", "apt_mirror", "build_base", "chroot_argv", "copy_step", "mounted_proc", "parse_base",
    "private_network", "read_only_root", "run", "safe_rmtree", "tail",
]

#: What python:*-slim installs besides Python itself (its Dockerfile's runtime packages).
SLIM_PACKAGES = ["ca-certificates", "netbase", "tzdata"]
_CLONE_NEWNET = 0x40000000


class CheckFailed(RuntimeError):
    """A step of the replay failed; the message says which and shows the log's tail."""


def run(argv: list[str], *, timeout: float, log: Path) -> None:
    with open(log, "ab") as out:
        out.write(f"$ {' '.join(argv)}\n".encode())
        out.flush()
        proc = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, timeout=timeout)
    if proc.returncode != 0:
        raise CheckFailed(f"exit {proc.returncode}: {' '.join(argv[-3:])}{tail(log)}")


def tail(path: Path, lines: int = 15) -> str:
    text = path.read_text(errors="replace").splitlines() if path.exists() else []
    return ("\n    " + "\n    ".join(text[-lines:])) if text else ""


def apt_mirror(suite: str) -> str:
    """The Debian mirror apt uses on this machine (deb822 or one-line sources)."""
    sources = [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]
    for path in sources:
        if not path.is_file():
            continue
        text = path.read_text(errors="replace")
        for block in re.split(r"\n\s*\n", text):
            uris = re.findall(r"^URIs:\s*(\S+)", block, re.M)
            suites = re.findall(r"^Suites:\s*(.+)$", block, re.M)
            if uris and suites and suite in suites[0].split() and uris[0].rstrip("/").endswith("/debian"):
                return uris[0]
        for m in re.finditer(r"^deb\s+(?:\[[^]]*\]\s+)?(\S+/debian)/?\s+(\S+)", text, re.M):
            if m.group(2) == suite:
                return m.group(1)
    return "http://deb.debian.org/debian"


def parse_base(image: str) -> tuple[str, str]:
    """`python:3.11.12-slim-bookworm` -> ("3.11", "bookworm")."""
    m = re.fullmatch(r"(?:docker\.io/)?(?:library/)?python:(\d+\.\d+)(?:\.\d+)?-slim-(\w+)(?:@sha256:[0-9a-f]+)?", image)
    if m is None:
        raise CheckFailed(f"cannot stand in for base image {image!r}: expected python:X.Y[.Z]-slim-SUITE")
    return m.group(1), m.group(2)


def build_base(cache: Path, python: str, suite: str, mirror: str, log: Path) -> Path:
    base = cache / f"{suite}-python{python}"
    if (base / ".complete").exists():
        return base
    cache.mkdir(parents=True, exist_ok=True)
    # Checks running at once (pytest's two workers, two shells) build one base, one after the other:
    # without the lock each would delete the other's half-built `.partial`.
    with open(cache / f"{suite}-python{python}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (base / ".complete").exists():  # built while this one waited
            return base
        return _build_base(base, cache, python, suite, mirror, log)


def _build_base(base: Path, cache: Path, python: str, suite: str, mirror: str, log: Path) -> Path:
    safe_rmtree(base)  # an incomplete base from an interrupted run
    partial = cache / f"{suite}-python{python}.partial"
    safe_rmtree(partial)
    include = ",".join([*SLIM_PACKAGES, "python3", "python3-venv"])
    run(["debootstrap", "--variant=minbase", f"--include={include}", suite, str(partial), mirror],
         timeout=1800, log=log)
    got = subprocess.run(["chroot", str(partial), "python3", "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                         capture_output=True, text=True, check=True).stdout.strip()
    if got != python:
        raise CheckFailed(f"Debian {suite} has Python {got}, the image has {python}: no faithful stand-in")
    # The image's interpreter lives in /usr/local with pip beside it; a venv there behaves alike.
    run(["chroot", str(partial), "python3", "-m", "venv", "/usr/local"], timeout=300, log=log)
    (partial / ".complete").write_text(f"{suite} python{python} from {mirror}\n")
    partial.rename(base)
    return base


def _mounts_under(path: Path) -> list[str]:
    prefix = str(path.resolve()) + "/"
    with open("/proc/self/mountinfo") as fh:
        points = [line.split()[4] for line in fh]
    return [p for p in points if p.startswith(prefix) or p == prefix[:-1]]


def safe_rmtree(path: Path) -> None:
    if not path.exists():
        return
    mounted = _mounts_under(path)
    if mounted:  # never delete through a bind mount into the host
        raise CheckFailed(f"refusing to delete {path}: still mounted: {mounted}")
    subprocess.run(["rm", "-rf", "--one-file-system", str(path)], check=True)


def _user_ids(root: Path, user: str) -> tuple[int, int, str]:
    """USER `name[:group]` or `uid[:gid]` resolved in the image's own passwd and group files."""
    name, _, group = user.partition(":")
    passwd = [line.split(":") for line in (root / "etc/passwd").read_text().splitlines() if line]
    groups = [line.split(":") for line in (root / "etc/group").read_text().splitlines() if line]
    entry = next((e for e in passwd if e[0] == name or e[2] == name), None)
    if entry is None and not name.isdigit():
        raise CheckFailed(f"USER {user}: no such user in the image")
    uid = int(entry[2]) if entry else int(name)
    home = entry[5] if entry else "/"
    if group:
        g = next((e for e in groups if e[0] == group or e[2] == group), None)
        if g is None and not group.isdigit():
            raise CheckFailed(f"USER {user}: no such group in the image")
        gid = int(g[2]) if g else int(group)
    else:
        gid = int(entry[3]) if entry else uid
    return uid, gid, home


def chroot_argv(root: Path, user: str, env: dict[str, str], workdir: str, argv: list[str]) -> list[str]:
    uid, gid, home = _user_ids(root, user)
    env = {"HOME": home, **env}
    (root / workdir.lstrip("/")).mkdir(parents=True, exist_ok=True)
    return ["chroot", f"--userspec={uid}:{gid}", str(root), "/usr/bin/env", "-i", "-C", workdir,
            *(f"{k}={v}" for k, v in env.items()), *argv]


def copy_step(step: Step, context: Path, root: Path, ignore: IgnoreRules) -> None:
    dest = step.dest
    into_dir = dest.endswith("/") or len(step.sources) > 1
    for source in step.sources:
        matches = sorted(context.glob(source)) if any(c in source for c in "*?[") else [context / source]
        matches = [m for m in matches if m.exists() and not ignore.excludes(m.relative_to(context).as_posix())]
        if not matches:
            raise CheckFailed(f"line {step.line}: COPY {source}: not in the build context")
        for src in matches:
            if src.is_dir():
                target = root / dest.lstrip("/")
                _copy_tree(src, target, context, ignore)
            else:
                target = root / dest.lstrip("/")
                if into_dir or target.is_dir():
                    target = target / src.name
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, target)
                os.chown(target, 0, 0)


def _copy_tree(src: Path, target: Path, context: Path, ignore: IgnoreRules) -> None:
    # A directory source copies its contents, as Docker does, owned by root.
    target.mkdir(parents=True, exist_ok=True)
    for path in sorted(src.rglob("*")):
        rel = path.relative_to(context).as_posix()
        if ignore.excludes(rel):
            continue
        out = target / path.relative_to(src)
        if path.is_dir():
            out.mkdir(parents=True, exist_ok=True)
        else:
            out.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, out)
        os.chown(out, 0, 0)


@contextmanager
def mounted_proc(root: Path) -> Iterator[None]:
    proc = root / "proc"
    proc.mkdir(exist_ok=True)
    subprocess.run(["mount", "-t", "proc", "proc", str(proc)], check=True)
    try:
        yield
    finally:
        if subprocess.run(["umount", str(proc)]).returncode != 0:
            subprocess.run(["umount", "-l", str(proc)])


@contextmanager
def read_only_root(root: Path) -> Iterator[None]:
    """The root read-only with a tmpfs on /tmp, as deploy/kubernetes runs the image."""
    mounted: list[Path] = []
    try:
        for argv, point in (
            (["mount", "--bind", str(root), str(root)], root),
            (["mount", "-o", "remount,bind,ro", str(root)], None),
            (["mount", "-t", "proc", "proc", str(root / "proc")], root / "proc"),
            (["mount", "-t", "tmpfs", "-o", "size=256m", "tmpfs", str(root / "tmp")], root / "tmp"),
        ):
            subprocess.run(argv, check=True)
            if point is not None:
                mounted.append(point)
        yield
    finally:
        for point in reversed(mounted):
            if subprocess.run(["umount", str(point)]).returncode != 0:
                subprocess.run(["umount", "-l", str(point)])


def private_network() -> bool:
    """Move this process into a new network namespace with loopback up; False if not permitted."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(_CLONE_NEWNET) != 0:
        return False
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    return True
