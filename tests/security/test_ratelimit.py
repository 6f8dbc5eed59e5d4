"""Rate limits: one contract run against the memory and the Redis counter stores, then 429s with
Retry-After over real HTTP, alone and shared by two gateways on one Redis."""

from __future__ import annotations

import socket
import time
import uuid

import httpx
import openai
import pytest
from redis.asyncio import Redis

from gateway import errors
from gateway.security.config import Limits, RateLimitConfig
from gateway.security.keys import Principal
from gateway.security.ratelimit import MemoryCounterStore, RateLimiter, RedisCounterStore

from tests._wait import wait_until

from .conftest import auth, chat, key_specs
from tests import loopback


class Clock:
    def __init__(self, t: float = 1_000_040.0) -> None:  # 20 s into a one-minute window
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture(params=["memory", "redis"])
async def store_factory(request):
    """`make(clock)` -> a fresh store; every store made in one test shares its counters."""
    if request.param == "memory":
        shared: dict = {}

        def make(clock):
            store = MemoryCounterStore(clock)
            store._counts = shared.setdefault("counts", store._counts)
            return store

        yield make
        return
    client = Redis.from_url(request.getfixturevalue("redis_server"), decode_responses=True)
    yield lambda clock: RedisCounterStore(client)
    await client.aclose()


def _limiter(store_factory, clock, **pipelines: Limits) -> RateLimiter:
    # A fresh prefix per test keeps runs on the session Redis apart.
    prefix = _limiter.prefix
    return RateLimiter(RateLimitConfig(pipelines=pipelines), store_factory(clock), prefix=prefix, clock=clock)


@pytest.fixture(autouse=True)
def _prefix():
    _limiter.prefix = "t" + uuid.uuid4().hex[:8]


def _refused(limiter: RateLimiter, principal, pipeline=None, tokens=1) -> errors.RateLimitError:
    with pytest.raises(errors.RateLimitError) as info:
        limiter.admit(principal, pipeline, tokens)
    return info.value


async def test_rpm_per_key(store_factory):
    clock = Clock()
    lim = _limiter(store_factory, clock)
    key = Principal("k", limits=Limits(rpm=3))
    for _ in range(3):
        lim.admit(key, None, 10)
    exc = _refused(lim, key)
    assert exc.status == 429 and int(exc.headers["retry-after"]) >= 1 and "key 'k'" in exc.message
    lim.admit(Principal("other", limits=Limits(rpm=3)), None, 10)  # buckets are per key
    assert await lim.sync()
    _refused(lim, key)  # still refused once the store holds the counts


async def test_tpm_and_request_too_large(store_factory):
    lim = _limiter(store_factory, Clock())
    key = Principal("k", limits=Limits(tpm=100))
    lim.admit(key, None, 40)
    lim.admit(key, None, 40)
    assert "tokens" in _refused(lim, key, tokens=40).message
    lim.admit(key, None, 20)
    too_big = _refused(lim, key, tokens=150)
    assert too_big.code == "request_too_large" and not too_big.retryable


async def test_pipeline_limit_and_all_or_nothing(store_factory):
    lim = _limiter(store_factory, Clock(), p=Limits(rpm=1), default=Limits(rpm=1))
    key = Principal("k", limits=Limits(rpm=5))
    lim.admit(key, "p", 1)
    assert "pipeline 'p'" in _refused(lim, key, "p").message
    lim.admit(key, None, 1)  # no pipeline header: the `default` pipeline's limit
    _refused(lim, key, None)
    lim.admit(key, "unlimited-pipeline", 1)
    # The key has 5; three were admitted and the two refusals charged nothing.
    lim.admit(key, "unlimited-pipeline", 1)
    lim.admit(key, "unlimited-pipeline", 1)
    _refused(lim, key, "unlimited-pipeline")


async def test_a_refund_gives_back_exactly_what_was_charged(store_factory):
    lim = _limiter(store_factory, Clock(), p=Limits(rpm=2))
    key = Principal("k", limits=Limits(rpm=2, tpm=100))
    charge = lim.admit(key, "p", 60)
    lim.refund(charge)  # refused later in admission (its budget): it never reached a provider
    assert await lim.sync()
    lim.admit(key, "p", 60)
    assert "tokens" in _refused(lim, key, "p", tokens=60).message  # the refund returned the 60 tokens
    lim.refund(lim.admit(key, "p", 40))
    assert await lim.sync()
    lim.admit(key, "p", 40)
    assert "requests" in _refused(lim, key, "p").message  # and the requests, per key and per pipeline
    assert lim.admit(Principal("free"), None, 5) is None  # no limit applies: nothing to refund
    lim.refund(None)


async def test_sliding_window_and_retry_after(store_factory):
    clock = Clock(1_000_040.0)
    lim = _limiter(store_factory, clock)
    key = Principal("k", limits=Limits(rpm=3))
    for _ in range(3):
        lim.admit(key, None, 1)
    assert await lim.sync()
    clock.t = 1_000_080.0 + 30  # halfway through the next window: the previous counts half
    lim.admit(key, None, 1)  # 3 * 0.5 + 0 + 1 = 2.5
    exc = _refused(lim, key)  # 3 * 0.5 + 1 + 1 = 3.5
    # Room for one more once the previous window weighs 1/3: 20 s of the window later -> 10 s.
    assert exc.headers["retry-after"] == "10"
    clock.t += 10
    lim.admit(key, None, 1)
    assert await lim.sync()
    clock.t += 200  # both windows long gone
    for _ in range(3):
        lim.admit(key, None, 1)


async def test_two_limiters_share_one_store(store_factory):
    clock = Clock()
    a, b = _limiter(store_factory, clock), _limiter(store_factory, clock)
    key = Principal("shared", limits=Limits(rpm=3))
    a.admit(key, None, 1)
    a.admit(key, None, 1)
    b.admit(key, None, 1)  # b has not synced: it decides from its own count (the documented overshoot)
    assert await a.sync() and await b.sync() and await a.sync()
    _refused(b, key)  # b admitted one itself but now knows about a's two
    _refused(a, key)
    c = _limiter(store_factory, clock)
    c.admit(key, None, 1)  # a newcomer's first request for a bucket is decided locally...
    assert await c.sync()
    _refused(c, key)  # ...and from then on it counts everyone's


async def test_store_outage_counts_locally(redis_process):
    client = Redis.from_url(redis_process.url, decode_responses=True, socket_timeout=0.5,
                            socket_connect_timeout=0.5)
    # One minute's window throughout: a run that crossed a minute's end split its four requests
    # between two windows (the limit unreached, the count read from the wrong one).
    now = time.time()
    lim = RateLimiter(RateLimitConfig(), RedisCounterStore(client), prefix="outage", timeout_s=1.0, clock=lambda: now)
    key = Principal("k", limits=Limits(rpm=4))
    lim.admit(key, None, 1)
    redis_process.stop()
    lim.admit(key, None, 1)
    assert not await lim.sync() and not lim.healthy
    lim.admit(key, None, 1)
    lim.admit(key, None, 1)
    _refused(lim, key)  # local counting still enforces the limit
    redis_process.start()
    assert await lim.sync() and lim.healthy
    assert int(await client.get(lim._key("key:k", "r", int(now // 60)))) == 4
    await client.aclose()


# -- over HTTP ----------------------------------------------------------------------------------


def test_key_rpm_gives_429_with_retry_after(secure_factory):
    gw = secure_factory(keys=key_specs(alpha={"rpm": 2}), rate_limits={"pipelines": {"batch": {"tpm": 1000}}})
    key = "gw-alpha-4fJ8sLq2Wm9xZc1V"
    url = gw.base_url + "/chat/completions"
    for _ in range(2):
        assert loopback.post(url, json=chat(), headers=auth(key)).status_code == 200
    resp = loopback.post(url, json=chat(), headers=auth(key))
    assert resp.status_code == 429 and int(resp.headers["retry-after"]) >= 1
    err = resp.json()["error"]
    assert err["type"] == "rate_limit_error" and "key 'alpha'" in err["message"]
    client = openai.OpenAI(base_url=gw.base_url, api_key=key, max_retries=0)
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(model="auto", messages=[{"role": "user", "content": "hi"}])
    # The master key has no limit; a pipeline's TPM counts prompt estimate + max_tokens.
    from .conftest import MASTER

    headers = {**auth(MASTER), "X-Pipeline-Id": "batch"}
    assert loopback.post(url, json=chat(max_tokens=600), headers=headers).status_code == 200
    resp = loopback.post(url, json=chat(max_tokens=600), headers=headers)
    assert resp.status_code == 429 and "pipeline 'batch'" in resp.json()["error"]["message"]
    assert loopback.post(url, json=chat(max_tokens=300), headers=headers).status_code == 200


def test_a_key_over_its_rpm_is_refused_before_its_body_is_read(secure_factory):
    # The parse and the decision on a large body cost far more than a refusal: a key already over
    # its limit gets its 429 at the headers, on every route that reads a body.
    gw = secure_factory(keys=key_specs(alpha={"rpm": 2}))
    key = "gw-alpha-4fJ8sLq2Wm9xZc1V"
    for _ in range(2):
        assert loopback.post(gw.base_url + "/chat/completions", json=chat(), headers=auth(key)).status_code == 200
    for path in ("/chat/completions", "/selection/explain", "/messages/count_tokens", "/embeddings"):
        # Headers only: the declared body never comes, so only a refusal at the headers answers.
        with socket.create_connection(("127.0.0.1", gw.port), timeout=5) as sock:
            sock.sendall(f"POST /v1{path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n"
                         "Content-Type: application/json\r\nContent-Length: 8000000\r\n\r\n".encode())
            head = sock.recv(65536).decode("latin-1")
        assert head.startswith("HTTP/1.1 429"), (path, head[:200])
        assert "retry-after:" in head.lower() and "key 'alpha'" in head


@pytest.mark.parametrize("path", ["/selection/explain", "/messages/count_tokens"])
def test_a_route_that_calls_no_provider_is_charged_to_the_keys_rpm(secure_factory, path):
    # A count or an explain runs the whole decision: a key under its limit must not get them for free.
    gw = secure_factory(keys=key_specs(alpha={"rpm": 3}), rate_limits={"pipelines": {"default": {"rpm": 1}}})
    key = "gw-alpha-4fJ8sLq2Wm9xZc1V"
    body = ({"model": "auto", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}
            if path.startswith("/messages") else chat())
    for _ in range(2):
        assert loopback.post(gw.base_url + path, json=body, headers=auth(key)).status_code == 200
    # The pipeline's limit (provider capacity) is not charged by them: its one request is left.
    assert loopback.post(gw.base_url + "/chat/completions", json=chat(), headers=auth(key)).status_code == 200
    for refused_path, payload in ((path, body), ("/chat/completions", chat())):
        resp = loopback.post(gw.base_url + refused_path, json=payload, headers=auth(key))
        assert resp.status_code == 429 and "key 'alpha'" in resp.text, (refused_path, resp.text)


def test_refused_requests_count_against_the_keys_rpm_not_its_tokens(secure_factory):
    # A body the gateway will not take is parsed and checked first: a key must not be able to make
    # it do that without bound. Its request counts; no tokens, no pipeline.
    gw = secure_factory(keys=key_specs(alpha={"rpm": 3, "tpm": 100_000}),
                        rate_limits={"pipelines": {"default": {"rpm": 1}}})
    key, url = "gw-alpha-4fJ8sLq2Wm9xZc1V", gw.base_url + "/chat/completions"
    refusals = [({"model": "auto", "messages": []}, 400), ({**chat(), "model": "no-such-model"}, 404)]
    for body, status in refusals:
        assert loopback.post(url, json=body, headers=auth(key)).status_code == status
    assert loopback.post(url, json=chat(), headers=auth(key)).status_code == 200  # the pipeline's one request
    resp = loopback.post(url, json=refusals[0][0], headers=auth(key))
    assert resp.status_code == 429 and "key 'alpha'" in resp.text


def test_tpm_counts_every_choice_a_request_asks_for(secure_factory):
    # `n` answers may each use `max_tokens`: the limit charges them all, as the budget's hold does.
    gw = secure_factory(keys=key_specs(alpha={"tpm": 1000}))
    key = "gw-alpha-4fJ8sLq2Wm9xZc1V"
    url = gw.base_url + "/chat/completions"
    resp = loopback.post(url, json=chat(max_tokens=300, n=4), headers=auth(key))
    assert resp.status_code == 429 and resp.json()["error"]["code"] == "request_too_large", resp.text
    assert loopback.post(url, json=chat(max_tokens=300, n=3), headers=auth(key)).status_code == 200
    resp = loopback.post(url, json=chat(max_tokens=100, n=2), headers=auth(key))  # ~910 charged, + ~210 > 1,000
    assert resp.status_code == 429 and resp.json()["error"]["code"] != "request_too_large", resp.text


def _synced(gw, key_name: str) -> int:
    """Requests on `key_name` that `gw`'s limiter knows from its last sync with the shared store
    (everyone's, its own included once pushed), summed over the windows it tracks."""
    limiter = gw.app.state.rate_limiter
    marker = f"{{rl:key:{key_name}}}:r:"
    return gw.call(lambda: sum(n for k, n in limiter._known.items() if marker in k))


def test_two_gateways_share_limits_through_redis(secure_factory, redis_server):
    # Counts live in one-minute windows, and a gateway decides its first request in a window it has
    # not seen locally (the documented overshoot), so the test must not straddle a window boundary:
    # it starts with at least 20 s of the current minute left (it takes a second or two).
    wait_until(lambda: 60 - time.time() % 60 > 20, "a minute with 20 s left", timeout=25, interval=0.2)
    name = "k" + uuid.uuid4().hex[:8]  # the session Redis outlives this test
    key = "gw-shared-" + uuid.uuid4().hex
    spec = {"name": name, "sha256": __import__("hashlib").sha256(key.encode()).hexdigest(), "rpm": 3}
    one = secure_factory(keys=[spec], redis_url=redis_server)
    two = secure_factory(keys=[spec], redis_url=redis_server)

    def post(gw) -> httpx.Response:
        return loopback.post(gw.base_url + "/chat/completions", json=chat(), headers=auth(key), timeout=30)

    for _ in range(2):
        assert post(one).status_code == 200
    wait_until(lambda: _synced(one, name) == 2, "gateway one to push its 2 requests (sync every 0.1 s)")
    # `two` never saw this bucket: its first request is decided locally, then it syncs.
    assert post(two).status_code == 200
    wait_until(lambda: _synced(two, name) == 3, "gateway two to push its request and read one's")
    resp = post(two)
    assert resp.status_code == 429, resp.text
    wait_until(lambda: _synced(one, name) == 3, "gateway one to read two's request")
    assert post(one).status_code == 429
