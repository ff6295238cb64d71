"""Is the time-ordered hold-out honest for these labels, and the split to use when it is not.

Every model is tested on the latest fifth of its rows (`tabular.time_ordered_split`, the text
dataset's `split`): the future it has not seen. That is only right when the rows' order is
time. A file exported sorted by its label (all `card_arrival` intents, then all
`card_linking` …) has an order, but not a time order: its latest fifth holds labels training
never saw, and the model is scored on classes it cannot predict.

`label_order` looks at the labels in time order and says when they are grouped — far fewer
runs of the same label than a mixed order gives, or a test fifth whose labels are mostly unseen
in training — in words a report can show (`LabelOrder.warning`). `stratified_split` is the
alternative for data whose order is not time: every label keeps its share in training and test,
the rows drawn at random with a fixed seed (the same rows always give the same split).

Pure Python: the import (`opsloop import`, with the file's labels in time order) and training
(with the dataset's) both call it.
"""

from __future__ import annotations

import math
import random
from collections import Counter, defaultdict
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

SplitKind = Literal["time", "stratified"]
SPLITS: tuple[SplitKind, ...] = ("time", "stratified")

TEST_SHARE = 0.2
MIN_ROWS = 20
"""Fewer labelled rows than this say nothing about their order."""
FEW_RUNS = 0.25
"""Grouped when the runs of equal labels are fewer than this share of a mixed order's."""
MOSTLY_UNSEEN = 0.5
"""Grouped when at least this share of the test rows have a label training never saw."""
STRATIFIED_SEED = 0


@dataclass(frozen=True, slots=True)
class LabelOrder:
    """How the labels fall in time order, and what that means for a time-ordered hold-out."""

    rows: int
    labels: int
    runs: int
    """Stretches of consecutive rows with the same label."""
    expected_runs: float
    """About how many runs the same labels would make in a mixed (random) order."""
    test_rows: int
    unseen_test_rows: int
    """Test rows (the latest fifth) whose label no training row has."""
    unseen_labels: tuple[str, ...]

    @property
    def grouped(self) -> bool:
        if self.rows < MIN_ROWS or self.labels < 2:
            return False
        few_runs = self.runs < FEW_RUNS * self.expected_runs
        unseen = self.test_rows > 0 and self.unseen_test_rows >= MOSTLY_UNSEEN * self.test_rows
        return few_runs or unseen

    @property
    def warning(self) -> str | None:
        """What a person should know, in words; None when the order looks like time."""
        if not self.grouped:
            return None
        parts = [
            f"the labels come grouped in time order: {self.runs:,} runs of one label over "
            f"{self.rows:,} rows, where a mixed order gives about {round(self.expected_runs):,}"
        ]
        if self.unseen_labels:
            shown = ", ".join(self.unseen_labels[:5])
            more = f" and {len(self.unseen_labels) - 5} more" if len(self.unseen_labels) > 5 else ""
            parts.append(
                f"the latest fifth (the test rows) holds {len(self.unseen_labels)} labels "
                f"training never saw ({shown}{more}; {self.unseen_test_rows:,} of "
                f"{self.test_rows:,} test rows)"
            )
        return (
            "; ".join(parts)
            + ". The rows are most likely sorted by label, not by time: if their order is not "
            "time, train with --split stratified (every label in training and test)"
        )


def label_order(labels: Sequence[Hashable], *, test_share: float = TEST_SHARE) -> LabelOrder:
    """Check `labels`, given oldest first, against the time-ordered hold-out of `test_share`."""
    n = len(labels)
    counts = Counter(labels)
    runs = sum(1 for i in range(n) if i == 0 or labels[i] != labels[i - 1])
    # Runs in a random order of the same labels: 1 + (n - 1) · P(two neighbours differ).
    differ = 1 - sum(c * (c - 1) for c in counts.values()) / (n * (n - 1)) if n > 1 else 0.0
    expected = 1 + (n - 1) * differ if n else 0.0
    cut = n - max(1, math.ceil(n * test_share)) if n else 0
    seen = set(labels[:cut])
    test = labels[cut:]
    unseen = [label for label in test if label not in seen]
    return LabelOrder(
        rows=n,
        labels=len(counts),
        runs=runs,
        expected_runs=expected,
        test_rows=len(test),
        unseen_test_rows=len(unseen),
        unseen_labels=tuple(str(label) for label in dict.fromkeys(unseen)),
    )


def label_order_warning(labels: Sequence[Hashable]) -> str | None:
    """`label_order(labels).warning`: for reports and the import's summary."""
    return label_order(labels).warning


@dataclass(frozen=True, slots=True)
class StratifiedSplit:
    train: list[int]
    """Training positions, shuffled (a validation slice cut from its end is a random one)."""
    test: list[int]
    """Held-out positions, in the given order."""


def stratified_split(
    labels: Sequence[Hashable], *, test_share: float = TEST_SHARE, seed: int = STRATIFIED_SEED
) -> StratifiedSplit:
    """Hold out `test_share` of each label's rows, drawn at random with `seed`: the same
    labels always give the same split. A label with one row stays in training; at least one
    row is held out."""
    if not 0 < test_share < 1:
        raise ValueError("test_share must be between 0 and 1")
    by_label: dict[Hashable, list[int]] = defaultdict(list)
    for position, label in enumerate(labels):
        by_label[label].append(position)
    draw = random.Random(seed)
    test: list[int] = []
    for positions in by_label.values():
        chosen = positions[:]
        draw.shuffle(chosen)
        take = round(len(chosen) * test_share) if len(chosen) > 1 else 0
        test.extend(chosen[:take])
    if not test and len(labels) > 1:
        test.append(draw.randrange(len(labels)))
    held = set(test)
    train = [position for position in range(len(labels)) if position not in held]
    draw.shuffle(train)
    return StratifiedSplit(train=train, test=sorted(test))


def split_of(version: Mapping[str, Any] | None) -> SplitKind:
    """The split a stored model version was trained with (`training.split`; `time` before
    there was a choice)."""
    training = (version or {}).get("training") or {}
    return "stratified" if training.get("split") == "stratified" else "time"


def chosen_split(asked: SplitKind | None, latest: Mapping[str, Any] | None) -> SplitKind:
    """The split asked for; else the one the model's latest version was trained with, so a
    scheduled retrain keeps the choice a person made; else `time`."""
    return asked if asked is not None else split_of(latest)
