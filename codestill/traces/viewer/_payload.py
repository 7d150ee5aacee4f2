"""Payloads as HTML: nested values folded, long strings and lists shown by their head with a link to
the whole, so nothing is dropped or silently cut and a 10 MB prompt does not stall the page.

A link names the span, the payload field and the path inside it (``messages.0.1.content``); the
``/text`` and ``/raw`` routes answer with that value (or the whole payload) in full.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

import orjson
from markupsafe import Markup

SHOW_CHARS = 4000  # a string longer than this shows its head and a "whole" link
SHOW_ITEMS = 100  # a list or mapping with more entries shows the first ones and a link
_OPEN_DEPTH = 2  # levels unfolded when the payload is first shown


def get_path(value: Any, path: str) -> Any:
    """The value at a dotted path (``a.0.b``); KeyError when the path is not in the payload."""
    for part in (p for p in path.split(".") if p):
        if isinstance(value, Mapping) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.lstrip("-").isdigit() and -len(value) <= int(part) < len(value):
            value = value[int(part)]
        else:
            raise KeyError(path)
    return value


def size_text(n: int) -> str:
    for unit in ("bytes", "KB", "MB"):
        if n < 1024 or unit == "MB":
            return f"{n} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return f"{n} bytes"


class PayloadView:
    """Renders one span field's payload; ``base`` is the span's URL the whole-value links hang off."""

    def __init__(self, base: str, field: str) -> None:
        self.base = base
        self.field = field

    def link(self, path: str, kind: str = "text") -> str:
        return f"{self.base}/{kind}?{urlencode({'field': self.field, 'path': path})}"

    def render(self, value: Any) -> Markup:
        if isinstance(value, Mapping) and "truncated_json_bytes" in value and "head" in value:
            note = Markup('<p class="warn">The trace writer kept the first {} of this {} payload (its bound '
                          'on one payload); the head follows.</p>').format(
                size_text(len(str(value["head"]).encode())), size_text(int(value["truncated_json_bytes"])))
            return note + self._value(value["head"], "head", 0)
        return self._value(value, "", 0)

    def render_at(self, value: Any, path: str) -> Markup:
        """``value`` found at ``path`` in the payload (so its links point into the whole payload)."""
        return self._value(value, path, 1)

    def text(self, value: str, path: str) -> Markup:
        """A string in a <pre>: its head and a link to the whole when it is long."""
        if len(value) <= SHOW_CHARS:
            return Markup('<pre class="val">{}</pre>').format(value)
        return Markup('<pre class="val">{}</pre><p class="cut">showing {} of {} characters · '
                      '<a class="whole" href="{}" data-lazy="text">show the whole ({})</a></p>').format(
            value[:SHOW_CHARS], SHOW_CHARS, len(value), self.link(path), size_text(len(value.encode())))

    def _value(self, value: Any, path: str, depth: int) -> Markup:
        if isinstance(value, str):
            if len(value) <= 80 and "\n" not in value:  # names, ids, short values: inline
                return Markup('<code class="val">{}</code>').format(value)
            return self.text(value, path)
        if isinstance(value, Mapping):
            items = list(value.items())
            label = f"{{{len(items)} keys}}"
        elif isinstance(value, list):
            items = list(enumerate(value))
            label = f"[{len(items)} items]"
        else:
            return Markup('<code class="val">{}</code>').format(orjson.dumps(value).decode())
        if not items:
            return Markup('<code class="val">{}</code>').format("{}" if isinstance(value, Mapping) else "[]")
        rows = [Markup('<li><span class="key">{}</span> {}</li>').format(
                    k, self._value(v, f"{path}.{k}" if path else str(k), depth + 1))
                for k, v in items[:SHOW_ITEMS]]
        if len(items) > SHOW_ITEMS:
            rows.append(Markup('<li class="cut">{} more · <a href="{}">all of it as JSON</a></li>').format(
                len(items) - SHOW_ITEMS, self.link(path, "raw")))
        opened = " open" if depth < _OPEN_DEPTH else ""
        return Markup('<details class="tree"{}><summary>{}</summary><ul>{}</ul></details>').format(
            Markup(opened), label, Markup("").join(rows))


def pretty_json(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS, default=repr).decode()
