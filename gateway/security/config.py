"""Config models for gateway keys and rate limits: the `keys:` and `rate_limits:` config sections.

The config holds only SHA-256 hashes of gateway keys (`gateway keys hash` prints one from stdin),
never a key itself. Pipeline rate limits live here too rather than in policy files: they protect
the gateway and its provider quotas, an operator concern, and must not change with a policy edit.

```yaml
keys:
  - name: support-bot
    sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
    pipeline: customer-support        # optional: the only pipeline this key may use
    rpm: 600                          # optional per-key limits
    tpm: 200000
rate_limits:
  pipelines:
    customer-support: {rpm: 1200, tpm: 400000}
  assumed_completion_tokens: 512      # TPM charge when a request sets no max_tokens
```
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["MASTER_NAME", "KeySpec", "Limits", "RateLimitConfig", "check_keys"]

_NAME = r"^[A-Za-z0-9][A-Za-z0-9._:/@-]{0,127}$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Limits(_Strict):
    """Requests and tokens per minute; a missing figure means no limit on that axis."""

    rpm: int | None = Field(None, ge=1, le=10_000_000, description="Requests per minute.")
    tpm: int | None = Field(
        None, ge=1, le=10_000_000_000,
        description="Tokens per minute: estimated prompt tokens + max_tokens, charged at admission.",
    )

    @property
    def active(self) -> bool:
        return self.rpm is not None or self.tpm is not None


class KeySpec(Limits):
    """One gateway key: its name (shown in logs and metrics), its hash and what it may do."""

    name: str = Field(pattern=_NAME)
    sha256: str = Field(
        pattern=r"^[0-9a-f]{64}$", description="Lower-case hex SHA-256 of the key (`gateway keys hash`)."
    )
    pipeline: str | None = Field(
        None, pattern=_NAME, description="Bind the key to this pipeline: X-Pipeline-Id defaults to it; another is 403."
    )


class RateLimitConfig(_Strict):
    pipelines: dict[str, Limits] = Field(default_factory=dict, description="Limits per X-Pipeline-Id.")
    assumed_completion_tokens: int = Field(
        512, ge=0, le=10_000_000, description="Completion tokens charged to TPM when a request sets no max_tokens."
    )

    @model_validator(mode="after")
    def _names(self) -> RateLimitConfig:
        for name in self.pipelines:
            if not re.match(_NAME, name):
                raise ValueError(f"rate_limits.pipelines: invalid pipeline name {name[:40]!r}")
        return self


#: The name the master key's requests carry (logs, events, feedback ownership), so no gateway key
#: may have it: a key named so could score the operator's requests as its own.
MASTER_NAME = "master"


def check_keys(keys: list[KeySpec]) -> list[KeySpec]:
    """Names and hashes must be unique: a hash listed twice would make its limits ambiguous."""
    names: set[str] = set()
    hashes: set[str] = set()
    for key in keys:
        if key.name == MASTER_NAME:
            raise ValueError(f"key name {MASTER_NAME!r} is reserved for the master key (GATEWAY_MASTER_KEY)")
        if key.name in names:
            raise ValueError(f"key name {key.name!r} is listed twice")
        if key.sha256 in hashes:
            raise ValueError(f"key {key.name!r}: the same sha256 is listed under another name")
        names.add(key.name)
        hashes.add(key.sha256)
    return keys
