"""Write the golden outputs: every golden case (``*.expected.json``: a fixture and its
arguments) converted by ``feedfix convert --format`` to Atom, RSS and JSON Feed, into
``formats/``. Run once when the output is meant to change (``python
tests/data/golden/make_formats.py``), then read the diff of every file it changed before
committing it: tests/core/test_format_golden.py compares the output with these byte for byte.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE.parent
SUFFIXES = {"atom": ".atom.xml", "rss": ".rss.xml", "json": ".json"}


def cases() -> list[tuple[str, Path, list[str]]]:
    """Each golden case: its name, its fixture and the arguments it is converted with."""
    found = []
    for path in sorted(HERE.glob("*.expected.json")):
        golden = json.loads(path.read_text(encoding="utf-8"))
        name = path.name.removesuffix(".expected.json")
        found.append((name, DATA / golden["fixture"], list(golden.get("args", []))))
    return found


def convert(fixture: Path, args: list[str], fmt: str) -> bytes:
    """``feedfix convert FIXTURE ARGS --format FMT``, run in this process."""
    from feedfix.cli import main  # noqa: PLC0415

    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "out"
        status = main(["convert", str(fixture), *args, "--format", fmt, "-o", str(out)])
        if status != 0:
            raise SystemExit(f"{fixture}: convert --format {fmt} exited {status}")
        return out.read_bytes()


def main() -> int:
    """Write every case in every format; say which files changed."""
    for name, fixture, args in cases():
        for fmt, suffix in SUFFIXES.items():
            target = HERE / "formats" / f"{name}{suffix}"
            data = convert(fixture, args, fmt)
            if not target.exists() or target.read_bytes() != data:
                target.write_bytes(data)
                print(f"wrote {target.relative_to(DATA.parent.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
