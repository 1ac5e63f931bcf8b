"""Reading /metrics with prometheus-client's own parser of the text format."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families


@dataclass
class Metrics:
    # Family name (a counter's without `_total`, as the parser names it) to its type.
    types: dict[str, str] = field(default_factory=dict)
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float] = field(default_factory=dict)

    def get(self, name: str, **labels: str) -> float | None:
        return self.samples.get((name, frozenset(labels.items())))

    def series(self, name: str) -> dict[frozenset[tuple[str, str]], float]:
        return {labels: value for (n, labels), value in self.samples.items() if n == name}


def parse(text: str) -> Metrics:
    """Every sample of the exposition; fails on what the parser rejects, or on a family or a
    sample given twice."""
    metrics = Metrics()
    assert text.endswith("\n"), "the exposition must end with a newline"
    for family in text_string_to_metric_families(text):
        assert family.name not in metrics.types, f"family given twice: {family.name}"
        metrics.types[family.name] = family.type
        for sample in family.samples:
            key = (sample.name, frozenset(sample.labels.items()))
            assert key not in metrics.samples, f"duplicate sample: {sample}"
            metrics.samples[key] = sample.value
    return metrics
