"""ODK's regex (Java's dialect) as a pattern that means the same under Python's ``re``, which
the form validator uses: ``\\d`` is ASCII digits there (every script's digits in Python), and
``$`` the end of the text (before a final newline too, in Python). Constructs the two read
apart, and nested quantifiers, whose matching time can grow exponentially with the answer's
length, are refused (``ValueError`` saying which).
"""

from __future__ import annotations

import re

MAX_PATTERN = 200
# a group with a quantifier inside, itself quantified: (a+)+, (a|b*)*, (x{2,})+
NESTED_QUANTIFIER = re.compile(r"\((?:[^()\\]|\\.)*[*+}](?:[^()\\]|\\.)*\)\s*[*+{]")


def translated(pattern: str) -> str:
    """An XLSForm's regex (ODK's Java dialect) as a pattern that means the same under Python:
    ``\\d`` is ASCII digits there, ``$`` the end of the text. Constructs the two read apart
    (other classes, backreferences, look-around) and nested quantifiers, which can take time
    exponential in the answer's length, are refused."""
    if len(pattern) > MAX_PATTERN:
        raise ValueError(f"the regex is longer than {MAX_PATTERN} characters")
    if NESTED_QUANTIFIER.search(pattern):
        raise ValueError("a quantifier applied to a group that holds one (catastrophic time)")
    out, at, in_class = [], 0, False
    while at < len(pattern):
        char = pattern[at]
        if char == "\\" and at + 1 < len(pattern):
            escaped = pattern[at + 1]
            if escaped in "dD":
                digits = "0-9" if in_class else "[0-9]"
                if escaped == "D":
                    if in_class:
                        raise ValueError("'\\D' inside [...] is not supported")
                    digits = "[^0-9]"
                out.append(digits)
            elif escaped in "wWsSbBAZz0123456789":
                raise ValueError(f"'\\{escaped}' means otherwise in ODK and in fieldsync")
            else:
                out.append(char + escaped)
            at += 2
            continue
        if not in_class and pattern.startswith("(?", at):
            raise ValueError("groups with '(?' (look-around, flags) are not supported")
        if char == "[" and not in_class:
            in_class = True
        elif char == "]" and in_class and out and out[-1] not in ("[", "[^"):
            in_class = False
        out.append("$(?!\\n)" if char == "$" and not in_class else char)
        at += 1
    try:
        re.compile("".join(out))
    except re.error as exc:
        raise ValueError(f"the regex {pattern!r} does not compile ({exc})") from exc
    return "".join(out)
