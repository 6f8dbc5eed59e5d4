"""Input tokens: estimated from characters on every request, counted with OpenAI's tokenizer near a
context window (docs/api.md#token-counts).

The estimate costs microseconds and is close on English prose and code; near a window it errs by
about a quarter either way, so a builder that meets such an input raises `CountFirst`, and its
caller counts (in a thread: milliseconds per 10,000 tokens) and decides again with the count.
"""

from __future__ import annotations

import asyncio
import binascii
import functools
import re
import urllib.parse
import zlib
from collections.abc import Callable, Mapping, Sequence

import orjson

from gateway import _cl100k as cl100k
from gateway.selection.types import ModelInfo

__all__ = [
    "CountFirst", "count_from", "count_tokens", "estimate_text_tokens", "estimate_tokens", "file_tokens",
    "prompt_tokens",
]

# Per-message framing tokens in OpenAI's chat format, and a flat cost per image part.
_MESSAGE_OVERHEAD = 4
_IMAGE_TOKENS = 765

# A file part (a PDF, as OpenAI's chat API, Responses' `input_file` and Anthropic's `document` blocks
# send it) is billed as its pages: each page's extracted text plus an image of the page, 1,500-3,000
# tokens a page by Anthropic (docs.anthropic.com/en/docs/build-with-claude/pdf-support), text and
# page images by OpenAI (platform.openai.com/docs/guides/pdf-files). The estimate decodes nothing on
# the event loop (a PDF can be megabytes, and its page tree usually sits in compressed object
# streams), so it reads the pages from the size: a page per started 8 KiB of decoded data (text PDFs
# with embedded fonts run 7-8 KB a page), each at the top of Anthropic's range. That errs low on PDFs
# without embedded fonts and high on scans, whose bytes are pictures (a budget or rate limit charged
# too much is the safe side; near a window the count reads the pages: `_pdf_pages`).
_FILE_PAGE_TOKENS = 3_000
_FILE_PAGE_BYTES = 8_192
# A file sent by `file_id` carries no data to size: an allowance of four pages, so that budgets and
# rate limits do not take it for free, while staying far below every PDF-reading model's window.
_FILE_ID_TOKENS = 4 * _FILE_PAGE_TOKENS
# Near a window the count reads the PDF instead (in a thread): its page objects, plain or inside
# compressed object streams, each `_FILE_PAGE_TOKENS`. A scan the size rule over-counts tenfold is
# then counted by its pages before the window check could refuse it.
_PAGE_OBJECT = re.compile(rb"/Type\s*/Page(?![A-Za-z])")
_STREAM = re.compile(rb"stream\r?\n")
# Inflated bytes read from a PDF's object streams, all together: they hold object dictionaries
# (~300 bytes a page), and a crafted file must not make the count inflate gigabytes.
_OBJECT_STREAMS_MAX = 1 << 24


def estimate_text_tokens(text: str) -> int:
    """One text's tokens, estimated as `estimate_tokens` does (~4 characters per token)."""
    return len(text) // 4 + 1


def estimate_tokens(messages: list, tools: list | None = None) -> int:
    """Estimate input tokens from character counts: ~4 chars per token for English and code.

    A real tokenizer costs ~80 µs per 250-token prompt (tiktoken, measured in bench/), over a
    hundred times this; context-fit checks only need to be close, and selection adds a margin.
    Near a window they need more: `build_context` then asks for a count (`CountFirst`).
    """
    return prompt_tokens(messages, tools, None)


def _data_url(data: str) -> tuple[str, int]:
    """A file's `data:` header (media type and flags, e.g. `application/pdf;base64`) and where its
    payload starts. A bare string is base64 of no stated type, as `file_data` may come."""
    if data.startswith("data:"):
        comma = data.find(",", 5, 512)  # the header is short; never scan a megabyte payload for it
        if comma != -1:
            return data[5:comma], comma + 1
    return "base64", 0


def file_tokens(file: Mapping) -> int:
    """A file part's estimated tokens from its size alone (see `_FILE_PAGE_TOKENS`): text files at
    the text rate, anything else by pages, a file by id the fixed allowance."""
    data = file.get("file_data")
    if not isinstance(data, str):
        return _FILE_ID_TOKENS
    header, start = _data_url(data)
    size = len(data) - start
    if header.endswith("base64"):
        size = size * 3 // 4 - data.endswith("=") - data.endswith("==")  # less the padding's bytes
    if header.startswith("text/"):
        return size // 4
    return _FILE_PAGE_TOKENS * max(1, -(-size // _FILE_PAGE_BYTES))


def _pdf_pages(pdf: bytes) -> int:
    """The page objects in a PDF, counting those in compressed object streams (where most writers
    put them); 0 when none are found or it is no PDF."""
    if not pdf.startswith(b"%PDF"):
        return 0
    pages = len(_PAGE_OBJECT.findall(pdf))
    budget = _OBJECT_STREAMS_MAX
    at = pdf.find(b"/ObjStm")
    while at != -1 and budget > 0:  # content, fonts and images are never inflated: no page objects in them
        stream = _STREAM.search(pdf, at, at + 1024)  # the keyword follows the stream's dictionary
        if stream is not None:
            end = pdf.find(b"endstream", stream.end())
            try:
                inflated = zlib.decompressobj().decompress(pdf[stream.end():end if end != -1 else None], budget)
            except zlib.error:
                inflated = b""
            budget -= len(inflated)
            pages += len(_PAGE_OBJECT.findall(inflated))
        at = pdf.find(b"/ObjStm", at + 7)
    return pages


def _b64decode(text: str) -> bytes:
    """`text` decoded in slices: between them the counting thread lets the event loop have the GIL
    (one call on a 32 MB file holds it for ~0.1 s). Slices of 4 characters' multiples stay aligned
    unless the text has line breaks: then it is decoded whole."""
    step = 1 << 20
    try:
        return b"".join([binascii.a2b_base64(text[i:i + step]) for i in range(0, len(text), step)])
    except binascii.Error:
        return binascii.a2b_base64(text)


def _read_file(file: Mapping) -> tuple[str | None, int]:
    """A file part read for the count: (its text, for the tokenizer, if it is a text file; the
    tokens it adds otherwise: its PDF pages, else the size estimate). Blocking: decodes the data."""
    data = file.get("file_data")
    if not isinstance(data, str):
        return None, _FILE_ID_TOKENS
    header, start = _data_url(data)
    if not header.endswith("base64"):
        return (urllib.parse.unquote(data[start:]), 0) if header.startswith("text/") else (None, file_tokens(file))
    try:
        raw = _b64decode(data[start:])
    except binascii.Error:
        return None, file_tokens(file)
    if header.startswith("text/"):
        return raw.decode("utf-8", "replace"), 0
    pages = _pdf_pages(raw)
    return None, pages * _FILE_PAGE_TOKENS if pages else file_tokens(file)


def _schema_text(response_format: object) -> str | None:
    """A JSON schema answer format as the provider reads it (serialised): billed as input."""
    if not isinstance(response_format, dict) or response_format.get("type") != "json_schema":
        return None
    return orjson.dumps(response_format.get("json_schema")).decode()


def _texts(messages: list, tools: list | None, response_format: object = None,
           read_files: bool = False) -> tuple[list[str], int]:
    """The texts a prompt's tokens come from, and the tokens that do not come from text (each
    message's framing, a flat cost per image, a file's estimate). With `read_files` (the count, in
    a thread) files are decoded: text files into texts, PDFs to their pages; the estimate only
    reads their size."""
    texts: list[str] = []
    add = texts.append
    extra = 3
    for message in messages:
        extra += _MESSAGE_OVERHEAD
        content = message.get("content")
        if isinstance(content, str):
            add(content)
        elif isinstance(content, list):
            for part in content:
                if not isinstance(part, dict):
                    continue
                kind = part.get("type")
                if kind == "text":
                    add(part.get("text") or "")
                elif kind in ("image_url", "input_image"):
                    extra += _IMAGE_TOKENS
                elif kind == "file" and isinstance(file := part.get("file"), dict):
                    if read_files:
                        text, tokens = _read_file(file)
                        extra += tokens
                        if text is not None:
                            add(text)
                    else:
                        extra += file_tokens(file)
        for call in message.get("tool_calls") or ():
            fn = call.get("function") or {} if isinstance(call, dict) else {}
            add(fn.get("name") or "")
            add(fn.get("arguments") or "")
    if tools:
        for tool in tools:
            add(str(tool))
    if response_format is not None and (schema := _schema_text(response_format)) is not None:
        add(schema)
    return texts, extra


def count_tokens(messages: list, tools: list | None, estimate: int, response_format: object = None) -> int:
    """The prompt's tokens with OpenAI's tokenizer (cl100k) for its text, `estimate` without one.

    Blocking (milliseconds per 10,000 tokens, and the tokenizer's first load ~0.2 s): run it off
    the event loop (`CountFirst.counted`)."""
    texts, extra = _texts(messages, tools, response_format, read_files=True)
    counted = cl100k.count("\n".join(texts))
    return estimate if counted is None else counted + extra


def prompt_tokens(messages: list, tools: list | None, exact_from: int | None,
                  response_format: object = None) -> int:
    """The estimate (`estimate_tokens`), or `CountFirst` from `exact_from` estimated tokens on.
    `response_format`: the body's; a JSON schema in it is input the provider bills."""
    texts, extra = _texts(messages, tools, response_format)
    tokens = sum(map(len, texts)) // 4 + extra
    if exact_from is not None and tokens >= exact_from:
        raise CountFirst(functools.partial(count_tokens, messages, tools, tokens, response_format))
    return tokens


class CountFirst(Exception):  # noqa: N818 - a request to the caller, not an error
    """A context builder's request to count before deciding: the estimate is too close to a
    context window to decide on, in either direction (~4 characters a token over-counts prose by
    a quarter or more, and under-counts code and most non-English text).

    Not a `GatewayError` and never answered: the caller runs `counted()` and decides again with
    `counted=`. Counting blocks for milliseconds per 10,000 tokens, so it runs in a thread, never
    on the event loop that serves every other request."""

    def __init__(self, measure: Callable[[], int]) -> None:
        super().__init__("count the input's tokens, then decide")
        self.measure = measure

    async def counted(self) -> int:
        return await asyncio.to_thread(self.measure)


def count_from(models: Sequence[ModelInfo]) -> int | None:
    """The estimate from which a prompt is counted: 3/4 of the smallest of `models`' windows (the
    estimate errs by about a quarter either way on most text), or None without models."""
    smallest = min((m.context_window for m in models), default=None)
    return None if smallest is None else smallest * 3 // 4
