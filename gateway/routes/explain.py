"""`POST /v1/selection/explain`: the ranking a chat request would get, with no upstream call.

For a key bound to a pipeline, reasons and notes carry no request or sample counts: live figures
are global, so a count adds up every tenant's traffic (docs/security.md#tenancy).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse

from gateway import asgi
from gateway.core.tokens import CountFirst
from gateway.routes.chat import parse_body
from gateway.security.middleware import PRINCIPAL
from gateway.selection.explain import ranking_to_dict, without_counts
from gateway.state import GatewayState

__all__ = ["explain"]


async def explain(request: Request) -> JSONResponse:
    state: GatewayState = request.app.state.gateway
    body = parse_body(await asgi.read_body(request.receive))  # a client gone: `asgi.ClientGone`, answered quietly
    # The id the app gave this request, which its `x-gateway-request-id` header carries: the body
    # and the header name the same request, as in the logs.
    request_id = asgi.request_id(request.scope)
    try:
        decision = state.decider.decide(body, request.headers, request_id, explain=True)
    except CountFirst as need:  # near a context window: counted in a thread, as for a call
        decision = state.decider.decide(body, request.headers, request_id, explain=True, counted=await need.counted())
    principal = request.scope.get(PRINCIPAL)
    counts = principal is None or principal.master or principal.pipeline is None  # the operator's view
    out = ranking_to_dict(decision.ranking, counts=counts)
    res = decision.resolution
    out.update(
        request_id=request_id,
        pipeline=decision.pipeline,
        policy=res.policy_name if res else None,
        strategy_source=decision.strategy_source,
        notes=list(decision.notes) if counts else [without_counts(n) for n in decision.notes],
        experts={"preferred": list(res.experts.preferred), "trigger": res.experts.trigger,
                 "tools": list(res.experts.tools), "reason": res.experts.reason} if res else None,
        context={
            "input_tokens": decision.ctx.input_tokens,
            "max_output_tokens": decision.ctx.max_output_tokens,
            "required_capabilities": sorted(decision.ctx.required_capabilities),
            "domain": decision.ctx.domain,
            "domain_source": decision.ctx.domain_source,
            "tools": list(decision.ctx.tool_names),
        },
        fallbacks=[d.name for d in decision.candidates],
        # How each candidate would be reached: `openai` (the body sent as is) or `litellm` (translated).
        transports={d.name: {"transport": d.transport, "provider": d.provider, "why": d.transport_reason}
                    for d in decision.candidates},
    )
    return JSONResponse(out)
