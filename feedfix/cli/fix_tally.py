"""What a ``fix-posts`` run did, for its summary, ``--explain`` and its exit status."""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

from feedfix.cli.image_refs import SAVE
from feedfix.cli.mend_runner import Outcome
from feedfix.core.mend import JUNK, LAZY, UNWRAP

UNITS = {
    UNWRAP: "URLs unwrapped",
    LAZY: "lazy images fixed",
    JUNK: "junk elements removed",
    SAVE: "image URLs pointed home",
}


def say(message: str) -> None:
    """One line on stderr."""
    print(f"feedfix: {message}", file=sys.stderr)


@dataclass
class Tally:
    """What happened to the files, for the summary and ``--explain``."""

    files: int = 0
    changed: int = 0
    unchanged: int = 0
    skipped: int = 0
    failed: int = 0
    changes: Counter[str] = field(default_factory=Counter)
    files_by_rule: Counter[str] = field(default_factory=Counter)
    images: ImageTally | None = None  # with --save-images

    def summary(self, rules: tuple[str, ...]) -> str:
        """``1,234 files, 9,876 URLs unwrapped in 1,200 files; 34 files unchanged``."""
        parts = [f"{self.files:,} {_files(self.files)}"]
        for name in rules:
            count, files = self.changes[name], self.files_by_rule[name]
            parts.append(f"{count:,} {UNITS[name]} in {files:,} {_files(files)}")
        tail = [f"{self.unchanged:,} {_files(self.unchanged)} unchanged"]
        if self.skipped:
            tail.append(f"{self.skipped:,} skipped (not posts)")
        if self.failed:
            tail.append(f"{self.failed:,} failed")
        if self.images is not None:
            tail.append(self.images.summary())
        return ", ".join(parts) + "; " + "; ".join(tail)

    def as_json(self, rules: tuple[str, ...], *, written: bool) -> str:
        """The counts as one JSON object."""
        data: Mapping[str, object] = {
            "files": self.files,
            "changed": self.changed,
            "unchanged": self.unchanged,
            "skipped": self.skipped,
            "failed": self.failed,
            "written": written,
            "rules": {
                n: {"changes": self.changes[n], "files": self.files_by_rule[n]} for n in rules
            },
        }
        if self.images is not None:
            data = {**data, "images": self.images.as_dict()}
        return json.dumps(data)


def _files(count: int) -> str:
    return "file" if count == 1 else "files"


@dataclass
class ImageTally:
    """``--save-images``: images saved, found already on disk, failed (the message for each
    URL, the count for each reason), the bytes saved; ``to_download``: what a dry run would
    fetch."""

    saved: int = 0
    present: int = 0
    bytes: int = 0
    failed: dict[str, str] = field(default_factory=dict)
    reasons: Counter[str] = field(default_factory=Counter)
    to_download: dict[str, None] = field(default_factory=dict)  # ordered, each URL once

    def fail(self, url: str, reason: str, message: str) -> None:
        """Count one image that could not be saved."""
        self.failed[url] = message
        self.reasons[reason] += 1

    def summary(self) -> str:
        """``images: 12 saved (3.4 MB), 80 already present, 2 failed (2 HTTP 404)``."""
        parts = [
            f"images: {self.saved:,} saved ({size_text(self.bytes)})",
            f"{self.present:,} already present",
        ]
        if self.to_download:
            parts.append(f"{len(self.to_download):,} to download")
        if self.failed:
            reasons = ", ".join(f"{n:,} {r}" for r, n in self.reasons.most_common())
            parts.append(f"{len(self.failed):,} failed ({reasons})")
        return ", ".join(parts)

    def as_dict(self) -> dict[str, object]:
        """The counts for ``--explain=json``."""
        return {
            "saved": self.saved,
            "present": self.present,
            "failed": len(self.failed),
            "failed_by_reason": dict(self.reasons),
            "bytes": self.bytes,
            "to_download": len(self.to_download),
        }


def size_text(count: int) -> str:
    """A byte count for people: ``12.3 KB``, ``4.5 MB``."""
    if count < 1_000_000:
        return f"{count / 1000:,.1f} KB"
    return f"{count / 1e6:,.1f} MB"


def count(outcome: Outcome, tally: Tally) -> bool:
    """Add one file's outcome to the tally (reporting a failure); True when it changes."""
    if tally.images is not None:
        tally.images.present += outcome.present
        tally.images.to_download.update(dict.fromkeys(outcome.missing))  # (a dry run's)
    if outcome.status == "failed":
        tally.failed += 1
        say(f"{outcome.path}: {outcome.message}")
    elif outcome.status == "skipped":
        tally.skipped += 1
    elif outcome.status == "unchanged":
        tally.unchanged += 1
    else:
        tally.changed += 1
        for name, count in outcome.counts:
            tally.changes[name] += count
            tally.files_by_rule[name] += 1
        return True
    return False
