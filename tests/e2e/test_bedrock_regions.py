"""Two Bedrock deployments in two regions, in one gateway, with no process-wide AWS settings.

The simulator has no Bedrock wire, so a loopback server stands where each region's runtime
endpoint would be (`aws_bedrock_runtime_endpoint`) and records what litellm sends: the request is
signed (SigV4) for the deployment's own region, with the deployment's own key, at the model's
Converse path. It answers with a minimal Converse response so the round trip completes.
"""

from __future__ import annotations


import openai
import pytest
import yaml
from aiohttp import web

from tests._threads import LoopbackServer

MODEL = "eu.anthropic.claude-sonnet-4-5-20250929-v1:0"


class _Recorder(LoopbackServer):
    """A loopback HTTP server in a thread that records requests and answers Bedrock's Converse shape."""

    def __init__(self) -> None:
        super().__init__("bedrock-recorder")
        self.seen: list[tuple[str, str, dict]] = []

    async def _answer(self, request: web.Request) -> web.Response:
        self.seen.append((request.path, request.headers.get("authorization", ""), await request.json()))
        return web.json_response({
            "output": {"message": {"role": "assistant", "content": [{"text": "hello from bedrock"}]}},
            "stopReason": "end_turn", "usage": {"inputTokens": 3, "outputTokens": 4, "totalTokens": 7},
            "metrics": {"latencyMs": 1}})

    async def _open(self) -> int:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._answer)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        return site._server.sockets[0].getsockname()[1]

    async def _close(self) -> None:
        await self._runner.cleanup()


@pytest.fixture(scope="module")
def recorder():
    with _Recorder() as rec:
        yield rec


@pytest.fixture(scope="module")
def gateway(recorder, tmp_path_factory):
    from gateway.settings import Settings
    from gateway.tools.harness import GatewayThread

    root = tmp_path_factory.mktemp("bedrock")
    deployments = [
        {"name": f"claude-{region}", "model": f"bedrock/{MODEL}", "metadata": {"quality": 0.9},
         "provider_params": {"aws_region_name": region, "aws_access_key_id_env": f"KEY_ID_{i}",
                             "aws_secret_access_key_env": f"SECRET_{i}",
                             "aws_bedrock_runtime_endpoint": f"http://127.0.0.1:{recorder.port}"}}
        for i, region in enumerate(("eu-west-1", "eu-central-1"))]
    (root / "catalog.yaml").write_text(yaml.safe_dump({"deployments": deployments}))
    (root / "policies").mkdir()
    mp = pytest.MonkeyPatch()
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"):
        mp.delenv(name, raising=False)
    for i in range(2):
        mp.setenv(f"KEY_ID_{i}", f"AKIAREGION{i}EXAMPLE")
        mp.setenv(f"SECRET_{i}", f"secret-of-region-{i}")
    gw = GatewayThread(Settings(config=root / "catalog.yaml", policies=root / "policies", port=0, max_retries=0,
                                log_requests=False))
    gw.start()
    yield gw
    gw.stop()
    mp.undo()


def test_each_deployment_signs_for_its_own_region_with_its_own_key(gateway, recorder, openai_schema):
    client = openai.OpenAI(base_url=gateway.base_url, api_key="client", max_retries=0, timeout=60)
    for i, region in enumerate(("eu-west-1", "eu-central-1")):
        raw = client.chat.completions.with_raw_response.create(
            model=f"claude-{region}", messages=[{"role": "user", "content": "hi"}], temperature=1.8)
        openai_schema.validate("CreateChatCompletionResponse", raw.http_response.json())
        resp = raw.parse()
        assert resp.choices[0].message.content == "hello from bedrock" and resp.usage.completion_tokens == 4
        assert float(raw.headers["x-gateway-cost-usd"]) > 0
        path, auth, body = recorder.seen[-1]
        assert path == f"/model/{MODEL}/converse"
        assert f"Credential=AKIAREGION{i}EXAMPLE/" in auth and f"/{region}/bedrock/aws4_request" in auth
        # Claude's limits hold on Bedrock too: temperature clamped, an output limit sent.
        assert body["inferenceConfig"]["temperature"] == 1 and body["inferenceConfig"]["maxTokens"] > 0
