"""Injected faults, deterministic for a seed, different on each retry.

A request's roll is keyed on (seed, sha256 of its canonical body, how many times that exact body
was seen before). The same run of requests against a fresh server with the same seed gets the same
faults; a client that retries an identical request rolls again, so at a fault rate below 1 it
eventually gets through, as it would with a real, flaky server.

    429       status 429, OpenAI error body, headers retry-after-ms and Retry-After
    500       status 500, OpenAI error body
    hang      no answer: the request is held (up to hang_s) until the client gives up
    bad_json  the JSON (tool arguments, JSON content, the prose's fenced block) is cut so it does not parse
    truncate  the reply is cut at about half, finish_reason "length"
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict

import orjson

from codestill.sim._config import SimConfig

SEEN_CAP = 100_000  # bodies remembered (~20 MB at most); the oldest are forgotten, so memory stays bounded


def body_digest(body: object) -> str:
    """sha256 of the body with sorted keys: the same request however a client orders its JSON."""
    return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()


class FaultDice:
    """Per-app state: the count of each body seen. Used only from the event loop thread."""

    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self._seen: OrderedDict[str, int] = OrderedDict()

    def occurrence(self, digest: str) -> int:
        """How many times this body was seen before now (and count this time); 0 without faults."""
        if self.config.fault_rate <= 0:
            return 0  # nothing to roll, so nothing to remember
        n = self._seen.pop(digest, 0)
        self._seen[digest] = n + 1
        if len(self._seen) > SEEN_CAP:
            self._seen.popitem(last=False)
        return n

    def roll(self, digest: str, occurrence: int) -> str | None:
        """The fault for this request, or None."""
        if self.config.fault_rate <= 0:
            return None
        h = hashlib.sha256(f"{self.config.seed}|{digest}|{occurrence}".encode()).digest()
        if int.from_bytes(h[:8], "big") / 2.0**64 >= self.config.fault_rate:
            return None
        return self.config.faults[int.from_bytes(h[8:16], "big") % len(self.config.faults)]
