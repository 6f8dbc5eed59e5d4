"""Per-deployment provider settings (`provider_params` in the catalog) and credential checks at load.

A deployment can reach any provider litellm speaks; what a provider needs beyond a model name and a
key (a region, a project, an API version, credentials that are not one key) is set per deployment,
never through process-wide environment variables, so two Bedrock regions or two Vertex projects
live side by side. The settings are an allow-list (`ProviderParams`, `extra="forbid"`, each value
checked), and each applies only to its providers. Secrets are only ever environment references
(`..._env: VARIABLE_NAME`); the values are read at load and handed to litellm per call.

Credentials that are not a single key (AWS for Bedrock and SageMaker, Google application
credentials for Vertex AI) are looked for at load where the provider's SDK would look. A
deployment without them is reported and left out, like one whose key variable is unset. Platform
credentials (an instance role, workload identity) cannot be seen from the process: the deployment
says so with `ambient_credentials: true`.
"""

from __future__ import annotations

import configparser
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["Credentials", "ProviderParams", "check_applies", "resolve_credentials"]

_ENV_NAME = r"^[A-Z_][A-Z0-9_]*$"
_AWS = frozenset({"bedrock", "bedrock_converse", "sagemaker", "sagemaker_chat"})
_VERTEX = frozenset({"vertex_ai", "vertex_ai_beta"})
_AZURE = frozenset({"azure", "azure_ai", "azure_text"})


class ProviderParams(BaseModel):
    """Provider settings of one deployment. Each applies to the providers named in its description."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    api_version: str | None = Field(
        None, pattern=r"^(\d{4}-\d{2}-\d{2}(-preview)?|v1|latest|preview)$",
        description="Azure OpenAI API version, e.g. 2024-10-21 (azure, azure_ai).")
    azure_ad_token_env: str | None = Field(
        None, pattern=_ENV_NAME, description="Variable holding an Entra ID token, instead of a key (azure).")
    organization: str | None = Field(
        None, pattern=r"^[A-Za-z0-9_-]{1,64}$", description="OpenAI organization id (openai).")
    aws_region_name: str | None = Field(
        None, pattern=r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d{1,2}$",
        description="AWS region, e.g. eu-west-1 (bedrock, sagemaker).")
    aws_profile_name: str | None = Field(
        None, pattern=r"^[A-Za-z0-9_.+@-]{1,64}$", description="Profile in the AWS shared config files.")
    aws_access_key_id_env: str | None = Field(None, pattern=_ENV_NAME, description="Variable holding the key id.")
    aws_secret_access_key_env: str | None = Field(None, pattern=_ENV_NAME, description="Variable holding the secret.")
    aws_session_token_env: str | None = Field(None, pattern=_ENV_NAME, description="Variable holding a session token.")
    aws_role_name: str | None = Field(
        None, pattern=r"^arn:aws[a-z-]*:iam::\d{12}:role/[A-Za-z0-9+=,.@_/-]{1,128}$",
        description="Role ARN to assume with the credentials found.")
    aws_session_name: str | None = Field(None, pattern=r"^[A-Za-z0-9+=,.@-]{2,64}$")
    aws_bedrock_runtime_endpoint: str | None = Field(
        None, pattern=r"^https?://[A-Za-z0-9.\-]+(:\d{1,5})?(/[A-Za-z0-9._~/-]*)?$",
        description="A Bedrock runtime endpoint other than the region's (a VPC endpoint).")
    vertex_project: str | None = Field(
        None, pattern=r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$", description="Google Cloud project id (vertex_ai).")
    vertex_location: str | None = Field(
        None, pattern=r"^(global|[a-z]+(-[a-z]+)+\d{0,2})$", description="Vertex AI location, e.g. europe-west4.")
    vertex_credentials_env: str | None = Field(
        None, pattern=_ENV_NAME,
        description="Variable holding a service-account JSON, or the path of one (vertex_ai).")
    ambient_credentials: bool = Field(
        False, description="Credentials come from the platform (instance role, workload identity) and "
        "cannot be checked at load (bedrock, sagemaker, vertex_ai).")


# Which providers each setting applies to; a setting on another provider is a mistake in the file.
_APPLIES: dict[str, frozenset[str]] = {
    "api_version": _AZURE, "azure_ad_token_env": _AZURE, "organization": frozenset({"openai"}),
    **{name: _AWS for name in ProviderParams.model_fields if name.startswith("aws_")},
    **{name: _VERTEX for name in ProviderParams.model_fields if name.startswith("vertex_")},
    "ambient_credentials": _AWS | _VERTEX,
}


def check_applies(params: ProviderParams, provider: str) -> list[str]:
    """The settings that do not apply to `provider` (empty when all do)."""
    defaults = ProviderParams()
    return [name for name in ProviderParams.model_fields
            if getattr(params, name) != getattr(defaults, name) and provider not in _APPLIES[name]]


@dataclass(frozen=True, slots=True)
class Credentials:
    """What a deployment authenticates with, resolved at load."""

    kwargs: Mapping[str, Any] = field(default_factory=dict)  # handed to litellm with every call
    secrets: tuple[str, ...] = ()  # values to redact from anything shown
    source: str = ""  # where they come from, for `gateway catalog check` (never a value)
    problem: str | None = None  # why the deployment cannot authenticate, or None


def _aws_profile_exists(name: str, env: Mapping[str, str]) -> bool:
    home = Path(env.get("HOME") or Path.home())
    files = [(Path(env.get("AWS_SHARED_CREDENTIALS_FILE") or home / ".aws" / "credentials"), name),
             (Path(env.get("AWS_CONFIG_FILE") or home / ".aws" / "config"), "default" if name == "default" else f"profile {name}")]
    for path, section in files:
        parser = configparser.RawConfigParser()
        try:
            parser.read(path, encoding="utf-8")
        except (configparser.Error, OSError, UnicodeDecodeError):
            continue
        if parser.has_section(section):
            return True
    return False


def _aws(params: ProviderParams, env: Mapping[str, str]) -> Credentials:
    kwargs: dict[str, Any] = {}
    secrets: list[str] = []
    region = params.aws_region_name or env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or env.get("AWS_REGION_NAME")
    if not region:
        return Credentials(problem="no AWS region: set provider_params.aws_region_name (or AWS_REGION)")
    kwargs["aws_region_name"] = region
    for name in ("aws_role_name", "aws_session_name", "aws_bedrock_runtime_endpoint"):
        if getattr(params, name):
            kwargs[name] = getattr(params, name)
    source = None
    if params.aws_access_key_id_env or params.aws_secret_access_key_env:
        names = [params.aws_access_key_id_env, params.aws_secret_access_key_env]
        missing = [n for n in names if not n or not env.get(n)]
        if missing:
            return Credentials(problem="AWS keys: " + ", ".join(
                f"environment variable {n} is not set" if n else "both aws_access_key_id_env and "
                "aws_secret_access_key_env are needed" for n in missing))
        kwargs["aws_access_key_id"], kwargs["aws_secret_access_key"] = env[names[0]], env[names[1]]
        secrets += [env[names[0]], env[names[1]]]
        if params.aws_session_token_env:
            if not env.get(params.aws_session_token_env):
                return Credentials(problem=f"environment variable {params.aws_session_token_env} is not set")
            kwargs["aws_session_token"] = env[params.aws_session_token_env]
            secrets.append(env[params.aws_session_token_env])
        source = f"AWS keys from {names[0]} / {names[1]}"
    elif params.aws_profile_name:
        if not _aws_profile_exists(params.aws_profile_name, env):
            return Credentials(problem=f"AWS profile {params.aws_profile_name!r} is not in the shared config files")
        kwargs["aws_profile_name"] = params.aws_profile_name
        source = f"AWS profile {params.aws_profile_name}"
    elif env.get("AWS_ACCESS_KEY_ID") and env.get("AWS_SECRET_ACCESS_KEY"):
        source = "AWS keys from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY"
    elif env.get("AWS_PROFILE") and _aws_profile_exists(env["AWS_PROFILE"], env):
        source = f"AWS profile {env['AWS_PROFILE']} (AWS_PROFILE)"
    elif env.get("AWS_WEB_IDENTITY_TOKEN_FILE") and env.get("AWS_ROLE_ARN"):
        source = "AWS web identity (AWS_WEB_IDENTITY_TOKEN_FILE)"
    elif env.get("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI") or env.get("AWS_CONTAINER_CREDENTIALS_FULL_URI"):
        source = "AWS container credentials"
    elif params.ambient_credentials:
        source = "platform credentials (ambient_credentials), not checked"
    if source is None:
        return Credentials(problem="no AWS credentials: set provider_params.aws_access_key_id_env and "
                           "aws_secret_access_key_env, aws_profile_name, the AWS_* environment, or "
                           "ambient_credentials: true for an instance role")
    return Credentials(kwargs, tuple(secrets), f"{source}, region {region}")


def _service_account(text: str) -> dict | None:
    try:
        doc = json.loads(text)
    except ValueError:
        return None
    return doc if isinstance(doc, dict) and isinstance(doc.get("type"), str) else None


def _vertex(params: ProviderParams, env: Mapping[str, str]) -> Credentials:
    kwargs: dict[str, Any] = {}
    secrets: list[str] = []
    doc: dict | None = None
    source = None
    if params.vertex_credentials_env:
        value = env.get(params.vertex_credentials_env)
        if not value:
            return Credentials(problem=f"environment variable {params.vertex_credentials_env} is not set")
        if value.lstrip().startswith("{"):
            doc = _service_account(value)
            where = f"a service-account JSON in {params.vertex_credentials_env}"
        else:
            try:
                doc = _service_account(Path(value).read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError):
                doc = None
            where = f"the file named by {params.vertex_credentials_env}"
        if doc is None:
            return Credentials(problem=f"{params.vertex_credentials_env} holds neither a service-account JSON nor "
                               "the path of a readable one")
        kwargs["vertex_credentials"] = json.dumps(doc)
        secrets += [str(doc[k]) for k in ("private_key", "private_key_id", "refresh_token", "client_secret")
                    if doc.get(k)]
        source = where
    elif env.get("GOOGLE_APPLICATION_CREDENTIALS"):
        if not Path(env["GOOGLE_APPLICATION_CREDENTIALS"]).is_file():
            return Credentials(problem="GOOGLE_APPLICATION_CREDENTIALS names a file that does not exist")
        source = "GOOGLE_APPLICATION_CREDENTIALS"
    else:
        gcloud = Path(env.get("CLOUDSDK_CONFIG") or Path(env.get("HOME") or Path.home()) / ".config" / "gcloud")
        if (gcloud / "application_default_credentials.json").is_file():
            source = "gcloud application default credentials"
        elif params.ambient_credentials:
            source = "platform credentials (ambient_credentials), not checked"
    if source is None:
        return Credentials(problem="no Google credentials: set provider_params.vertex_credentials_env, "
                           "GOOGLE_APPLICATION_CREDENTIALS, or ambient_credentials: true for workload identity")
    project = params.vertex_project or env.get("VERTEXAI_PROJECT") or env.get("GOOGLE_CLOUD_PROJECT") or (
        doc.get("project_id") if doc else None)
    if not project:
        return Credentials(problem="no Google Cloud project: set provider_params.vertex_project")
    kwargs["vertex_project"] = project
    location = params.vertex_location or env.get("VERTEXAI_LOCATION") or "us-central1"
    kwargs["vertex_location"] = location
    return Credentials(kwargs, tuple(secrets), f"{source}, project {project}, location {location}")


def resolve_credentials(provider: str, params: ProviderParams, api_key_env: str | None,
                        env: Mapping[str, str]) -> tuple[str | None, Credentials]:
    """(api key or None, everything else) for one deployment; `Credentials.problem` says what is missing."""
    key = env.get(api_key_env) if api_key_env else None
    if api_key_env and not key:
        return None, Credentials(problem=f"environment variable {api_key_env} is not set")
    kwargs: dict[str, Any] = {}
    secrets: list[str] = []
    if params.api_version:
        kwargs["api_version"] = params.api_version
    if params.organization:
        kwargs["organization"] = params.organization
    if params.azure_ad_token_env:
        token = env.get(params.azure_ad_token_env)
        if not token:
            return None, Credentials(problem=f"environment variable {params.azure_ad_token_env} is not set")
        kwargs["azure_ad_token"] = token
        secrets.append(token)
    source = f"key from {api_key_env}" if api_key_env else ("Entra token from " + params.azure_ad_token_env
                                                             if params.azure_ad_token_env else "no key")
    extra = None
    if provider in _AWS:
        extra = _aws(params, env)
    elif provider in _VERTEX:
        extra = _vertex(params, env)
    if extra is not None:
        if extra.problem:
            return key, extra
        kwargs.update(extra.kwargs)
        secrets += extra.secrets
        source = extra.source if not api_key_env else f"{source}; {extra.source}"
    return key, Credentials(kwargs, tuple(secrets), source)
