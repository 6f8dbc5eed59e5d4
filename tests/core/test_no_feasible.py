"""A request nothing can serve: its 422 says why without growing with the catalog.

Direct calls over a real catalog of many deployments; the HTTP path of the same error is covered by
tests/security/test_tenants.py.
"""

from __future__ import annotations

import pytest

from gateway import errors
from gateway.catalog import GatewayConfig, load_catalog
from gateway.core.decision import Decider
from gateway.policy import PolicySet
from gateway.selection.engine import SelectionEngine

BASE = "http://127.0.0.1:9/v1"


def _decider(n: int) -> Decider:
    deps = [
        {"name": f"dep-{i:03d}", "model": "openai/gpt-4o-mini", "api_base": BASE,
         "metadata": {"supports_vision": False}}
        for i in range(n)
    ]
    catalog = load_catalog(GatewayConfig.model_validate({"deployments": deps}), env={})
    return Decider(catalog, SelectionEngine(), lambda: PolicySet())


_IMAGE = {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}


@pytest.mark.parametrize("n", [3, 200])
def test_the_message_names_ten_rejections_and_counts_the_rest(n):
    body = {"model": "auto", "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}, _IMAGE]}]}
    with pytest.raises(errors.NoFeasibleModelError) as caught:
        _decider(n).decide(body, {}, "r1")
    exc = caught.value
    named = [f"dep-{i:03d}: " for i in range(min(n, errors.NoFeasibleModelError.SHOWN))]
    assert all(name in exc.message for name in named)
    assert f"dep-{errors.NoFeasibleModelError.SHOWN:03d}:" not in exc.message
    if n > errors.NoFeasibleModelError.SHOWN:
        assert f"and {n - errors.NoFeasibleModelError.SHOWN} more (POST /v1/selection/explain" in exc.message
        assert len(exc.message) < 2_000
    else:
        assert "more (POST" not in exc.message
    # Every rejection is still there for whoever reads the error, with its reasons.
    assert len(exc.rejected) == n
    assert [name for name, _ in exc.rejected] == [f"dep-{i:03d}" for i in range(n)]
    assert all("vision" in "; ".join(reasons) for _, reasons in exc.rejected[-3:])
