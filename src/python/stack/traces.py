"""`./run traces [TRACE_ID]`: the traces the local stack wrote to `.state/traces`.

Without an id: the latest traces, newest first, each with its first span (what started
it: a click's API call, a request), the services it crossed and its span count. With
an id (or its first characters): that trace as a tree, each span with its service,
its start relative to the trace's and its duration.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

Span = dict[str, Any]


def read_spans(traces_dir: Path) -> list[Span]:
    """Every span in the directory's trace files, `<service>.jsonl` and the older
    `<service>.jsonl.1` (a line cut short by a process killed mid-write is skipped)."""
    spans = []
    for path in sorted([*traces_dir.glob("*.jsonl"), *traces_dir.glob("*.jsonl.1")]):
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                spans.append(json.loads(line))
            except ValueError:
                continue
    return spans


def by_trace(spans: Iterable[Span]) -> dict[str, list[Span]]:
    traces: dict[str, list[Span]] = defaultdict(list)
    for span in spans:
        traces[span["trace_id"]].append(span)
    for members in traces.values():
        members.sort(key=lambda span: span["start"])
    return traces


def summary(traces: dict[str, list[Span]], limit: int = 15) -> str:
    newest = sorted(traces.items(), key=lambda item: item[1][0]["start"], reverse=True)
    lines = []
    for trace_id, spans in newest[:limit]:
        first = spans[0]
        services = ",".join(dict.fromkeys(span["service"] for span in spans))
        lines.append(
            f"{trace_id}  {first['start'][11:23]}  {len(spans):3d} spans  "
            f"{first['service']}: {first['name']}  [{services}]"
        )
    return "\n".join(lines) if lines else "no traces yet"


def tree(spans: list[Span]) -> str:
    """One line per span, children under their parent, in start order. A span whose
    parent is not in the files (a caller outside the stack) is shown as a root."""
    ids = {span["span_id"] for span in spans}
    children: dict[str | None, list[Span]] = defaultdict(list)
    for span in spans:
        parent = span["parent_id"] if span["parent_id"] in ids else None
        children[parent].append(span)
    began = _time(spans[0]["start"])
    lines: list[str] = []

    def show(span: Span, depth: int) -> None:
        offset = (_time(span["start"]) - began).total_seconds() * 1000
        mark = " !" if span["status"] == "ERROR" else ""
        outcome = span["attributes"].get("ticketing.outcome")
        lines.append(
            f"{offset:9.1f} ms {span['duration_ms']:8.1f} ms  {'  ' * depth}"
            f"{span['service']}: {span['name']}{f' ({outcome})' if outcome else ''}{mark}"
        )
        for child in children.get(span["span_id"], []):
            show(child, depth + 1)

    for root in children[None]:
        show(root, 0)
    return "\n".join(lines)


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text)


def show_traces(traces_dir: Path, trace_id: str | None) -> int:
    """Print the summary, or one trace's tree; returns the exit code."""
    traces = by_trace(read_spans(traces_dir)) if traces_dir.is_dir() else {}
    if trace_id is None:
        print(f"traces in {traces_dir} (newest first; ./run traces <id> shows one):")
        print(summary(traces))
        return 0
    matches = [known for known in traces if known.startswith(trace_id.lower())]
    if len(matches) != 1:
        problem = "no trace" if not matches else f"{len(matches)} traces"
        print(f"{problem} with an id starting {trace_id!r} in {traces_dir}")
        return 1
    print(f"trace {matches[0]}  (start offset, duration, service: span)")
    print(tree(traces[matches[0]]))
    return 0
