"""Authentication over real HTTP: missing/wrong keys, Bearer and api-key, the master key, bound
pipelines, which routes are open, and the auth-off loopback rule."""

from __future__ import annotations

import base64

import httpx
import openai
import pytest

from gateway.security.keys import KeyRing, hash_key
from gateway.security.middleware import SecurityMiddleware

from .conftest import KEYS, MASTER, auth, chat
from tests import loopback

PROTECTED = [
    ("POST", "/v1/chat/completions"), ("POST", "/v1/selection/explain"), ("POST", "/v1/feedback"),
    ("GET", "/v1/models"), ("GET", "/v1/gateway/stats"), ("GET", "/dashboard"),
    ("GET", "/dashboard/dashboard.js"), ("GET", "/metrics"), ("GET", "/openapi.json"),
]


def _error(resp: httpx.Response, status: int, etype: str) -> dict:
    assert resp.status_code == status, resp.text
    err = resp.json()["error"]
    assert err["type"] == etype and err["message"]
    return err


@pytest.mark.parametrize("method,path", PROTECTED)
def test_every_route_needs_a_key(secure_gateway, method, path):
    for headers in ({}, auth("gw-wrong-key"), {"api-key": "gw-wrong-key"}, {"Authorization": "Basic Zm9vOmJhcg=="}):
        resp = loopback.request(method, secure_gateway.url + path, json=chat(), headers=headers)
        err = _error(resp, 401, "authentication_error")
        assert err["code"] == "invalid_api_key"
        assert "gw-wrong-key" not in resp.text
    resp = loopback.request(method, secure_gateway.url + path, json=chat(), headers=auth(MASTER))
    assert resp.status_code != 401


@pytest.mark.parametrize("path", [path for method, path in PROTECTED if method == "GET" and path != "/openapi.json"])
def test_head_needs_the_key_its_get_needs(secure_gateway, path):
    # Every GET route answers HEAD (gateway/app.py): the same gate, without a body to say why.
    for headers in ({}, auth("gw-wrong-key")):
        resp = loopback.head(secure_gateway.url + path, headers=headers)
        assert resp.status_code == 401 and resp.content == b"", (path, headers)
    assert loopback.head(secure_gateway.url + path, headers=auth(MASTER)).status_code == 200


def test_missing_and_wrong_key_messages_differ(secure_gateway):
    missing = _error(loopback.get(secure_gateway.base_url + "/models"), 401, "authentication_error")
    wrong = _error(loopback.get(secure_gateway.base_url + "/models", headers=auth("x")), 401, "authentication_error")
    assert "didn't provide" in missing["message"] and "Incorrect" in wrong["message"]


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_probes_stay_open(secure_gateway, path):
    assert loopback.get(secure_gateway.url + path).status_code == 200


def test_metrics_can_be_made_public(secure_factory):
    gw = secure_factory(metrics_public=True)
    assert loopback.get(gw.url + "/metrics").status_code == 200
    assert loopback.get(gw.base_url + "/gateway/stats").status_code == 401


@pytest.mark.parametrize("headers", [
    auth(KEYS["alpha"]), {"api-key": KEYS["alpha"]}, auth(MASTER), {"api-key": MASTER},
    {"Authorization": "bearer " + KEYS["alpha"]},
])
def test_valid_keys_are_served(secure_gateway, headers):
    resp = loopback.post(secure_gateway.base_url + "/chat/completions", json=chat(), headers=headers)
    assert resp.status_code == 200, resp.text
    assert resp.json()["choices"][0]["message"]["content"]


def test_openai_sdk_with_a_gateway_key(secure_gateway):
    client = openai.OpenAI(base_url=secure_gateway.base_url, api_key=KEYS["alpha"], max_retries=0)
    assert client.chat.completions.create(model="auto", messages=[{"role": "user", "content": "hi"}]).choices
    bad = openai.OpenAI(base_url=secure_gateway.base_url, api_key="gw-nope", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad.chat.completions.create(model="auto", messages=[{"role": "user", "content": "hi"}])
    azure = openai.AzureOpenAI(azure_endpoint=secure_gateway.url, api_key=KEYS["alpha"], api_version="2024-06-01",
                               max_retries=0)
    # The Azure client sends `api-key`; its deployment path is not ours, but auth passes first.
    with pytest.raises(openai.NotFoundError):
        azure.chat.completions.create(model="auto", messages=[{"role": "user", "content": "hi"}])


def test_dashboard_accepts_the_key_as_basic_password(secure_gateway):
    resp = loopback.get(secure_gateway.url + "/dashboard")
    assert resp.status_code == 401 and resp.headers["www-authenticate"].startswith("Basic")
    basic = base64.b64encode(f"any:{KEYS['alpha']}".encode()).decode()
    assert loopback.get(secure_gateway.url + "/dashboard", headers={"Authorization": "Basic " + basic}).status_code == 200
    # The API answers a browser-less client with a Bearer challenge instead.
    assert loopback.get(secure_gateway.base_url + "/models").headers["www-authenticate"].startswith("Bearer")


def test_bound_key_gets_its_pipeline(secure_gateway):
    url = secure_gateway.base_url + "/selection/explain"
    resp = loopback.post(url, json=chat(), headers=auth(KEYS["support"]))
    assert resp.status_code == 200 and resp.json()["pipeline"] == "customer-support"
    same = loopback.post(url, json=chat(), headers={**auth(KEYS["support"]), "X-Pipeline-Id": "customer-support"})
    assert same.status_code == 200 and same.json()["pipeline"] == "customer-support"
    other = loopback.post(url, json=chat(), headers={**auth(KEYS["support"]), "X-Pipeline-Id": "code-assistant"})
    err = _error(other, 403, "permission_error")
    assert err["param"] == "x-pipeline-id" and "customer-support" in err["message"]
    chat_resp = loopback.post(secure_gateway.base_url + "/chat/completions", json=chat(),
                              headers={**auth(KEYS["support"]), "X-Pipeline-Id": "code-assistant"})
    _error(chat_resp, 403, "permission_error")
    # Unbound keys and the master key choose freely.
    for key in (KEYS["alpha"], MASTER):
        free = loopback.post(url, json=chat(), headers={**auth(key), "X-Pipeline-Id": "code-assistant"})
        assert free.status_code == 200 and free.json()["pipeline"] == "code-assistant"


def test_no_keys_means_auth_off_on_loopback(secure_factory):
    gw = secure_factory(keys=[], master_key=None)
    assert loopback.post(gw.base_url + "/chat/completions", json=chat()).status_code == 200
    assert loopback.get(gw.base_url + "/models", headers=auth("anything")).status_code == 200


def _run(app, scope_extra: dict) -> tuple[int, bytes]:
    """Drive the middleware directly with a hand-built scope (a client address no test can bind)."""
    import asyncio

    sent: list[dict] = []

    async def inner(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": "GET", "path": "/v1/models", "headers": [], "client": ("127.0.0.1", 5),
             **scope_extra}
    asyncio.run(SecurityMiddleware(inner, **app)(scope, receive, send))
    return sent[0]["status"], sent[-1]["body"]


def test_auth_off_refuses_remote_clients_unless_insecure():
    off = {"keyring": KeyRing()}
    assert _run(off, {})[0] == 200
    assert _run(off, {"client": ("::1", 5)})[0] == 200
    status, body = _run(off, {"client": ("203.0.113.9", 5)})
    assert status == 403 and b"loopback" in body
    assert _run({**off, "insecure": True}, {"client": ("203.0.113.9", 5)})[0] == 200
    on = {"keyring": KeyRing(master_key=MASTER)}
    assert _run(on, {"client": ("203.0.113.9", 5)})[0] == 401
    assert _run(on, {"client": ("203.0.113.9", 5), "headers": [(b"authorization", b"Bearer " + MASTER.encode())]})[0] == 200


def test_keyring_matches_only_exact_keys():
    ring = KeyRing([], master_key=MASTER)
    assert ring.lookup(MASTER.encode()).master
    for near in (MASTER[:-1], MASTER + " ", MASTER.upper(), ""):
        assert ring.lookup(near.encode()) is None
    assert hash_key("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_websocket_upgrades_are_refused(secure_gateway):
    import socket

    req = (b"GET /v1/models HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
           b"Authorization: Bearer " + MASTER.encode() + b"\r\n\r\n")
    with socket.create_connection(("127.0.0.1", secure_gateway.port), timeout=5) as s:
        s.sendall(req)
        reply = s.recv(4096)
    assert reply.startswith(b"HTTP/1.1 403"), reply[:100]


def test_no_gateway_key_may_take_the_master_keys_name(tmp_path):
    # The master key's requests carry the name "master" (logs, feedback ownership): a gateway key
    # of that name could score the operator's requests as its own.
    from gateway.catalog_config import CatalogError, load_config
    from tests.conftest import write_catalog

    def catalog(name: str):
        spec = {"name": name, "sha256": hash_key("gw-" + name + "-0123456789abcdef")}
        return write_catalog(tmp_path / f"{name}.yaml", "http://127.0.0.1:1/v1", top_level={"keys": [spec]})

    assert [k.name for k in load_config(catalog("masters")).keys] == ["masters"]
    with pytest.raises(CatalogError, match="key name 'master' is reserved for the master key"):
        load_config(catalog("master"))
