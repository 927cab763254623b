"""Output: text that is always shown literally, tables, and exactly one JSON document."""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from rich.console import Console
from rich.text import Text

# C0 and C1 control characters (except newline and tab), DEL, and the Unicode bidi overrides
# and isolates that can make text display in an order other than the one it is stored in.
_UNSAFE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_C1 = re.compile(r"[\x7f-\x9f\u202a-\u202e\u2066-\u2069]")

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def safe(value: object) -> str:
    """``value`` as text with every control character made visible (``\\x1b``, ``\\u202e``)."""
    text = value if isinstance(value, str) else str(value)
    return _UNSAFE.sub(_escape, text)


def one_line(value: object) -> str:
    """``safe`` text with line breaks and tabs made visible too, for one line of a listing."""
    return safe(value).replace("\n", "\\n").replace("\t", "\\t")


def literal(value: object, style: str = "") -> Text:
    """Record text for the terminal: never interpreted as markup or escape sequences."""
    return Text(safe(value), style=style)


def labelled(label: str, value: object, style: str) -> Text:
    """``label`` in colour (``error:`` red), then ``value`` shown literally."""
    return Text.assemble((label, style), " ", safe(value))


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


@dataclass
class Invocation:
    """What one command has asked of stdout; reset by the CLI's error handler at each start."""

    json: bool = False  # --json was given: a failure is a JSON document too
    emitted: bool = False  # stdout holds its one document already

    def reset(self) -> None:
        self.json = self.emitted = False


invocation = Invocation()


def emit_json(value: Any) -> None:
    """Print one JSON document on stdout (UTF-8; C1 and bidi controls escaped too).

    A list is written one item per line: json's C encoder does that, where indenting falls
    back to its pure-Python encoder, which took two of the five seconds of listing 100,000
    records."""
    if isinstance(value, list):
        items = ",\n".join("  " + json.dumps(item, ensure_ascii=False) for item in value)
        text = f"[\n{items}\n]" if value else "[]"
    else:
        text = json.dumps(value, ensure_ascii=False, indent=2, sort_keys=False)
    text = _C1.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
    sys.stdout.write(text + "\n")
    sys.stdout.flush()
    invocation.emitted = True


def when(wall_ms: int) -> str:
    if wall_ms <= 0:
        return "-"
    return datetime.fromtimestamp(wall_ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")


def iso(wall_ms: int) -> str:
    return datetime.fromtimestamp(wall_ms / 1000, tz=UTC).isoformat(timespec="milliseconds")
