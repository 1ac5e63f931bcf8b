"""A strict reader of Prometheus' text format, so that tests read /metrics as Prometheus does."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

LABEL_NAME = r"[a-zA-Z_][a-zA-Z0-9_]*"
LABEL_VALUE = r'"(?:[^"\\\n]|\\.)*"'
PAIR = rf"{LABEL_NAME}={LABEL_VALUE}"
SAMPLE = re.compile(
    r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)"
    rf"(?:\{{(?P<labels>{PAIR}(?:,{PAIR})*)\}})?"
    r" (?P<value>\S+)$"
)
LABEL = re.compile(rf"({LABEL_NAME})=({LABEL_VALUE})")
TYPES = {"counter", "gauge", "histogram", "summary", "untyped"}


@dataclass
class Metrics:
    types: dict[str, str] = field(default_factory=dict)
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float] = field(default_factory=dict)

    def get(self, name: str, **labels: str) -> float | None:
        return self.samples.get((name, frozenset(labels.items())))

    def series(self, name: str) -> dict[frozenset[tuple[str, str]], float]:
        return {labels: value for (n, labels), value in self.samples.items() if n == name}


def unescape(value: str) -> str:
    return re.sub(r"\\(.)", lambda m: "\n" if m[1] == "n" else m[1], value)


def parse(text: str) -> Metrics:
    """Every sample of the exposition; fails on a line Prometheus would reject."""
    metrics = Metrics()
    assert text.endswith("\n"), "the exposition must end with a newline"
    for line in text.splitlines():
        if line.startswith("# HELP "):
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            assert kind in TYPES, line
            assert name not in metrics.types, f"TYPE given twice for {name}"
            metrics.types[name] = kind
            continue
        match = SAMPLE.match(line)
        assert match, f"not a sample line: {line!r}"
        labels = frozenset(
            (key, unescape(quoted[1:-1])) for key, quoted in LABEL.findall(match["labels"] or "")
        )
        value = match["value"]
        number = math.inf if value == "+Inf" else float(value)
        key = (match["name"], labels)
        assert key not in metrics.samples, f"duplicate sample: {line!r}"
        family = re.sub(r"_(bucket|sum|count)$", "", match["name"])
        assert match["name"] in metrics.types or family in metrics.types, (
            f"sample before its TYPE: {line!r}"
        )
        metrics.samples[key] = number
    return metrics
