"""How a text classifier did on labelled messages it did not train on: the report
opsloop/learning/text.py makes (`evaluate_text`), the service keeps as a dict (`to_dict()`), and
the command line prints again from that dict (`to_text()`), without loading scikit-learn."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class ClassReport:
    label: str
    precision: float
    recall: float
    f1: float
    support: int


@dataclass(frozen=True)
class TextReport:
    """How a text model did on labelled messages it did not train on. `to_dict()` is JSON-ready."""

    method: str
    rows: int
    accuracy: float
    macro_f1: float
    mean_confidence: float
    """Average top-1 probability; close to `accuracy` when probabilities are calibrated."""
    calibration_error: float
    """Expected calibration error of the top-1 probability over ten equal-width bins."""
    per_class: list[ClassReport] = field(default_factory=list)
    accuracy_interval: list[float] = field(default_factory=list)
    """The 95% bootstrap interval of `accuracy`."""
    skill: dict[str, Any] = field(default_factory=dict)
    """Whether `accuracy` shows skill over always answering the most common label
    (opsloop/learning/evidence.py `Skill`): a champion must."""
    warnings: list[str] = field(default_factory=list)
    """What a careful analyst would point out, in words."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_text(self, *, worst: int = 10) -> str:
        interval = (
            f" (95% interval {self.accuracy_interval[0]:.3f}-{self.accuracy_interval[1]:.3f})"
            if self.accuracy_interval
            else ""
        )
        lines = [
            f"method: {self.method}, {self.rows} messages",
            f"accuracy {self.accuracy:.3f}{interval}   macro-F1 {self.macro_f1:.3f}   "
            f"mean confidence {self.mean_confidence:.3f}   "
            f"calibration error {self.calibration_error:.3f}",
            f"weakest {min(worst, len(self.per_class))} intents (F1, precision, recall, support):",
        ]
        for row in sorted(self.per_class, key=lambda r: r.f1)[:worst]:
            lines.append(
                f"  {row.label:<40} {row.f1:.2f}  {row.precision:.2f}  {row.recall:.2f}  "
                f"{row.support}"
            )
        lines += [f"warning: {warning}" for warning in self.warnings]
        return "\n".join(lines)
