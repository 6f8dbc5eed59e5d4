"""Text material for simulated replies: token counting (tiktoken's cl100k_base, built from the
package's copy by `gateway/_cl100k.py`: no network), deterministic filler text, stop handling,
logprobs, and schema-minimal JSON.

Pure functions; `_replies` plans and renders completions from them.
"""

from __future__ import annotations

import functools
import math
import re
from typing import Any

import orjson

from gateway._cl100k import encoding

# --------------------------------------------------------------------------- tokens


def load_tokenizer() -> None:
    """Load cl100k_base now (~0.3 s) rather than on the first request that counts tokens."""
    encoding()


@functools.lru_cache(maxsize=8192)
def count_tokens(text: str) -> int:
    """cl100k_base token count (cached: benchmarks repeat the same prompts)."""
    if not text:
        return 0
    enc = encoding()
    if enc is None:
        return max(1, math.ceil(len(text) / 4))
    return len(enc.encode_ordinary(text))


def message_text(content: Any) -> str:
    """Text of a message ``content`` (a string or a list of content parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text"
        )
    return ""


def prompt_tokens(messages: list[Any]) -> int:
    return sum(count_tokens(message_text(m.get("content"))) for m in messages if isinstance(m, dict))


def part_types(messages: list[Any]) -> set[str]:
    """The types of the content parts in `messages` (image_url, input_audio, file, text, ...)."""
    return {p["type"] for m in messages if isinstance(m, dict) and isinstance(m.get("content"), list)
            for p in m["content"] if isinstance(p, dict) and isinstance(p.get("type"), str)}


# --------------------------------------------------------------------------- filler text

# Common English words: each is a single cl100k token with its leading space,
# so completion_tokens == word count stays honest.
_WORDS = (
    "the quick answer is that this system works well for most of the common "
    "cases you will see in practice and we can look at each part in more detail "
    "if you want to know how it all fits together over time with a few simple "
    "steps that make sense for your use case here"
).split()

_PIECE_RE = re.compile(r"\s*\w+|\s*[^\w\s]+|\s+")


@functools.lru_cache(maxsize=1024)
def filler_pieces(n: int, offset: int = 0) -> tuple[str, ...]:
    """``n`` deterministic stream pieces ("Word", " word", ...) starting at ``offset``."""
    size = len(_WORDS)
    out = []
    for i in range(n):
        w = _WORDS[(offset + i) % size]
        out.append(w.capitalize() if i == 0 else " " + w)
    return tuple(out)


def filler_text(n: int, offset: int = 0) -> str:
    return "".join(filler_pieces(n, offset))


def split_pieces(text: str) -> list[str]:
    """Split arbitrary text into token-ish pieces that concatenate back to it."""
    return _PIECE_RE.findall(text)


def apply_stop(pieces: list[str] | tuple[str, ...], stop: Any) -> tuple[list[str], str | None]:
    """Cut ``pieces`` before the first stop sequence; returns (pieces, the sequence that matched)."""
    if isinstance(stop, str):
        stop = [stop]
    if not isinstance(stop, list) or not stop:
        return list(pieces), None
    text = "".join(pieces)
    hits = [(i, s) for s in stop if isinstance(s, str) and s and (i := text.find(s)) >= 0]
    if not hits:
        return list(pieces), None
    cut, matched = min(hits, key=lambda hit: hit[0])
    out, used = [], 0
    for p in pieces:
        if used + len(p) > cut:
            if cut > used:
                out.append(p[: cut - used])
            break
        out.append(p)
        used += len(p)
    return out, matched


def logprobs_for(pieces: list[str], top: int) -> list[dict[str, Any]]:
    """Deterministic logprob entries shaped like OpenAI's ``logprobs.content``."""
    entries = []
    for i, tok in enumerate(pieces):
        lp = -round(0.01 * ((i * 7) % 13 + 1), 4)
        alts = [{"token": tok, "logprob": lp, "bytes": list(tok.encode())}]
        for j in range(1, top):
            alt = " " + _WORDS[(i + j * 5) % len(_WORDS)]
            alts.append({"token": alt, "logprob": lp - j, "bytes": list(alt.encode())})
        entries.append({**alts[0], "top_logprobs": alts[:top]})
    return entries


# --------------------------------------------------------------------------- schema-minimal JSON

_STRING_FORMATS = {
    "date-time": "1970-01-01T00:00:00Z",
    "date": "1970-01-01",
    "time": "00:00:00",
    "email": "user@example.com",
    "uri": "https://example.com",
    "url": "https://example.com",
    "uuid": "00000000-0000-0000-0000-000000000000",
}


def minimal_instance(schema: Any, root: Any = None, depth: int = 0) -> Any:
    """Smallest plausible value satisfying ``schema``'s types and required keys."""
    if not isinstance(schema, dict) or depth > 16:
        return {} if depth == 0 else None
    root = schema if root is None else root
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/"):
        target: Any = root
        for part in ref[2:].split("/"):
            target = target.get(part, {}) if isinstance(target, dict) else {}
        return minimal_instance(target, root, depth + 1)
    if "const" in schema:
        return schema["const"]
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return schema["enum"][0]
    if "default" in schema:
        return schema["default"]
    for key in ("anyOf", "oneOf"):
        options = schema.get(key)
        if isinstance(options, list) and options:
            non_null = [o for o in options if not (isinstance(o, dict) and o.get("type") == "null")]
            return minimal_instance((non_null or options)[0], root, depth + 1)
    if isinstance(schema.get("allOf"), list):
        merged: dict[str, Any] = {"type": "object", "properties": {}, "required": []}
        for part in schema["allOf"]:
            if isinstance(part, dict):
                merged["properties"].update(part.get("properties") or {})
                merged["required"] += list(part.get("required") or [])
        return minimal_instance(merged, root, depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind is None:
        kind = "object" if "properties" in schema or depth == 0 else "array" if "items" in schema else "string"
    return _minimal_of_type(kind, schema, root, depth)


def _minimal_of_type(kind: str, schema: dict[str, Any], root: Any, depth: int) -> Any:
    if kind == "object":
        props = schema.get("properties") or {}
        return {
            k: minimal_instance(props.get(k, {"type": "string"}), root, depth + 1)
            for k in schema.get("required") or []
        }
    if kind == "array":
        count = int(schema.get("minItems") or 0)
        return [minimal_instance(schema.get("items") or {"type": "string"}, root, depth + 1)] * count
    if kind == "string":
        text = _STRING_FORMATS.get(schema.get("format", ""), "example")
        return text.ljust(int(schema.get("minLength") or 0), "x")
    if kind in ("integer", "number"):
        value = schema.get("minimum")
        if value is None and schema.get("exclusiveMinimum") is not None:
            value = schema["exclusiveMinimum"] + 1
        if value is None:
            value = min(1, schema.get("maximum", 1))
        return int(math.ceil(value)) if kind == "integer" else float(value)
    if kind == "boolean":
        return True
    return None


def dumps_str(value: Any) -> str:
    return orjson.dumps(value).decode()
