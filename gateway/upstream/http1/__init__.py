"""A lean HTTP/1.1 client for the OpenAI wire: pooled keep-alive connections, each one asyncio
`Protocol`, responses parsed by llhttp (`httptools`, which uvicorn[standard] already brings).

Why not aiohttp's `ClientSession`: per proxied call it cost more CPU than the whole bare
passthrough the gateway is measured against (28 % of the gateway's samples under saturation,
docs/performance.md, fourth pass): a request object, a connection object, a timer context, a
payload registry lookup, header multidicts, a response object and a stream reader per call. The
wire transport needs one thing: POST a JSON body to an upstream and read the answer back, whole or
line by line. This module does only that, and keeps the guards the transport relies on:

- nothing is followed, kept or sent back: no redirects (the caller sees the 3xx), no cookies, no
  proxies from the environment;
- a response head is at most `MAX_HEAD_BYTES`; an encoding the gateway did not ask for
  (`Accept-Encoding: gzip, deflate`) is refused; a body is inflated in steps bounded by what is
  still allowed, so a gzip bomb is never inflated past the caller's limit;
- a stream's buffer pauses the socket at `_HIGH_WATER`, so a fast upstream and a slow client
  cannot make the gateway hold more than that per stream;
- time limits: a connect timeout; then a deadline (`DeadlineExceeded`: a whole response, or a
  stream's head and whatever its reader asks of it by a deadline it sets, `Response.until`) and, for
  a stream, an idle limit between reads too (`IdleTimeout`, as aiohttp's `sock_read`). A byte now
  and then resets the idle limit, never the deadline: an upstream that trickles a head or a line
  that never ends is cut at the deadline all the same. One watchdog timer per connection times both.

A connection goes back to the pool only after a response framed by its length or its chunks was
read to its end and the upstream did not ask to close. A response released early (a stream ends
at `[DONE]` before the upstream's last chunk arrives) drains for a short while, and its connection
is reused only if the rest comes in time.
"""

from gateway.upstream.http1._body import (
    MAX_HEAD_BYTES,
    ConnectionBroken,
    DeadlineExceeded,
    IdleTimeout,
    LineTooLong,
    MalformedResponse,
    UpstreamIOError,
)
from gateway.upstream.http1._pool import Pool
from gateway.upstream.http1._response import Response

__all__ = ["MAX_HEAD_BYTES", "ConnectionBroken", "DeadlineExceeded", "IdleTimeout", "LineTooLong", "MalformedResponse",
           "Pool", "Response", "UpstreamIOError"]
