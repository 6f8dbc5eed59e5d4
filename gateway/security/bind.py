"""The bind rule: without gateway keys the gateway serves loopback only, unless told `--insecure`."""

from __future__ import annotations

import ipaddress

__all__ = ["bind_refusal", "is_loopback_host", "startup_notice"]


def is_loopback_host(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a hostname could resolve to anything: treat it as public


def bind_refusal(host: str, auth_enabled: bool, insecure: bool) -> str | None:
    """Why `gateway serve` must not bind `host`, or None when it may."""
    if auth_enabled or insecure or is_loopback_host(host):
        return None
    return (
        f"refusing to bind {host}: no gateway keys are configured, so anyone who can reach this address "
        "could spend the provider keys. Add keys (config `keys:`, hashes from `gateway keys hash`) or set "
        "GATEWAY_MASTER_KEY, bind 127.0.0.1, or pass --insecure if something in front of the gateway "
        "authenticates callers."
    )


def startup_notice(host: str, auth_enabled: bool, insecure: bool, n_keys: int) -> str:
    if auth_enabled:
        return f"authentication on: {n_keys} key(s); /healthz and /readyz are open"
    if insecure and not is_loopback_host(host):
        return f"WARNING: authentication is OFF and the gateway listens on {host} (--insecure)"
    return "no gateway keys configured: authentication is off, serving loopback clients only"
