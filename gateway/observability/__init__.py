"""Operator experience: Prometheus metrics, structured request logs, and the dashboard's history."""

from gateway.observability._logline import REQUEST_LOGGER
from gateway.observability.multiprocess import prepare_multiprocess_dir
from gateway.observability.observer import METRICS_CONTENT_TYPE, Observer

__all__ = ["METRICS_CONTENT_TYPE", "REQUEST_LOGGER", "Observer", "prepare_multiprocess_dir"]
