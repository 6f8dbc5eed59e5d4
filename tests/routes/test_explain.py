"""`POST /v1/selection/explain` names the request it explains by the id its header carries."""

from __future__ import annotations

from tests import loopback


def test_the_body_and_the_header_name_the_same_request(gateway_factory):
    gw = gateway_factory()
    r = loopback.post(f"{gw.base_url}/selection/explain", timeout=30,
                      json={"model": "auto", "messages": [{"role": "user", "content": "hi"}]})
    assert r.status_code == 200, r.text
    assert r.json()["request_id"] == r.headers["x-gateway-request-id"]
    assert r.json()["request_id"].startswith("req_")
