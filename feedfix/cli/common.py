"""What the commands share: exit codes, usage errors, warnings, option values and atomic
output files. Light to import: ``main`` loads it at every start."""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Iterable
from datetime import UTC, timedelta, timezone, tzinfo
from pathlib import Path

from feedfix.core.errors import ConfigError, FeedfixError
from feedfix.files.temporary import create_beside

EXIT_OK, EXIT_INTERNAL, EXIT_INPUT = 0, 1, 2


class UsageError(FeedfixError):
    """A bad command line (reported like argparse's own errors, exit 2)."""


def timezone_option(value: str) -> tzinfo:
    """``--timezone``: a zone name, UTC, or an offset such as ``+08:00``."""
    text = value.strip()
    if text.upper() in {"UTC", "Z", "GMT"}:
        return UTC
    sign = {"+": 1, "-": -1}.get(text[:1])
    if sign and len(text) in (3, 5, 6) and text[1:3].isdigit():
        hours, minutes = int(text[1:3]), int(text[-2:]) if len(text) > 3 else 0
        return timezone(sign * timedelta(hours=hours, minutes=minutes))
    try:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError  # noqa: PLC0415

        return ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise UsageError(
            f"--timezone: unknown zone {value!r} (use a name like Asia/Shanghai or +08:00)"
        ) from exc


def size_option(value: str) -> int:
    """``--max-size``: bytes, or a size such as ``500KB``."""
    from feedfix.core.sizes import parse_size  # noqa: PLC0415

    try:
        return parse_size(int(value) if value.isdigit() else value, "--max-size")
    except ConfigError as exc:
        raise UsageError(str(exc)) from exc


def warn(message: str) -> None:
    """One warning line on stderr."""
    print(f"feedfix: warning: {message}", file=sys.stderr)


def write_output(chunks: Iterable[bytes], output: str | None) -> None:
    """Write as the chunks come; a file is replaced atomically, never left half-written."""
    if output is None or output == "-":
        for chunk in chunks:
            sys.stdout.buffer.write(chunk)
        sys.stdout.buffer.flush()
        return
    target = Path(output)
    try:
        fd, tmp = create_beside(target, 0o600)
    except OSError as exc:
        raise UsageError(f"cannot write {output}: {exc.strerror or exc}") from exc
    try:
        # made 0600; the result gets the mode any new file would (or keeps the one it
        # had), so a web server can still read a feed a cron job rewrites.
        os.fchmod(fd, output_mode(target))
        with os.fdopen(fd, "wb") as handle:
            for chunk in chunks:
                handle.write(chunk)
        tmp.replace(target)
    except OSError as exc:
        raise UsageError(f"cannot write {output}: {exc.strerror or exc}") from exc
    finally:
        tmp.unlink(missing_ok=True)


def output_mode(target: Path) -> int:
    """The mode the output file gets: the existing file's, else 0666 less the umask."""
    try:
        return stat.S_IMODE(target.stat().st_mode)
    except FileNotFoundError:
        umask = os.umask(0o022)  # reading the umask means setting it; put it straight back
        os.umask(umask)
        return 0o666 & ~umask
