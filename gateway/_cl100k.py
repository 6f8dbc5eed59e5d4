"""OpenAI's cl100k_base tokenizer from the copy of its ranks in this package (`data/README.md`).

tiktoken's own `get_encoding("cl100k_base")` would download the ranks, and litellm's counter needs
litellm imported (seconds, ~160 MB); the gateway only needs the tokenizer. Building it reads and
decompresses ~1.7 MB (~0.2-0.3 s), so `encoding()` belongs in a thread or at start, never on the
event loop of a serving process.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import lzma
from pathlib import Path
from typing import Any

__all__ = ["count", "encoding"]

_FILE = Path(__file__).parent / "data" / "cl100k_base.tiktoken.xz"
_SHA256 = "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7"  # what tiktoken checks
# From tiktoken_ext/openai_public.py (cl100k_base).
_PATTERN = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|"""
    r"""\s*[\r\n]|\s+(?!\S)|\s"""
)
_SPECIAL = {"<|endoftext|>": 100257, "<|fim_prefix|>": 100258, "<|fim_middle|>": 100259,
            "<|fim_suffix|>": 100260, "<|endofprompt|>": 100276}


def _ranks() -> dict[bytes, int]:
    """The ranks file in tiktoken's format (one `base64-token rank` per line), hash-checked."""
    raw = lzma.decompress(_FILE.read_bytes())
    if hashlib.sha256(raw).hexdigest() != _SHA256:
        raise ValueError(f"{_FILE} is not cl100k_base")
    return {base64.b64decode(token): int(rank) for token, rank in (line.split() for line in raw.splitlines() if line)}


@functools.cache
def encoding() -> Any:
    """The tiktoken `Encoding`, or None if it cannot be built (callers fall back to an estimate)."""
    try:
        import tiktoken

        return tiktoken.Encoding("cl100k_base", pat_str=_PATTERN, mergeable_ranks=_ranks(), special_tokens=_SPECIAL)
    except Exception:  # noqa: BLE001 - any failure falls back to the estimate
        return None


def count(text: str) -> int | None:
    """`text`'s cl100k tokens, special-token lookalikes counted as plain text (as OpenAI bills a
    prompt that contains them), or None without a tokenizer."""
    enc = encoding()
    return None if enc is None else len(enc.encode_ordinary(text))
