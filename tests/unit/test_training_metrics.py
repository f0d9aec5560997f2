"""MetricDefinitions over log lines: last numeric value wins, in definition order."""

from __future__ import annotations

from emulator.training.metrics import MetricCollector


def test_final_metrics() -> None:
    metrics = MetricCollector([
        {"Name": "loss", "Regex": r"loss=([0-9.e-]+)"},
        {"Name": "acc", "Regex": r"acc: (\S+)"},
        {"Name": "whole", "Regex": r"[0-9]+(?= items)"},
        {"Name": "broken", "Regex": "(unclosed"},
        {"Name": "silent", "Regex": "never=(.*)"},
    ])
    assert metrics
    for ts, line in enumerate(["loss=0.9", "loss=0.5 acc: n/a", "acc: 0.75", "loss=nan", "12 items", "loss=1e-3"]):
        metrics.feed(float(ts), line)
    assert metrics.final_metrics() == [
        {"MetricName": "loss", "Value": 0.001, "Timestamp": 5.0},
        {"MetricName": "acc", "Value": 0.75, "Timestamp": 2.0},
        {"MetricName": "whole", "Value": 12.0, "Timestamp": 4.0},
    ]
    assert not MetricCollector([])
