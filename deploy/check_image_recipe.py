#!/usr/bin/env python3
"""Replay the Dockerfile in a Debian chroot and check that the gateway it installs becomes ready.

    sudo python3 deploy/check_image_recipe.py [--dockerfile Dockerfile] [--keep] [-e KEY=VALUE ...]

No container engine runs on the project's machines, so this stands in for `docker build` plus
`docker run` (docs/deploy.md#how-the-image-recipe-is-checked):

1. base: `debootstrap` builds the Debian suite the `FROM python:X.Y...-slim-SUITE` image is made
   of, from the mirror apt is configured with, plus what the slim image carries (ca-certificates,
   netbase, tzdata) and Debian's python3 of the same X.Y, made the image's `/usr/local` Python by
   a venv there. Cached under --cache; every run replays on a fresh copy.
2. build: every COPY (honouring .dockerignore), RUN, ENV, WORKDIR and USER in order, RUN through
   `chroot` with exactly the image's environment, network on (pip reaches the package registry).
3. start: ENTRYPOINT + CMD as the image's USER, on a read-only root with a tmpfs /tmp (as
   deploy/kubernetes runs it), in a private network namespace so the image's own port is free, with the run-time environment `docker run -e` would add (a master key, since
   the image binds 0.0.0.0, and the simulator key so the default catalog has a usable
   deployment). Then: /readyz answers 200, the HEALTHCHECK command exits 0, /v1/models needs
   the key and lists deployments, and SIGTERM drains and exits within the grace period.

Prints one line per step with its time and exits 0 only if every step passed. Needs root
(debootstrap, chroot, mount, unshare). What it cannot show: the real base image's own files
(Python is Debian's build, not python.org's), layer caching, and the container runtime's cgroups.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from dockerfile import DockerfileError, IgnoreRules, Recipe, Step, read_recipe  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
#: What python:*-slim installs besides Python itself (its Dockerfile's runtime packages).
SLIM_PACKAGES = ["ca-certificates", "netbase", "tzdata"]
_CLONE_NEWNET = 0x40000000


class CheckFailed(RuntimeError):
    pass


class Report:
    def __init__(self) -> None:
        self.rows: list[tuple[str, float, str]] = []
        self.started = time.monotonic()

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        t0 = time.monotonic()
        print(f"-- {name}", flush=True)
        try:
            yield
        except BaseException as exc:
            self.rows.append((name, time.monotonic() - t0, f"FAIL: {exc}"))
            raise
        self.rows.append((name, time.monotonic() - t0, "ok"))

    def print(self, passed: bool) -> None:
        width = max(len(name) for name, _, _ in self.rows) if self.rows else 10
        print()
        for name, seconds, result in self.rows:
            print(f"{name:<{width}}  {seconds:7.1f} s  {result}")
        total = time.monotonic() - self.started
        print(f"{'image recipe check':<{width}}  {total:7.1f} s  {'PASS' if passed else 'FAIL'}", flush=True)


def _run(argv: list[str], *, timeout: float, log: Path) -> None:
    with open(log, "ab") as out:
        out.write(f"$ {' '.join(argv)}\n".encode())
        out.flush()
        proc = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, timeout=timeout)
    if proc.returncode != 0:
        raise CheckFailed(f"exit {proc.returncode}: {' '.join(argv[-3:])}{_tail(log)}")


def _tail(path: Path, lines: int = 15) -> str:
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
    shutil.rmtree(base, ignore_errors=True)
    partial = cache / f"{suite}-python{python}.partial"
    _safe_rmtree(partial)
    cache.mkdir(parents=True, exist_ok=True)
    include = ",".join([*SLIM_PACKAGES, "python3", "python3-venv"])
    _run(["debootstrap", "--variant=minbase", f"--include={include}", suite, str(partial), mirror],
         timeout=1800, log=log)
    got = subprocess.run(["chroot", str(partial), "python3", "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                         capture_output=True, text=True, check=True).stdout.strip()
    if got != python:
        raise CheckFailed(f"Debian {suite} has Python {got}, the image has {python}: no faithful stand-in")
    # The image's interpreter lives in /usr/local with pip beside it; a venv there behaves alike.
    _run(["chroot", str(partial), "python3", "-m", "venv", "/usr/local"], timeout=300, log=log)
    (partial / ".complete").write_text(f"{suite} python{python} from {mirror}\n")
    partial.rename(base)
    return base


def _mounts_under(path: Path) -> list[str]:
    prefix = str(path.resolve()) + "/"
    with open("/proc/self/mountinfo") as fh:
        points = [line.split()[4] for line in fh]
    return [p for p in points if p.startswith(prefix) or p == prefix[:-1]]


def _safe_rmtree(path: Path) -> None:
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


def _chroot_argv(root: Path, user: str, env: dict[str, str], workdir: str, argv: list[str]) -> list[str]:
    uid, gid, home = _user_ids(root, user)
    env = {"HOME": home, **env}
    (root / workdir.lstrip("/")).mkdir(parents=True, exist_ok=True)
    return ["chroot", f"--userspec={uid}:{gid}", str(root), "/usr/bin/env", "-i", "-C", workdir,
            *(f"{k}={v}" for k, v in env.items()), *argv]


def _copy(step: Step, context: Path, root: Path, ignore: IgnoreRules) -> None:
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
def _mounted_proc(root: Path) -> Iterator[None]:
    proc = root / "proc"
    proc.mkdir(exist_ok=True)
    subprocess.run(["mount", "-t", "proc", "proc", str(proc)], check=True)
    try:
        yield
    finally:
        if subprocess.run(["umount", str(proc)]).returncode != 0:
            subprocess.run(["umount", "-l", str(proc)])


@contextmanager
def _read_only_root(root: Path) -> Iterator[None]:
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


def _private_network() -> bool:
    """Move this process into a new network namespace with loopback up; False if not permitted."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(_CLONE_NEWNET) != 0:
        return False
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    return True


def _http(url: str, headers: dict[str, str] | None = None, timeout: float = 3.0) -> tuple[int, bytes]:
    req = urllib.request.Request(url, headers=headers or {})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback, never a proxy
    try:
        with opener.open(req, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _poll(check: Callable[[], bool], proc: subprocess.Popen, deadline_s: float, log: Path) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise CheckFailed(f"`gateway serve` exited with {proc.returncode}{_tail(log)}")
        try:
            if check():
                return
        except OSError:
            pass
        time.sleep(0.25)
    raise CheckFailed(f"not ready within {deadline_s:g} s{_tail(log)}")


def replay(recipe: Recipe, context: Path, root: Path, report: Report, log: Path, run_env: dict[str, str],
           build_ca: Path | None, ready_timeout: float, drain_timeout: float) -> None:
    ignore = IgnoreRules.load(context)
    shutil.copy2("/etc/resolv.conf", root / "etc/resolv.conf")  # RUN steps reach the package registry
    build_env: dict[str, str] = {}
    lent_ca = root / "run/build-ca.crt"
    if build_ca is not None:
        # Where the registry is reached through a TLS-inspecting proxy, `docker build` needs the
        # proxy's CA as a build secret too. It is lent to RUN steps only and removed before the start.
        lent_ca.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(build_ca, lent_ca)
        build_env = {"PIP_CERT": "/run/build-ca.crt"}
    with _mounted_proc(root):
        for step in recipe.steps:
            label = f"line {step.line}: " + (f"COPY {' '.join(step.sources)}" if step.kind == "copy"
                                             else f"RUN {(step.shell or ' '.join(step.argv or []))[:60]}")
            with report.step(label):
                if step.kind == "copy":
                    _copy(step, context, root, ignore)
                else:
                    argv = step.argv if step.argv is not None else ["/bin/sh", "-c", step.shell or ""]
                    env = {**step.env, **build_env}
                    _run(_chroot_argv(root, step.user, env, step.workdir, argv), timeout=1800, log=log)
        lent_ca.unlink(missing_ok=True)
        with _read_only_root(root):
            _start(recipe, root, report, log, run_env, ready_timeout, drain_timeout)


def _start(recipe: Recipe, root: Path, report: Report, log: Path, run_env: dict[str, str],
           ready_timeout: float, drain_timeout: float) -> None:
    if not recipe.expose:
        raise CheckFailed("the image EXPOSEs no port to poll")
    port = recipe.expose[0]
    base = f"http://127.0.0.1:{port}"
    with report.step("network namespace for the start"):
        if not _private_network():
            print("   (unshare refused: using the host network; the port must be free)")
    env = {**recipe.env, **run_env}
    argv = _chroot_argv(root, recipe.user, env, recipe.workdir, recipe.start_argv)
    serve_log = log.with_name("serve.log")
    with open(serve_log, "wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
    try:
        with report.step(f"start `{' '.join(recipe.start_argv)}` (root read-only): /readyz 200"):
            def ready() -> bool:
                status, body = _http(f"{base}/readyz")
                return status == 200 and json.loads(body).get("deployments", 0) > 0
            _poll(ready, proc, ready_timeout, serve_log)
        if recipe.healthcheck:
            with report.step("HEALTHCHECK command exits 0"):
                hc = _chroot_argv(root, recipe.user, recipe.env, recipe.workdir, recipe.healthcheck)
                _run(hc, timeout=30, log=log)
        key = run_env.get("GATEWAY_MASTER_KEY")
        if key:
            with report.step("/v1/models: 401 without the key, deployments with it"):
                status, _ = _http(f"{base}/v1/models")
                if status != 401:
                    raise CheckFailed(f"/v1/models without a key answered {status}, not 401")
                status, body = _http(f"{base}/v1/models", {"Authorization": f"Bearer {key}"})
                models = [m["id"] for m in json.loads(body).get("data", [])] if status == 200 else []
                if not models:
                    raise CheckFailed(f"/v1/models with the key answered {status} and no models")
                print(f"   {len(models)} models: {', '.join(models[:6])}")
        with report.step("SIGTERM: drains and exits"):
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=drain_timeout)
            except subprocess.TimeoutExpired:
                raise CheckFailed(f"still running {drain_timeout:g} s after SIGTERM") from None
            if proc.returncode not in (0, -signal.SIGTERM):
                raise CheckFailed(f"exit status {proc.returncode} after SIGTERM{_tail(serve_log)}")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dockerfile", type=Path, default=ROOT / "Dockerfile")
    p.add_argument("--context", type=Path, default=ROOT, help="build context (default: the repository)")
    p.add_argument("--cache", type=Path, default=Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
                   / "gateway-image-check", help="where the debootstrapped base root is kept between runs")
    p.add_argument("--mirror", help="Debian mirror (default: the one apt is configured with)")
    p.add_argument("--workdir", type=Path, help="replay here instead of a fresh temporary directory")
    p.add_argument("--keep", choices=["always", "failed", "never"], default="failed",
                   help="when to keep the replayed root and its logs (default: after a failure)")
    p.add_argument("-e", "--env", action="append", default=[], metavar="KEY=VALUE",
                   help="run-time environment, as `docker run -e` (repeatable)")
    p.add_argument("--build-ca", type=Path, default=os.environ.get("PIP_CERT") or None,
                   help="CA bundle lent to RUN steps as PIP_CERT (default: $PIP_CERT, for a TLS-inspecting proxy)")
    p.add_argument("--ready-timeout", type=float, default=120.0)
    p.add_argument("--drain-timeout", type=float, default=45.0)
    args = p.parse_args(argv)
    if os.geteuid() != 0:
        print("check_image_recipe: needs root (debootstrap, chroot, mount, unshare)", file=sys.stderr)
        return 2
    for tool in ("debootstrap", "chroot", "mount", "unshare", "ip"):
        if shutil.which(tool) is None:
            print(f"check_image_recipe: {tool} is missing (apt-get install debootstrap iproute2)", file=sys.stderr)
            return 2
    run_env = {"GATEWAY_MASTER_KEY": "sk-check-" + secrets.token_hex(16),
               "SIMULATOR_API_KEY": "sk-sim-" + secrets.token_hex(8)}
    run_env.update(dict(kv.split("=", 1) for kv in args.env))

    report = Report()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="gateway-image-check-"))
    work.mkdir(parents=True, exist_ok=True)
    log = work / "build.log"
    passed = False
    try:
        with report.step(f"read {args.dockerfile.name}"):
            try:
                recipe = read_recipe(args.dockerfile.read_text())
            except DockerfileError as exc:
                raise CheckFailed(str(exc)) from None
            python, suite = parse_base(recipe.base_image)
        mirror = args.mirror or apt_mirror(suite)
        with report.step(f"base: debootstrap {suite} + python{python} ({mirror})"):
            base = build_base(args.cache, python, suite, mirror, log)
        root = work / "root"
        with report.step("fresh copy of the base root"):
            _safe_rmtree(root)
            _run(["cp", "-a", str(base), str(root)], timeout=600, log=log)
        replay(recipe, args.context.resolve(), root, report, log, run_env, args.build_ca, args.ready_timeout, args.drain_timeout)
        passed = True
    except CheckFailed as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
    finally:
        report.print(passed)
        if args.keep == "always" or (args.keep == "failed" and not passed):
            print(f"root and logs kept in {work}")
        else:
            _safe_rmtree(work)
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
