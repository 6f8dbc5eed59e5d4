"""The rows of the benchmark: how to start each proxy under test and what to send it.

Each `Row.start(env)` spawns the proxy pinned to the proxy core and returns a `Started` with the
process (None for `direct`), the chat-completions URL and the readiness URL.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import procs

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
LITELLM_VENV = REPO / "bench" / ".venv-litellm"
LITELLM_VERSION = "1.99.4"
SIM_KEY = "sk-bench"


@dataclass
class Env:
    sim_base: str  # e.g. http://127.0.0.1:P/v1
    work: Path  # temp dir for configs and logs
    proxy_cpus: set[int]
    load_cpus: set[int]
    redis_url: str | None = None  # set once run.py has started redis-server


@dataclass
class Started:
    proc: procs.Proc | None
    chat_url: str
    ready_url: str | None


@dataclass
class Row:
    key: str
    label: str
    model: str  # `model` field sent in the request body
    start: Callable[[Env], Started]
    optional: bool = False  # only with --with-litellm


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    env.update(extra or {})
    return env


def _direct(e: Env) -> Started:
    return Started(None, f"{e.sim_base}/chat/completions", None)


def _passthrough(script: str) -> Callable[[Env], Started]:
    def start(e: Env) -> Started:
        port = procs.free_port()
        proc = procs.spawn(script, [sys.executable, str(HERE / script), "--upstream", e.sim_base,
                                    "--port", str(port)], cpus=e.proxy_cpus, env=_env(), log_dir=e.work)
        base = f"http://127.0.0.1:{port}"
        return Started(proc, f"{base}/v1/chat/completions", f"{base}/healthz")

    return start


def gateway_supports_redis() -> bool:
    try:
        from gateway.settings import Settings
    except Exception:  # noqa: BLE001
        return False
    return "redis_url" in Settings.model_fields


def _gateway(redis: bool) -> Callable[[Env], Started]:
    def start(e: Env) -> Started:
        port = procs.free_port()
        extra = {"BENCH_SIM_URL": e.sim_base, "BENCH_SIM_API_KEY": SIM_KEY, "GATEWAY_LOG_LEVEL": "info"}
        env = _env(extra)
        env.pop("GATEWAY_REDIS_URL", None)
        if redis:
            env["GATEWAY_REDIS_URL"] = e.redis_url or ""

        cmd = [str(REPO / ".venv" / "bin" / "gateway"), "serve", "--config", str(HERE / "gateway_catalog.yaml"),
               "--policies", str(HERE / "policies"), "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
        proc = procs.spawn("gateway-redis" if redis else "gateway", cmd, cpus=e.proxy_cpus, env=env,
                           log_dir=e.work, cwd=REPO)
        base = f"http://127.0.0.1:{port}"
        return Started(proc, f"{base}/v1/chat/completions", f"{base}/readyz")

    return start


def ensure_litellm_venv() -> Path:
    """Create bench/.venv-litellm with litellm[proxy]==1.99.4 unless it is already there."""
    exe = LITELLM_VENV / "bin" / "litellm"
    if exe.exists():
        return exe
    print(f"setting up {LITELLM_VENV} (litellm[proxy]=={LITELLM_VERSION}; takes a few minutes) ...", flush=True)
    subprocess.run(["python3", "-m", "venv", str(LITELLM_VENV)], check=True)
    subprocess.run([str(LITELLM_VENV / "bin" / "pip"), "install", "-q", f"litellm[proxy]=={LITELLM_VERSION}"],
                   check=True)
    return exe


_LITELLM_YAML = """\
model_list:
  - model_name: sim-model
    litellm_params: {{model: openai/sim-model, api_base: "{base}", api_key: "{key}"}}
  - model_name: sim-model
    litellm_params: {{model: openai/sim-model, api_base: "{base}", api_key: "{key}"}}
router_settings:
  routing_strategy: {strategy}
litellm_settings:
  telemetry: false
  set_verbose: false
"""


def _litellm(strategy: str) -> Callable[[Env], Started]:
    def start(e: Env) -> Started:
        exe = ensure_litellm_venv()
        cfg = e.work / f"litellm-{strategy}.yaml"
        cfg.write_text(_LITELLM_YAML.format(base=e.sim_base, key=SIM_KEY, strategy=strategy))
        port = procs.free_port()
        env = {k: v for k, v in os.environ.items()
               if not k.lower().endswith("_proxy") and k not in ("PYTHONPATH", "VIRTUAL_ENV", "DATABASE_URL")}
        env.update({"LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_LOG": "ERROR",
                    "LITELLM_DONT_SHOW_FEEDBACK_BOX": "true", "DISABLE_SCHEMA_UPDATE": "true"})
        proc = procs.spawn(f"litellm-{strategy}",
                           [str(exe), "--config", str(cfg), "--host", "127.0.0.1", "--port", str(port)],
                           cpus=e.proxy_cpus, env=env, log_dir=e.work, cwd=e.work)
        base = f"http://127.0.0.1:{port}"
        return Started(proc, f"{base}/v1/chat/completions", f"{base}/health/liveliness")

    return start


ROWS: list[Row] = [
    Row("direct", "direct to upstream", "sim-model", _direct),
    Row("aiohttp", "bare aiohttp passthrough (uvicorn)", "sim-model", _passthrough("passthrough_aiohttp.py")),
    Row("httpx", "bare httpx passthrough (uvicorn)", "sim-model", _passthrough("passthrough_httpx.py")),
    Row("litellm-shuffle", f"LiteLLM proxy {LITELLM_VERSION}, simple-shuffle", "sim-model",
        _litellm("simple-shuffle"), optional=True),
    Row("litellm-latency", f"LiteLLM proxy {LITELLM_VERSION}, latency-based-routing", "sim-model",
        _litellm("latency-based-routing"), optional=True),
    Row("gateway", "gateway (memory stats)", "auto", _gateway(False)),
    Row("gateway-redis", "gateway (redis stats)", "auto", _gateway(True)),
]
