"""Payloads on disk: JSON (orjson), secrets replaced, zlib past ~2 KiB; a one-byte tag says which."""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from typing import Any

import orjson
from langchain_core.documents import Document
from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from pydantic import BaseModel

REDACTED = "[redacted]"
COMPRESS_OVER = 2048
# Level 1: traces are mostly text that compresses ~4x even at the fastest level, and the writer
# shares the GIL and two cores with the graphs being traced.
_LEVEL = 1
# One runaway state must not stall the writer or bloat the store; past this only a head is kept.
_MAX_JSON = 8 << 20
_RAW, _ZLIB = b"j", b"z"
_OPTS = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY


def message_dict(m: BaseMessage) -> dict[str, Any]:
    """A chat message as role + content, plus only the fields that are set (traces stay small)."""
    out: dict[str, Any] = {"role": m.type, "content": m.content}
    if m.name:
        out["name"] = m.name
    # isinstance, not getattr(m, field, None): a missing field on a pydantic model costs an exception.
    if isinstance(m, AIMessage):
        if m.tool_calls:
            out["tool_calls"] = m.tool_calls
        if m.invalid_tool_calls:
            out["invalid_tool_calls"] = m.invalid_tool_calls
    elif isinstance(m, ToolMessage):
        out["tool_call_id"] = m.tool_call_id
    return out


def _default(obj: Any) -> Any:
    """What orjson cannot encode itself; anything unknown is kept as its repr, never an error."""
    if isinstance(obj, BaseMessage):
        return message_dict(obj)
    if isinstance(obj, Document):
        return {"page_content": obj.page_content, "metadata": obj.metadata}
    if isinstance(obj, BaseModel):
        try:
            return obj.model_dump(mode="json")
        except Exception:  # a model with an unencodable field: fall through to its repr
            pass
    if isinstance(obj, set | frozenset):
        return list(obj)
    if isinstance(obj, bytes | bytearray):
        return bytes(obj).decode("utf-8", "replace")
    return repr(obj)


class Codec:
    """Encodes payloads for the writer thread; the secrets are matched in raw and JSON-escaped form."""

    def __init__(self, redact: Sequence[str] = ()) -> None:
        forms: set[bytes] = set()
        for secret in redact:
            if secret:  # an empty string would match between every byte
                forms.add(secret.encode())
                forms.add(orjson.dumps(secret)[1:-1])
        # Longest first, so a secret that contains another is replaced whole.
        self._secrets = sorted(forms, key=len, reverse=True)
        self._mask = REDACTED.encode()

    def scrub(self, data: bytes) -> bytes:
        for secret in self._secrets:
            if secret in data:
                data = data.replace(secret, self._mask)
        return data

    def text(self, value: str | None) -> str | None:
        """A short text column (name, error, model), with secrets replaced."""
        if value is None or not self._secrets:
            return value
        return self.scrub(value.encode()).decode("utf-8", "replace")

    def encode(self, payload: Any) -> bytes | None:
        if payload is None:
            return None
        data = self.scrub(orjson.dumps(payload, default=_default, option=_OPTS))
        if len(data) > _MAX_JSON:
            # Cut after scrubbing, so no secret is left half-matched at the cut.
            head = data[: _MAX_JSON // 8].decode("utf-8", "ignore")
            data = orjson.dumps({"truncated_json_bytes": len(data), "head": head})
        if len(data) > COMPRESS_OVER:
            return _ZLIB + zlib.compress(data, _LEVEL)
        return _RAW + data


def decode(blob: bytes | None) -> Any:
    """The payload a blob holds; None stays None."""
    if blob is None:
        return None
    tag, body = blob[:1], blob[1:]
    if tag == _ZLIB:
        body = zlib.decompress(body)
    elif tag != _RAW:
        raise ValueError(f"unknown payload tag {tag!r}")
    return orjson.loads(body)
