"""Authentication, hostile-input checks and rate limits (see docs/security.md).

Kept import-light: `gateway.catalog` imports the config models from here.
"""

from gateway.security.config import KeySpec, Limits, RateLimitConfig

__all__ = ["KeySpec", "Limits", "RateLimitConfig"]
