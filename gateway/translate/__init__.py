"""Other API formats to and from the chat-completions body the request pipeline speaks.

`POST /v1/responses` (OpenAI's Responses API) and `POST /v1/messages` (Anthropic's Messages API)
are served by translating the request into a chat-completions body, running it through the same
pipeline as chat (selection, policy, limits, budgets, retries and fallbacks, accounting), and
translating the chat answer or stream back. One path for every deployment, whatever wire it speaks:
OpenAI-wire deployments get the chat body directly, the others through litellm.

Everything here is pure (dicts in, dicts out); the routes do the I/O.
"""
