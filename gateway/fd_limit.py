"""The process's open-file limit, lifted to what the connection cap needs (or the cap lowered to fit)."""

from __future__ import annotations

import resource

__all__ = ["raise_fd_limit"]

#: Open files kept for everything but connections: logs, policy files, Redis, litellm's clients.
_FD_RESERVE = 256


def raise_fd_limit(max_connections: int) -> tuple[int, str | None]:
    """Lift the soft open-file limit to what `max_connections` needs: the cap that fits, and a
    warning when it had to be lowered.

    Each client connection may hold an upstream connection too, plus files and Redis: a cap the
    process cannot reach would fail at accept() (EMFILE, a reset the client cannot tell from a
    crash) and take upstream calls with it, so the cap is lowered to what fits and a connection
    beyond it gets the cap's clean 503.
    """
    need = 2 * max_connections + _FD_RESERVE
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < need:
        target = need if hard == resource.RLIM_INFINITY else min(need, hard)
        if target > soft:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
    if soft != resource.RLIM_INFINITY and soft < need:
        fits = max(1, (soft - _FD_RESERVE) // 2)
        return fits, (f"open-file limit {soft} is below the {need} that GATEWAY_MAX_CONNECTIONS={max_connections} "
                      f"needs; serving at most {fits} connections (a 503 beyond); raise `ulimit -n` for more")
    return max_connections, None
