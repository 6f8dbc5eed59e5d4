"""File parts and JSON schemas in the prompt's token figure, which selection's context check, the
TPM rate-limit charge and the budget's hold all read (`RequestContext.input_tokens`).

Before: a PDF sent as a chat `file` part, a Responses `input_file` or a Messages `document` block
counted as ~0 tokens (a 15 KB PDF was charged 19), and a `response_format` schema not at all,
though providers bill both as input. The rule for files is in gateway/core/tokens.py and
docs/selection.md: a page (3,000 tokens) per started 8 KiB of decoded data, text files as text,
a file by id a fixed allowance."""

from __future__ import annotations

import base64
import random
import zlib

import orjson
import pytest

from gateway import _cl100k as cl100k, errors
from gateway.catalog import GatewayConfig, load_catalog
from gateway.core.context import build_context
from gateway.core.decision import Decider
from gateway.core.tokens import CountFirst, count_tokens, estimate_tokens, file_tokens, prompt_tokens
from gateway.policy import PolicySet
from gateway.selection.engine import SelectionEngine
from gateway.translate import anthropic, responses

BASE = "http://127.0.0.1:9/v1"
PAGE, PAGE_BYTES, BY_ID = 3_000, 8_192, 12_000
_PROMPT = "summarise this"
_SCHEMA = {"name": "invoice", "strict": True, "schema": {
    "type": "object", "additionalProperties": False, "required": ["vendor", "total", "lines"],
    "properties": {"vendor": {"type": "string", "description": "Who issued the invoice"},
                   "total": {"type": "number", "description": "The amount due, in the invoice's currency"},
                   "lines": {"type": "array", "items": {"type": "object", "properties": {
                       "item": {"type": "string"}, "amount": {"type": "number"}}}}}}}


def _b64(size: int) -> str:
    """`size` bytes that look like a PDF, base64: ~4/3 as many characters."""
    data = b"%PDF-1.7\n" + random.Random(size).randbytes(size - 9)
    return base64.b64encode(data).decode()


def _pdf_url(size: int) -> str:
    return f"data:application/pdf;base64,{_b64(size)}"


def _file(**file: str) -> dict:
    return {"type": "file", "file": file}


def _messages(*parts: dict) -> list[dict]:
    return [{"role": "user", "content": [{"type": "text", "text": _PROMPT}, *parts]}]


def _added(*parts: dict) -> int:
    """The tokens `parts` add to a one-message prompt's estimate."""
    return estimate_tokens(_messages(*parts)) - estimate_tokens(_messages())


# -- files -------------------------------------------------------------------------------------------


def test_the_probes_pdf_is_no_longer_free():
    # ~15 KB of base64 (11,250 bytes): two started 8 KiB pages. The same text as a text part was 607.
    pdf = _file(file_data=_pdf_url(11_250), filename="report.pdf")
    assert len(pdf["file"]["file_data"]) > 15_000
    assert _added(pdf) == 2 * PAGE
    assert estimate_tokens(_messages(pdf)) > 607


@pytest.mark.parametrize(("size", "pages"), [(100, 1), (PAGE_BYTES, 1), (PAGE_BYTES + 1, 2), (263_000, 33),
                                             (2_000_000, 245)])
def test_a_pdf_is_a_page_per_started_8_kib_of_its_data(size, pages):
    assert _added(_file(file_data=_pdf_url(size))) == pages * PAGE


def test_bare_base64_file_data_is_sized_as_a_data_url_is():
    assert _added(_file(file_data=_b64(50_000))) == _added(_file(file_data=_pdf_url(50_000))) == 7 * PAGE


def test_a_file_by_id_has_a_fixed_allowance():
    assert file_tokens({"file_id": "file-abc123"}) == BY_ID
    assert _added(_file(file_id="file-abc123", filename="big.pdf")) == BY_ID


def test_every_file_counts():
    parts = (_file(file_data=_pdf_url(20_000)), _file(file_id="file-1"), _file(file_data=_pdf_url(1_000)))
    assert _added(*parts) == 3 * PAGE + BY_ID + PAGE


def test_a_text_file_counts_as_its_text():
    text = "Quarterly revenue rose eight per cent on strong services demand. " * 40
    encoded = base64.b64encode(text.encode()).decode()
    as_file = _file(file_data=f"data:text/plain;base64,{encoded}", filename="notes.txt")
    assert _added(as_file) == len(text) // 4  # the rate text parts are estimated at
    assert _added(_file(file_data="data:text/plain,hello%20world%20again")) == len("hello%20world%20again") // 4
    # The tokenizer reads the decoded text, as it reads a text part.
    counted = count_tokens(_messages(as_file), None, estimate=0)
    assert counted == count_tokens(_messages({"type": "text", "text": text}), None, estimate=0)
    assert counted == cl100k.count(f"{_PROMPT}\n{text}") + 3 + 4


def test_the_count_keeps_the_size_estimate_of_a_pdf_whose_pages_it_cannot_read():
    messages = _messages(_file(file_data=_pdf_url(30_000)))  # no page objects in it
    assert count_tokens(messages, None, estimate=0) == cl100k.count(_PROMPT) + 3 + 4 + 4 * PAGE
    with pytest.raises(CountFirst) as need:
        prompt_tokens(messages, None, exact_from=PAGE)
    assert need.value.measure() == cl100k.count(_PROMPT) + 3 + 4 + 4 * PAGE
    not_a_pdf = _messages(_file(file_data="data:application/octet-stream;base64," + _b64(30_000)[12:]))
    assert count_tokens(not_a_pdf, None, estimate=0) == cl100k.count(_PROMPT) + 3 + 4 + 4 * PAGE


def _scan(pages: int, image_bytes: int, object_stream: bool) -> bytes:
    """A PDF of `pages` scanned pages: page objects (plain, or in a compressed object stream as
    most writers put them) and one big JPEG-coded image, the bulk of the bytes."""
    kids = " ".join(f"{10 + i} 0 R" for i in range(pages)).encode()
    page = b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /XObject << /Im0 9 0 R >> >> >>"
    if object_stream:
        packed = zlib.compress(b"\n".join([page] * pages))
        objects = (b"8 0 obj\n<< /Type /ObjStm /N %d /First 0 /Filter /FlateDecode /Length %d >>\nstream\n"
                   % (pages, len(packed)) + packed + b"\nendstream\nendobj\n")
    else:
        objects = b"".join(b"%d 0 obj\n" % (10 + i) + page + b"\nendobj\n" for i in range(pages))
    image = random.Random(pages).randbytes(image_bytes)
    tree = b"2 0 obj\n<< /Type /Pages /Count %d /Kids [%s] >>\nendobj\n" % (pages, kids)
    picture = b"9 0 obj\n<< /Type /XObject /Subtype /Image /Filter /DCTDecode /Length %d >>\nstream\n" % len(image)
    return (b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n" + tree + objects + picture + image
            + b"\nendstream\nendobj\n%%EOF\n")


@pytest.mark.parametrize("object_stream", [True, False])
def test_near_a_window_a_pdf_is_counted_by_its_pages(object_stream):
    # A 3 MB, 4-page scan: the size rule makes it 1.1 million tokens, more than any window here.
    scan = _scan(4, 3_000_000, object_stream)
    messages = _messages(_file(file_data="data:application/pdf;base64," + base64.b64encode(scan).decode()))
    assert estimate_tokens(messages) - estimate_tokens(_messages()) == PAGE * -(-len(scan) // PAGE_BYTES)
    assert count_tokens(messages, None, estimate=0) == cl100k.count(_PROMPT) + 3 + 4 + 4 * PAGE
    # So it is served, even by the 16k window, where the estimate alone would refuse it for every window.
    decision = _decide(_decider(), {"model": "auto", "messages": messages, "max_tokens": 100})
    assert decision.ctx.input_tokens == cl100k.count(_PROMPT) + 3 + 4 + 4 * PAGE
    assert {c.model.name for c in decision.ranking.ranked} == {"small-window", "large-window"}


def _decider() -> Decider:
    reads_pdfs = {"supports_pdf_input": True, "input_cost_per_token": 1e-6, "output_cost_per_token": 2e-6}
    small = {**reads_pdfs, "provider": "self-hosted", "context_window": 16_384, "max_output_tokens": 2048}
    deps = [{"name": "small-window", "model": "openai/small", "api_base": BASE, "metadata": small},
            {"name": "large-window", "model": "openai/gpt-4o-mini", "api_base": BASE, "metadata": reads_pdfs}]
    return Decider(load_catalog(GatewayConfig.model_validate({"deployments": deps}), env={}), SelectionEngine(),
                   lambda: PolicySet())


def _decide(decider: Decider, body: dict):
    try:
        return decider.decide(body, {}, "r")
    except CountFirst as need:  # as the request pipeline does, in a thread there
        return decider.decide(body, {}, "r", counted=need.measure())


def test_a_pdf_that_cannot_fit_a_window_is_kept_from_it():
    # 100 KB: 13 pages, 39,000 tokens; it fits the 128k window and not the 16k one.
    body = {"model": "auto", "messages": _messages(_file(file_data=_pdf_url(100_000))), "max_tokens": 100}
    decision = _decide(_decider(), body)
    assert decision.ctx.input_tokens >= 13 * PAGE
    assert [c.model.name for c in decision.ranking.ranked] == ["large-window"]
    with pytest.raises(errors.NoFeasibleModelError, match="context: needs"):
        _decide(_decider(), {**body, "model": "small-window"})


def _chat_input_tokens(chat: dict) -> int:
    return build_context(chat, request_id="r", pinned_model=None, domain=None, pipeline=None).input_tokens


def test_every_routes_file_reaches_the_estimate():
    """A chat `file` part, a Responses `input_file` and a Messages `document` block are one
    figure: the routes translate the last two to the first before the decision."""
    data = _b64(11_250)
    url = f"data:application/pdf;base64,{data}"
    chat = {"model": "auto", "messages": [{"role": "user", "content": [
        {"type": "text", "text": _PROMPT}, _file(file_data=url, filename="r.pdf")]}]}
    via_responses, _ = responses.to_chat({"model": "auto", "input": [{"role": "user", "content": [
        {"type": "input_text", "text": _PROMPT}, {"type": "input_file", "file_data": url, "filename": "r.pdf"}]}]})
    via_messages, _ = anthropic.to_chat({"model": "auto", "max_tokens": 100, "messages": [{"role": "user", "content": [
        {"type": "text", "text": _PROMPT},
        {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": data}}]}]})
    by_id, _ = responses.to_chat({"model": "auto", "input": [{"role": "user", "content": [
        {"type": "input_text", "text": _PROMPT}, {"type": "input_file", "file_id": "file-9"}]}]})
    text_only = _chat_input_tokens({"model": "auto", "messages": _messages()})
    assert _chat_input_tokens(chat) == text_only + 2 * PAGE
    assert _chat_input_tokens(via_responses) == text_only + 2 * PAGE
    assert _chat_input_tokens(via_messages) == text_only + 2 * PAGE
    assert _chat_input_tokens(by_id) == text_only + BY_ID


# -- response_format ---------------------------------------------------------------------------------


def test_a_json_schema_counts_as_its_serialised_text():
    plain = {"model": "auto", "messages": _messages()}
    schema = orjson.dumps(_SCHEMA).decode()
    with_schema = {**plain, "response_format": {"type": "json_schema", "json_schema": _SCHEMA}}
    added = _chat_input_tokens(with_schema) - _chat_input_tokens(plain)
    assert added == (len(_PROMPT) + len(schema)) // 4 - len(_PROMPT) // 4 > 100
    # json_object and text carry no schema: nothing to bill.
    for fmt in ({"type": "json_object"}, {"type": "text"}):
        assert _chat_input_tokens({**plain, "response_format": fmt}) == _chat_input_tokens(plain)


def test_the_count_near_a_window_reads_the_schema():
    fmt = {"type": "json_schema", "json_schema": _SCHEMA}
    with pytest.raises(CountFirst) as need:
        prompt_tokens(_messages(), None, 1, fmt)
    assert need.value.measure() == cl100k.count(f"{_PROMPT}\n{orjson.dumps(_SCHEMA).decode()}") + 3 + 4
    assert count_tokens(_messages(), None, 0, fmt) == need.value.measure()


def test_responses_and_messages_schemas_count_too():
    plain = _chat_input_tokens({"model": "auto", "messages": _messages()})
    text_format, _ = responses.to_chat({"model": "auto", "input": _PROMPT, "text": {"format": {
        "type": "json_schema", "name": "invoice", "schema": _SCHEMA["schema"], "strict": True}}})
    output_config, _ = anthropic.to_chat({"model": "auto", "max_tokens": 100, "messages": [
        {"role": "user", "content": _PROMPT}], "output_config": {"format": {"type": "json_schema",
                                                                             "schema": _SCHEMA["schema"]}}})
    for chat in (text_format, output_config):
        assert _chat_input_tokens(chat) - plain > len(orjson.dumps(_SCHEMA["schema"])) // 4 - 2


def test_a_plain_prompt_is_estimated_as_before():
    messages = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello there"}]
    assert estimate_tokens(messages) == len("be briefhello there") // 4 + 3 + 2 * 4
    assert prompt_tokens(messages, None, None) == estimate_tokens(messages)


def test_the_page_count_inflates_a_bounded_amount(monkeypatch):
    # Object streams that inflate to 16 MB each: a crafted file must not make the count inflate 3 GB.
    bomb = zlib.compress(b"\0" * (16 << 20), 9)
    pdf = b"%PDF-1.7\n" + b"".join(b"<< /Type /ObjStm /N 1 /First 0 /Filter /FlateDecode >>\nstream\n" + bomb
                                   + b"\nendstream\n" for _ in range(200))
    inflated: list[int] = []
    real = zlib.decompressobj

    class Counting:
        def __init__(self) -> None:
            self._inflate = real()

        def decompress(self, data: bytes, limit: int) -> bytes:
            out = self._inflate.decompress(data, limit)
            inflated.append(len(out))
            return out

    monkeypatch.setattr(zlib, "decompressobj", Counting)
    messages = _messages(_file(file_data="data:application/pdf;base64," + base64.b64encode(pdf).decode()))
    assert count_tokens(messages, None, estimate=0) > 0
    assert sum(inflated) <= 16 << 20
