"""Structured per-session traces: the API in one place, and the reader (``python -m pypptp.trace FILE``).

Attach a tracer to the sans-IO objects (they call it only when one is set)::

    link = PppLink(config, tracer=MemoryTracer())          # or link.tracer = ...
    conn = ControlConnection(role, now, tracer=control_tracer(tracer))
    session = await PptpClientSession.connect(host, user=..., password=..., trace="client.jsonl")

or run the daemon with ``--trace DIR``.  The format is described in
:mod:`pypptp.ppp.trace` (events) and :mod:`pypptp.aio.trace` (the file);
:mod:`pypptp.trace.reader` prints a trace as pppd's debug lines.
"""

from __future__ import annotations

from pypptp.aio.trace import GreTraceWatch, JsonLinesTracer, control_tracer
from pypptp.ppp.trace import MemoryTracer, TraceEvent, Tracer
from pypptp.trace.reader import format_event, format_trace, read_trace

__all__ = [
    "GreTraceWatch",
    "JsonLinesTracer",
    "MemoryTracer",
    "TraceEvent",
    "Tracer",
    "control_tracer",
    "format_event",
    "format_trace",
    "read_trace",
]
