"""gateway: an OpenAI-compatible LLM proxy that picks the right model for every request.

The public surface is `create_app(settings)` and `Settings`. They are imported lazily so that
lightweight entry points (the simulator, the policy validator) do not pay for the web stack.
"""

from typing import TYPE_CHECKING, Any

__all__ = ["Settings", "create_app"]
__version__ = "0.1.0"

if TYPE_CHECKING:
    from gateway.app import create_app
    from gateway.settings import Settings


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from gateway.app import create_app

        return create_app
    if name == "Settings":
        from gateway.settings import Settings

        return Settings
    raise AttributeError(name)
