"""`./run traces`: the summary of the trace files and one trace as a tree. (Real trace
files from real processes are read the same way in `orders/tracing_test.py`.)"""

import json

from stack.traces import by_trace, read_spans, show_traces, summary, tree

T1, T2 = "a" * 32, "b" * 32


def span(trace_id, span_id, parent_id, name, service, start, **extra):
    return {
        "trace_id": trace_id,
        "span_id": span_id,
        "parent_id": parent_id,
        "name": name,
        "kind": "INTERNAL",
        "service": service,
        "start": f"2026-11-26T20:00:{start:06.3f}+00:00",
        "duration_ms": 1.5,
        "status": extra.pop("status", "UNSET"),
        "attributes": extra,
        "links": [],
    }


SPANS = [
    span(T1, "1" * 16, "f" * 16, "buy ticket", "web", 1.0),  # its parent: not in the files
    span(T1, "2" * 16, "1" * 16, "POST /api/orders", "orders", 1.010),
    span(T1, "3" * 16, "2" * 16, "publish order.created", "orders", 1.020),
    span(
        T1,
        "4" * 16,
        "3" * 16,
        "process order.created",
        "tickets",
        1.030,
        **{"ticketing.outcome": "retried", "status": "ERROR"},
    ),
    span(T2, "5" * 16, None, "POST /api/tickets", "tickets", 5.0),
]


def write(tmp_path, spans):
    traces = tmp_path / "traces"
    traces.mkdir()
    (traces / "orders.jsonl").write_text(
        "".join(json.dumps(s) + "\n" for s in spans[1:3]) + '{"cut short'
    )
    (traces / "others.jsonl.1").write_text(
        "".join(json.dumps(s) + "\n" for s in [spans[0], *spans[3:]])
    )
    return traces


def test_spans_are_read_from_every_file_and_a_cut_short_line_is_skipped(tmp_path):
    spans = read_spans(write(tmp_path, SPANS))
    assert sorted(s["span_id"] for s in spans) == sorted(s["span_id"] for s in SPANS)


def test_the_summary_lists_the_newest_trace_first_with_what_started_it():
    first, second = summary(by_trace(SPANS)).splitlines()
    assert first.startswith(T2) and "1 spans" in first and "tickets: POST /api/tickets" in first
    assert second.startswith(T1) and "4 spans" in second
    assert "web: buy ticket  [web,orders,tickets]" in second


def test_a_trace_is_a_tree_in_start_order_with_offsets_outcomes_and_errors():
    lines = tree(by_trace(SPANS)[T1]).splitlines()
    assert [line.split(" ms  ")[-1] for line in lines] == [
        "web: buy ticket",
        "  orders: POST /api/orders",
        "    orders: publish order.created",
        "      tickets: process order.created (retried) !",
    ]
    assert lines[1].split()[0] == "10.0"  # ms after the trace began
    assert lines[1].split()[2] == "1.5"  # its duration


def test_a_trace_is_found_by_the_start_of_its_id(tmp_path, capsys):
    traces = write(tmp_path, SPANS)
    assert show_traces(traces, "AAAA") == 0
    assert "orders: POST /api/orders" in capsys.readouterr().out
    assert show_traces(traces, "c") == 1
    assert "no trace with an id starting 'c'" in capsys.readouterr().out
    assert show_traces(tmp_path / "none", None) == 0
    assert "no traces yet" in capsys.readouterr().out
