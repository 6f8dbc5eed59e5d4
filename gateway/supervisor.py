"""`gateway serve --workers N`: uvicorn worker processes behind one socket, drained on SIGTERM.

uvicorn's own supervisor (`Multiprocess`) keeps the parent's copy of the listening socket open
until every worker has drained, so for the whole grace period the kernel still completes new
connections that no worker will ever accept: those clients hang, then get reset when the parent
exits (uvicorn PR #2010, closed unmerged). Closing the parent's copy before signalling the workers
makes new connections fail fast with "connection refused" while accepted requests finish.
"""

from __future__ import annotations

import uvicorn
from uvicorn.supervisors.multiprocess import Multiprocess

__all__ = ["run_workers"]


class _DrainingMultiprocess(Multiprocess):
    def terminate_all(self) -> None:
        # Only the listening socket: connections already accepted live in the workers.
        for sock in self.sockets:
            sock.close()
        super().terminate_all()


def run_workers(config: uvicorn.Config) -> None:
    """Serve `config` (an import string app, `config.workers` > 1) until SIGINT/SIGTERM."""
    sock = config.bind_socket()
    _DrainingMultiprocess(config, sockets=[sock]).run()
