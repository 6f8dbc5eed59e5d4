"""The catalog with deployments for any litellm provider: provider settings, credentials checked at
load, where prices come from, which transport and why, and the example file of every provider."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from gateway.catalog import CatalogError, GatewayConfig, load_catalog, load_config
from gateway.providers import ProviderParams
from gateway.upstream.adapt import adapt

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "config" / "providers.example.yaml"
SERVICE_ACCOUNT = {"type": "service_account", "project_id": "proj-from-file", "private_key_id": "kid-123456",
                   "private_key": "-----BEGIN PRIVATE KEY-----\nMIIEfake\n-----END PRIVATE KEY-----\n",
                   "client_email": "gw@proj.iam.gserviceaccount.com"}
EXAMPLE_ENV = {
    "OPENAI_API_KEY": "sk-dummy-openai", "ANTHROPIC_API_KEY": "sk-ant-dummy", "AZURE_API_KEY": "azure-dummy",
    "BEDROCK_ACCESS_KEY_ID": "AKIADUMMYDUMMYDUMMY", "BEDROCK_SECRET_ACCESS_KEY": "bedrock-secret-dummy",
    "GEMINI_API_KEY": "gemini-dummy", "VERTEX_CREDENTIALS": json.dumps(SERVICE_ACCOUNT), "GROQ_API_KEY": "gsk-dummy",
    "MISTRAL_API_KEY": "mistral-dummy", "HOME": "/nonexistent",
}


def _config(*deployments: dict) -> GatewayConfig:
    return GatewayConfig.model_validate({"deployments": [
        {"metadata": {"quality": 0.5}, **d} for d in deployments]})


def test_the_example_has_a_working_entry_for_every_provider():
    catalog = load_catalog(load_config(EXAMPLE, env=EXAMPLE_ENV), env=EXAMPLE_ENV)
    assert not catalog.skipped
    got = {name: (d.transport, d.provider) for name, d in catalog.deployments.items()}
    assert got == {
        "openai-gpt-4o-mini": ("openai", "openai"),
        "claude-sonnet": ("litellm", "anthropic"),
        "azure-gpt-4o-mini": ("openai", "azure"),
        "bedrock-claude-eu": ("litellm", "bedrock"),
        "bedrock-claude-us": ("litellm", "bedrock"),
        "gemini-flash": ("litellm", "gemini"),
        "vertex-gemini-pro": ("litellm", "vertex_ai"),
        "groq-llama-3.3-70b": ("openai", "groq"),
        "mistral-small": ("openai", "mistral"),
        "vllm-llama": ("openai", "hosted_vllm"),
        "ollama-llama": ("openai", "ollama_chat"),
    }
    deps = catalog.deployments
    assert deps["groq-llama-3.3-70b"].api_base == "https://api.groq.com/openai/v1"
    assert deps["ollama-llama"].api_base == "http://127.0.0.1:11434/v1"  # Ollama's OpenAI API is under /v1
    assert deps["azure-gpt-4o-mini"].provider_kwargs["api_version"] == "2024-10-21"
    assert deps["vertex-gemini-pro"].provider_kwargs["vertex_project"] == "my-gcp-project"
    # Every secret is known, so every output can redact it; none is in the printable fields.
    secrets = set(catalog.secrets())
    assert {"bedrock-secret-dummy", SERVICE_ACCOUNT["private_key"], "sk-ant-dummy"} <= secrets
    for dep in deps.values():
        assert not any(s in repr(dep) or s in dep.credentials for s in secrets)


def test_two_bedrock_regions_side_by_side():
    catalog = load_catalog(load_config(EXAMPLE, env=EXAMPLE_ENV), env=EXAMPLE_ENV)
    eu, us = catalog.deployments["bedrock-claude-eu"], catalog.deployments["bedrock-claude-us"]
    assert (eu.provider_kwargs["aws_region_name"], us.provider_kwargs["aws_region_name"]) == ("eu-west-1", "us-east-1")
    assert eu.provider_kwargs["aws_access_key_id"] == "AKIADUMMYDUMMYDUMMY"


@pytest.mark.parametrize("params, message", [
    ({"aws_region_name": "Europe"}, "aws_region_name"),
    ({"vertex_project": "X"}, "vertex_project"),
    ({"api_version": "yesterday"}, "api_version"),
    ({"aws_secret_access_key": "inline-secret"}, "Extra inputs are not permitted"),  # secrets only by reference
    ({"aws_access_key_id_env": "lower-case"}, "aws_access_key_id_env"),
    ({"aws_bedrock_runtime_endpoint": "ftp://x"}, "aws_bedrock_runtime_endpoint"),
])
def test_provider_params_are_an_allow_list_of_checked_values(tmp_path, params, message):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"deployments": [{"name": "b", "model": "bedrock/anthropic.claude-3-haiku",
                                                     "provider_params": params}]}))
    with pytest.raises(CatalogError, match=message):
        load_config(path)


def test_a_setting_for_another_provider_is_refused():
    config = _config({"name": "g", "model": "gemini/gemini-2.5-flash", "api_key_env": "K",
                      "provider_params": {"aws_region_name": "eu-west-1"}})
    with pytest.raises(CatalogError, match="aws_region_name do not apply to provider gemini"):
        load_catalog(config, env={"K": "k"})


def test_api_version_shorthand_and_provider_params_must_agree():
    config = _config({"name": "a", "model": "azure/x", "api_base": "https://r.openai.azure.com", "api_key_env": "K",
                      "api_version": "2024-10-21", "provider_params": {"api_version": "2024-06-01"},
                      "metadata": {"info_from": "azure/gpt-4o-mini", "quality": 0.5}})
    with pytest.raises(CatalogError, match="differ"):
        load_catalog(config, env={"K": "k"})


AZURE = {"name": "az", "model": "azure/my deployment", "api_base": "https://r.openai.azure.com/", "api_key_env": "K",
         "api_version": "2024-10-21", "metadata": {"info_from": "azure/gpt-4o-mini", "quality": 0.5}}


def test_an_azure_chat_deployment_with_a_key_and_a_dated_version_goes_direct():
    dep = load_catalog(_config(AZURE), env={"K": "azure-key"}).deployments["az"]
    assert (dep.transport, dep.provider, dep.translated) == ("openai", "azure", False)
    assert dep.upstream_model == "my deployment"
    # Azure's path for the deployment, its version in the query and the key in `api-key`, as Azure's SDK sends them.
    assert dep.api_base == "https://r.openai.azure.com/openai/deployments/my%20deployment"
    assert (dep.url_query, dep.key_header, dep.api_key) == ("?api-version=2024-10-21", "api-key", "azure-key")
    assert dep.price_model is None and dep.info.input_cost_per_token > 0  # priced by the gateway, from the map
    assert "sent directly" in dep.transport_reason
    # What litellm's Azure config does to a GPT deployment's body, the direct one's rules do.
    assert dep.params.developer_as_system
    body = {"model": "x", "messages": [{"role": "developer", "content": "Be brief."},
                                       {"role": "user", "content": "hi"}]}
    sent, notes = adapt(body, dep.params)
    assert [m["role"] for m in sent["messages"]] == ["system", "user"] and notes
    assert body["messages"][0]["role"] == "developer"  # the client's body is not changed
    via_litellm = load_catalog(_config({**AZURE, "transport": "litellm"}), env={"K": "k"}).deployments["az"]
    assert not via_litellm.params.developer_as_system  # litellm does it there


@pytest.mark.parametrize("change, env, why", [
    ({"transport": "litellm"}, {"K": "k"}, "transport: litellm is set"),
    ({"api_version": "2024-13-xx"}, {"K": "k"}, "without a dated api_version"),
    ({"api_version": None}, {"K": "k"}, "without a dated api_version"),
    ({"api_version": "2024-06-01"}, {"K": "k"}, "before 2024-08-01"),
    ({"model": "azure/my-o3", "metadata": {"info_from": "azure/o3-mini", "quality": 0.5}}, {"K": "k"},
     "reasoning model"),
    ({"api_base": None}, {"K": "k"}, "without an api_base"),
    ({"api_key_env": None, "provider_params": {"azure_ad_token_env": "T"}}, {"T": "t"}, "without an api key"),
    ({"mode": "embedding", "model": "azure/emb",
      "metadata": {"info_from": "azure/text-embedding-3-small", "quality": 0.5, "dimensions": 1536}},
     {"K": "k"}, "embeddings"),
])
def test_an_azure_deployment_litellm_must_send_stays_on_litellm(change, env, why):
    dep = load_catalog(_config({**AZURE, **change}), env=env).deployments["az"]
    assert (dep.transport, dep.url_query, dep.key_header) == ("litellm", "", "")
    assert why in dep.transport_reason


BEDROCK = {"name": "bedrock", "model": "bedrock/anthropic.claude-3-5-haiku-20241022-v1:0",
           "provider_params": {"aws_region_name": "eu-central-1"}}
VERTEX = {"name": "vertex", "model": "vertex_ai/gemini-2.5-flash", "provider_params": {"vertex_location": "europe-west4"}}
OTHER = {"name": "other", "model": "openai/gpt-4o-mini", "api_base": "http://127.0.0.1:9/v1"}


@pytest.mark.parametrize("dep, env, problem", [
    (BEDROCK, {}, "no AWS credentials"),
    ({**BEDROCK, "provider_params": {}}, {"AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "b"}, "no AWS region"),
    ({**BEDROCK, "provider_params": {"aws_region_name": "eu-central-1", "aws_access_key_id_env": "ID",
                                     "aws_secret_access_key_env": "SECRET"}}, {"ID": "a"},
     "environment variable SECRET is not set"),
    ({**BEDROCK, "provider_params": {"aws_region_name": "eu-central-1", "aws_profile_name": "prod"}}, {},
     "AWS profile 'prod' is not in the shared config files"),
    (VERTEX, {}, "no Google credentials"),
    ({**VERTEX, "provider_params": {"vertex_credentials_env": "SA"}}, {"SA": "/no/such/file.json"},
     "holds neither a service-account JSON nor the path of a readable one"),
    ({**VERTEX, "provider_params": {"vertex_credentials_env": "SA"}}, {"SA": '{"type": "service_account"}'},
     "no Google Cloud project"),
])
def test_credentials_that_are_not_one_key_are_checked_at_load(dep, env, problem):
    catalog = load_catalog(_config(dep, OTHER), env={"HOME": "/nonexistent", **env})
    assert dep["name"] not in catalog.deployments and problem in catalog.skipped[dep["name"]]
    # Offline tools keep it, saying what is missing.
    kept = load_catalog(_config(dep, OTHER), env={"HOME": "/nonexistent", **env}, require_keys=False)
    assert problem in kept.deployments[dep["name"]].problem


def test_credentials_found_where_the_sdks_look(tmp_path):
    (tmp_path / ".aws").mkdir()
    (tmp_path / ".aws" / "credentials").write_text("[prod]\naws_access_key_id = a\naws_secret_access_key = b\n")
    (tmp_path / "sa.json").write_text(json.dumps(SERVICE_ACCOUNT))
    config = _config({**BEDROCK, "provider_params": {"aws_region_name": "eu-central-1", "aws_profile_name": "prod"}},
                     {**VERTEX, "provider_params": {"vertex_credentials_env": "SA"}},
                     {**BEDROCK, "name": "ambient", "provider_params": {"aws_region_name": "us-west-2",
                                                                        "ambient_credentials": True}})
    catalog = load_catalog(config, env={"HOME": str(tmp_path), "SA": str(tmp_path / "sa.json")})
    deps = catalog.deployments
    assert not catalog.skipped
    assert deps["bedrock"].provider_kwargs["aws_profile_name"] == "prod"
    assert deps["bedrock"].credentials == "AWS profile prod, region eu-central-1"
    assert deps["vertex"].provider_kwargs["vertex_project"] == "proj-from-file"  # from the service account
    assert json.loads(deps["vertex"].provider_kwargs["vertex_credentials"])["client_email"].startswith("gw@")
    assert SERVICE_ACCOUNT["private_key"] in catalog.secrets()
    assert "not checked" in deps["ambient"].credentials


def test_an_unknown_model_names_the_nearest_known_entries():
    config = _config({"name": "old", "model": "anthropic/claude-3-5-sonnet-20241022", "api_key_env": "K"})
    with pytest.raises(CatalogError) as info:
        load_catalog(config, env={"K": "k"})
    message = str(info.value)
    assert "must set: input_cost_per_token, output_cost_per_token, context_window" in message
    assert "nearest names litellm knows: " in message and "claude-3-5-sonnet-20241022" in message.split("knows: ")[1]


def test_price_source_transport_and_why():
    config = _config(
        {"name": "direct", "model": "openai/gpt-4o-mini", "api_key_env": "K"},
        {"name": "claude", "model": "anthropic/claude-haiku-4-5-20251001", "api_key_env": "K"},
        {"name": "forced", "model": "openai/gpt-4o-mini", "api_key_env": "K", "transport": "litellm",
         "metadata": {"quality": 0.5, "input_cost_per_token": 1e-6}},
        {"name": "mine", "model": "hosted_vllm/my-model", "api_base": "http://127.0.0.1:9/v1",
         "metadata": {"quality": 0.5, "input_cost_per_token": 0, "output_cost_per_token": 0, "context_window": 8192}},
    )
    deps = load_catalog(config, env={"K": "k"}).deployments
    assert (deps["direct"].transport, deps["direct"].price_source) == ("openai", "litellm map: gpt-4o-mini")
    assert "sent directly" in deps["direct"].transport_reason
    # OpenAI's API: its parameters pass as sent; only the sampling extras it refuses are dropped.
    assert deps["direct"].params.extras_only and deps["direct"].params.extras == frozenset()
    assert (deps["claude"].transport, deps["claude"].price_source) == ("litellm", "litellm map: claude-haiku-4-5-20251001")
    assert "litellm translates" in deps["claude"].transport_reason and deps["claude"].translated
    assert deps["claude"].price_model == "anthropic/claude-haiku-4-5-20251001"  # litellm prices its usage
    assert not deps["claude"].info.supports_multiple_choices and not deps["claude"].info.supports_logprobs
    assert deps["forced"].transport_reason == "transport: litellm is set in the catalog"
    assert deps["forced"].price_source == "catalog over litellm map: gpt-4o-mini" and deps["forced"].price_model is None
    assert deps["mine"].price_source == "catalog" and deps["mine"].transport == "openai"


def test_provider_params_reject_unknown_fields():
    with pytest.raises(ValueError):
        ProviderParams.model_validate({"region": "x"})


def test_the_parameter_table_is_the_deployments_own_providers():
    # Claude on Anthropic's API described by a Bedrock map entry: Bedrock's table has no `user`,
    # Anthropic's has, and Anthropic's is what litellm sends this deployment by.
    config = _config({"name": "c", "model": "anthropic/claude-3-5-sonnet-20241022", "api_key_env": "K",
                      "metadata": {"info_from": "anthropic.claude-3-5-sonnet-20241022-v2:0", "quality": 0.8}})
    dep = load_catalog(config, env={"K": "k"}).deployments["c"]
    assert dep.provider == "anthropic" and "user" in dep.params.supported
    assert dep.params.allows("top_k") and not dep.params.allows("min_p")


def test_an_openai_reasoning_model_has_its_own_parameter_table():
    config = _config({"name": "o", "model": "openai/o1", "api_key_env": "K", "metadata": {"quality": 0.9}},
                     {"name": "g", "model": "openai/gpt-4o-mini", "api_key_env": "K", "metadata": {"quality": 0.7}})
    deps = load_catalog(config, env={"K": "k"}).deployments
    o1, mini = deps["o"], deps["g"]
    assert o1.params.reasoning and not o1.params.allows("top_p") and not o1.info.supports_logprobs
    assert not mini.params.reasoning and mini.params.allows("top_p") and mini.info.supports_logprobs
