"""Span trees as OpenTelemetry spans (OTLP protobuf messages) under the GenAI semantic conventions.

One ``ExportTraceServiceRequest`` per run, written as one JSON line in the OTLP/JSON encoding (what
the Collector's file exporter writes and its ``otlpjsonfile`` receiver, Langfuse and Phoenix read):
protobuf's JSON mapping with lowerCamelCase names and integer enums, except that trace and span ids
are hex strings, as OTLP/JSON requires (protobuf would write base64).

Ids are derived from ours, so exporting twice gives the same spans: a trace id is the root's uuid
(16 bytes), a span id the first 8 bytes of BLAKE2b over the span's uuid.

Conventions followed (GenAI semconv, development status; attribute names from the official
``opentelemetry-semantic-conventions`` package): the root is ``invoke_workflow {name}``; an LLM call
``chat {model}`` (kind CLIENT) with ``gen_ai.operation.name``, ``gen_ai.provider.name``,
``gen_ai.request.*``, ``gen_ai.response.*`` and ``gen_ai.usage.input_tokens``/``output_tokens``;
tools ``execute_tool``, retrievers ``retrieval``. Message content (``gen_ai.input.messages``,
``gen_ai.output.messages``, as JSON strings) and the graph's own inputs/outputs are opt-in:
``include_content``.
"""

from __future__ import annotations

import base64
import hashlib
import uuid
from collections.abc import Mapping
from typing import Any

import orjson
from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, InstrumentationScope, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Status
from opentelemetry.proto.trace.v1.trace_pb2 import Span as PbSpan
from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as gen_ai
from opentelemetry.semconv.attributes import error_attributes, service_attributes

from codestill.traces._models import Span, SpanTree

SCOPE = "codestill.traces"
_ROLES = {"human": "user", "ai": "assistant", "system": "system", "tool": "tool", "user": "user",
          "assistant": "assistant"}
_ID_FIELDS = ("traceId", "spanId", "parentSpanId")


def trace_id(span: Span) -> bytes:
    return uuid.UUID(span.trace_id).bytes


def span_id(sid: str) -> bytes:
    return hashlib.blake2b(uuid.UUID(sid).bytes, digest_size=8).digest()


def _value(v: Any) -> AnyValue:
    if isinstance(v, bool):
        return AnyValue(bool_value=v)
    if isinstance(v, int):
        return AnyValue(int_value=v)
    if isinstance(v, float):
        return AnyValue(double_value=v)
    if isinstance(v, list | tuple):
        return AnyValue(array_value=ArrayValue(values=[_value(x) for x in v]))
    return AnyValue(string_value=v if isinstance(v, str) else orjson.dumps(v).decode())


def _attrs(values: Mapping[str, Any]) -> list[KeyValue]:
    return [KeyValue(key=k, value=_value(v)) for k, v in values.items() if v is not None]


def _nanos(span: Span) -> tuple[int, int]:
    start = round(span.start.timestamp() * 1e9)
    end = start if span.end is None else round(span.end.timestamp() * 1e9)
    return start, end


def _parts(message: Mapping[str, Any]) -> list[dict[str, Any]]:
    content = message.get("content")
    parts: list[dict[str, Any]] = []
    if isinstance(content, str) and content:
        parts.append({"type": "text", "content": content})
    elif isinstance(content, list):
        parts += [{"type": "text", "content": b if isinstance(b, str) else b.get("text", orjson.dumps(b).decode())}
                  for b in content if isinstance(b, str | dict)]
    for call in message.get("tool_calls") or []:
        parts.append({"type": "tool_call", "id": call.get("id"), "name": call.get("name"),
                      "arguments": call.get("args")})
    if message.get("role") == "tool":
        parts = [{"type": "tool_call_response", "id": message.get("tool_call_id"), "result": content}]
    return parts


def input_messages(span: Span) -> list[dict[str, Any]]:
    """An LLM span's request in the conventions' ``gen_ai.input.messages`` shape."""
    inputs = span.inputs if isinstance(span.inputs, dict) else {}
    if inputs.get("prompts"):
        return [{"role": "user", "parts": [{"type": "text", "content": p}]} for p in inputs["prompts"]]
    batch = (inputs.get("messages") or [[]])[0]
    return [{"role": _ROLES.get(str(m.get("role")), str(m.get("role"))), "parts": _parts(m)} for m in batch]


def _generations(span: Span) -> list[Mapping[str, Any]]:
    outputs = span.outputs if isinstance(span.outputs, dict) else {}
    return [g for g in outputs.get("generations") or [] if isinstance(g, dict)]


def _finish(g: Mapping[str, Any]) -> str | None:
    reason = (g.get("response_metadata") or {}).get("finish_reason")
    return str(reason) if reason else None


def output_messages(span: Span) -> list[dict[str, Any]]:
    """An LLM span's reply in the conventions' ``gen_ai.output.messages`` shape."""
    out = []
    for g in _generations(span):
        parts = _parts({"content": g.get("content", g.get("text")), "tool_calls": g.get("tool_calls")})
        out.append({"role": "assistant", "parts": parts, "finish_reason": _finish(g) or "stop"})
    return out


def _llm(span: Span, extra: Mapping[str, Any], include_content: bool) -> tuple[str, dict[str, Any]]:
    meta, params = extra.get("metadata") or {}, extra.get("params") or {}
    operation = "text_completion" if isinstance(span.inputs, dict) and span.inputs.get("prompts") else "chat"
    requested = params.get("model") or params.get("model_name") or meta.get("ls_model_name") or span.model
    gens = _generations(span)
    finish = [r for g in gens if (r := _finish(g))]
    response_id = next(((g.get("response_metadata") or {}).get("id") for g in gens), None)
    attrs: dict[str, Any] = {
        gen_ai.GEN_AI_OPERATION_NAME: operation,
        gen_ai.GEN_AI_PROVIDER_NAME: meta.get("ls_provider") or "langchain",
        gen_ai.GEN_AI_REQUEST_MODEL: requested, gen_ai.GEN_AI_RESPONSE_MODEL: span.model,
        gen_ai.GEN_AI_REQUEST_TEMPERATURE: params.get("temperature"),
        gen_ai.GEN_AI_REQUEST_MAX_TOKENS: params.get("max_tokens") or params.get("max_completion_tokens"),
        gen_ai.GEN_AI_REQUEST_TOP_P: params.get("top_p"), gen_ai.GEN_AI_REQUEST_SEED: params.get("seed"),
        gen_ai.GEN_AI_USAGE_INPUT_TOKENS: span.prompt_tokens,
        gen_ai.GEN_AI_USAGE_OUTPUT_TOKENS: span.completion_tokens,
        gen_ai.GEN_AI_RESPONSE_FINISH_REASONS: finish or None,
        gen_ai.GEN_AI_RESPONSE_ID: response_id if isinstance(response_id, str) else None,
    }
    if include_content:
        attrs[gen_ai.GEN_AI_INPUT_MESSAGES] = orjson.dumps(input_messages(span)).decode()
        attrs[gen_ai.GEN_AI_OUTPUT_MESSAGES] = orjson.dumps(output_messages(span)).decode()
    return f"{operation} {requested}" if requested else operation, attrs


def _pb_span(span: Span, include_content: bool) -> PbSpan:
    extra = span.extra or {}
    meta = extra.get("metadata") or {}
    attrs: dict[str, Any] = {"codestill.span.kind": span.kind, "codestill.node": span.node,
                             "codestill.task_id": span.task_id, "codestill.verdict": span.verdict,
                             gen_ai.GEN_AI_CONVERSATION_ID: meta.get("thread_id")}
    name, kind = span.name, PbSpan.SPAN_KIND_INTERNAL
    if span.kind == "llm":
        name, llm_attrs = _llm(span, extra, include_content)
        attrs.update(llm_attrs)
        kind = PbSpan.SPAN_KIND_CLIENT
    elif span.kind == "graph":
        name = f"invoke_workflow {span.name}"
        attrs.update({gen_ai.GEN_AI_OPERATION_NAME: "invoke_workflow", gen_ai.GEN_AI_WORKFLOW_NAME: span.name})
    elif span.kind == "tool":
        name = f"execute_tool {span.name}"
        attrs.update({gen_ai.GEN_AI_OPERATION_NAME: "execute_tool", gen_ai.GEN_AI_TOOL_NAME: span.name})
    elif span.kind == "retriever":
        name = f"retrieval {span.name}"
        attrs[gen_ai.GEN_AI_OPERATION_NAME] = "retrieval"
    if include_content and span.kind != "llm":
        attrs["codestill.inputs"] = None if span.inputs is None else orjson.dumps(span.inputs).decode()
        attrs["codestill.outputs"] = None if span.outputs is None else orjson.dumps(span.outputs).decode()
    status = Status()
    if span.status == "error":
        status = Status(code=Status.STATUS_CODE_ERROR, message=span.error or "")
        attrs[error_attributes.ERROR_TYPE] = (span.error or "error").split(":", 1)[0]
    elif span.status != "ok":  # running / unfinished: no end recorded, the span is shown zero-length
        attrs["codestill.status"] = span.status
    start, end = _nanos(span)
    return PbSpan(trace_id=trace_id(span), span_id=span_id(span.id),
                  parent_span_id=span_id(span.parent_id) if span.parent_id else b"", name=name, kind=kind,
                  start_time_unix_nano=start, end_time_unix_nano=end, attributes=_attrs(attrs), status=status)


def request(tree: SpanTree, *, include_content: bool = False, version: str = "") -> ExportTraceServiceRequest:
    """One run as an OTLP export request: one resource (service ``codestill``), one scope, all its spans."""
    spans = [_pb_span(s, include_content) for s in tree.walk()]
    resource = Resource(attributes=_attrs({service_attributes.SERVICE_NAME: "codestill",
                                           "codestill.run_id": tree.root.id}))
    scope = ScopeSpans(scope=InstrumentationScope(name=SCOPE, version=version), spans=spans)
    return ExportTraceServiceRequest(resource_spans=[ResourceSpans(resource=resource, scope_spans=[scope])])


def _map_ids(obj: dict[str, Any], convert: Any) -> dict[str, Any]:
    for rs in obj.get("resourceSpans", []):
        for ss in rs.get("scopeSpans", []):
            for sp in ss.get("spans", []):
                for f in _ID_FIELDS:
                    if sp.get(f):
                        sp[f] = convert(sp[f])
    return obj


def to_json(req: ExportTraceServiceRequest) -> str:
    """OTLP/JSON on one line: integer enums, hex trace and span ids."""
    obj = json_format.MessageToDict(req, use_integers_for_enums=True)
    return orjson.dumps(_map_ids(obj, lambda b64: base64.b64decode(b64).hex())).decode()


def from_json(line: str) -> ExportTraceServiceRequest:
    """The inverse of ``to_json``: one OTLP/JSON line back to the protobuf message."""
    obj = _map_ids(orjson.loads(line), lambda hexed: base64.b64encode(bytes.fromhex(hexed)).decode())
    return json_format.ParseDict(obj, ExportTraceServiceRequest())
