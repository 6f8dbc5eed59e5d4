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
   deploy/kubernetes runs it), in a private network namespace so the image's own port is free,
   with the run-time environment `docker run -e` would add (a master key, since the image binds
   0.0.0.0, and the simulator key so the default catalog has a usable deployment). Then: /readyz answers 200, the HEALTHCHECK command exits 0, /v1/models needs
   the key and lists deployments, and SIGTERM drains and exits within the grace period.

Prints one line per step with its time and exits 0 only if every step passed. Needs root
(debootstrap, chroot, mount, unshare). What it cannot show: the real base image's own files
(Python is Debian's build, not python.org's), layer caching, and the container runtime's cgroups.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import socket
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
from debian_root import (  # noqa: E402
    CheckFailed, apt_mirror, build_base, chroot_argv, copy_step, mounted_proc, parse_base, private_network,
    read_only_root, run, safe_rmtree, tail,
)
from dockerfile import DockerfileError, IgnoreRules, Recipe, read_recipe  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
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
            raise CheckFailed(f"`gateway serve` exited with {proc.returncode}{tail(log)}")
        try:
            if check():
                return
        except OSError:
            pass
        time.sleep(0.25)
    raise CheckFailed(f"not ready within {deadline_s:g} s{tail(log)}")


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
    with mounted_proc(root):
        for step in recipe.steps:
            label = f"line {step.line}: " + (f"COPY {' '.join(step.sources)}" if step.kind == "copy"
                                             else f"RUN {(step.shell or ' '.join(step.argv or []))[:60]}")
            with report.step(label):
                if step.kind == "copy":
                    copy_step(step, context, root, ignore)
                else:
                    argv = step.argv if step.argv is not None else ["/bin/sh", "-c", step.shell or ""]
                    env = {**step.env, **build_env}
                    run(chroot_argv(root, step.user, env, step.workdir, argv), timeout=1800, log=log)
        lent_ca.unlink(missing_ok=True)
        with read_only_root(root):
            _start(recipe, root, report, log, run_env, ready_timeout, drain_timeout)


def _start(recipe: Recipe, root: Path, report: Report, log: Path, run_env: dict[str, str],
           ready_timeout: float, drain_timeout: float) -> None:
    if not recipe.expose:
        raise CheckFailed("the image EXPOSEs no port to poll")
    port = recipe.expose[0]
    base = f"http://127.0.0.1:{port}"
    with report.step("network namespace for the start"):
        if not private_network():
            # On the host network a server already on the port would answer the polls instead.
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    raise CheckFailed(f"unshare refused and port {port} is already in use on the host")
            print(f"   (unshare refused: using the host network, port {port} is free)")
    env = {**recipe.env, **run_env}
    argv = chroot_argv(root, recipe.user, env, recipe.workdir, recipe.start_argv)
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
                hc = chroot_argv(root, recipe.user, recipe.env, recipe.workdir, recipe.healthcheck)
                run(hc, timeout=30, log=log)
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
                raise CheckFailed(f"exit status {proc.returncode} after SIGTERM{tail(serve_log)}")
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
            safe_rmtree(root)
            run(["cp", "-a", str(base), str(root)], timeout=600, log=log)
        replay(recipe, args.context.resolve(), root, report, log, run_env, args.build_ca, args.ready_timeout, args.drain_timeout)
        passed = True
    except CheckFailed as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
    finally:
        report.print(passed)
        if args.keep == "always" or (args.keep == "failed" and not passed):
            print(f"root and logs kept in {work}")
        else:
            safe_rmtree(work)
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
