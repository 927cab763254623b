"""The subset of XLSForm's XPath that fieldsync translates faithfully into JSON Schema.

An XLSForm says when a question is asked (``relevant``) and what its answer must satisfy
(``constraint``) in XPath 1.0. fieldsync's forms say both in JSON Schema (``x-ask-when``, and the
field's own keywords), so an expression is parsed here and translated, or refused, naming what
it cannot say. Supported::

    ${name} or .              a field, or (in a constraint) the answer itself
    'text', "text", 12, 1.5   literals
    = != < <= > >=            a field compared with a literal (either side)
    and, or, not(...)         combinations
    selected(F, 'v')          a select_multiple answer holds v
    count-selected(F) OP n    how many were chosen
    string-length(F) OP n     how long a text is
    regex(F, 'pattern')       a text matches

Anything else (arithmetic, other functions, two fields compared with each other, paths) is
refused: a rule silently dropped or loosened would let through what the organisation meant to
stop.

The translation follows XPath's meaning for an unanswered field, which is the empty string:
``${x} = 'a'`` is false and ``${x} != 'a'`` true when ``x`` is not answered, a comparison with a
number is false, and ``string-length`` and ``count-selected`` of it are 0.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fieldsync.core import odk_regex

COMPARISONS = ("<=", ">=", "!=", "=", "<", ">")
FUNCTIONS = ("count-selected", "string-length", "selected", "regex", "not")
TOKEN = re.compile(
    r"\s*(?:(?P<field>\$\{[A-Za-z_][A-Za-z0-9_.-]*\})|(?P<self>\.(?![0-9]))"
    r"|(?P<number>-?[0-9]+(?:\.[0-9]+)?)|(?P<string>'[^']*'|\"[^\"]*\")"
    r"|(?P<op><=|>=|!=|=|<|>)|(?P<paren>[(),])|(?P<word>[A-Za-z][A-Za-z0-9-]*))"
)
MAX_EXPRESSION = 2000
MAX_DEPTH = 32  # brackets within brackets: the parser recurses once a level


class Untranslatable(ValueError):
    """An expression outside the subset, with what in it is not supported."""


@dataclass(frozen=True)
class Ref:
    name: str | None  # None: ``.``, the answer itself


@dataclass(frozen=True)
class Literal:
    value: str | int | float


@dataclass(frozen=True)
class Call:
    function: str
    args: tuple[Node, ...]


@dataclass(frozen=True)
class Compare:
    op: str
    left: Node
    right: Node


@dataclass(frozen=True)
class Logic:
    op: str  # and | or
    parts: tuple[Node, ...]


Node = Ref | Literal | Call | Compare | Logic


def parse(text: str) -> Node:
    """The expression's tree; ``Untranslatable`` naming what is outside the subset."""
    if len(text) > MAX_EXPRESSION:
        raise Untranslatable(f"longer than {MAX_EXPRESSION} characters")
    tokens = _tokens(text)
    parser = _Parser(tokens)
    node = parser.disjunction()
    if parser.at < len(tokens):
        raise Untranslatable(f"unexpected {tokens[parser.at][1]!r}")
    return node


def _tokens(text: str) -> list[tuple[str, str]]:
    found, at, depth = [], 0, 0
    while at < len(text):
        if text[at:].strip() == "":
            break
        match = TOKEN.match(text, at)
        if match is None or match.end() == at:
            raise Untranslatable(f"cannot read {text[at:].strip()[:20]!r}")
        kind = match.lastgroup
        assert kind is not None
        depth += {"(": 1, ")": -1}.get(match.group(kind), 0) if kind == "paren" else 0
        if depth > MAX_DEPTH:
            raise Untranslatable(f"brackets nested deeper than {MAX_DEPTH}")
        found.append((kind, match.group(kind)))
        at = match.end()
    return found


class _Parser:
    def __init__(self, tokens: list[tuple[str, str]]) -> None:
        self.tokens = tokens
        self.at = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.at] if self.at < len(self.tokens) else None

    def take(self, kind: str, value: str | None = None) -> str:
        token = self.peek()
        if token is None or token[0] != kind or (value is not None and token[1] != value):
            shown = "the end" if token is None else repr(token[1])
            raise Untranslatable(f"expected {value or kind}, found {shown}")
        self.at += 1
        return token[1]

    def disjunction(self) -> Node:
        parts = [self.conjunction()]
        while self.peek() == ("word", "or"):
            self.at += 1
            parts.append(self.conjunction())
        return parts[0] if len(parts) == 1 else Logic("or", tuple(parts))

    def conjunction(self) -> Node:
        parts = [self.comparison()]
        while self.peek() == ("word", "and"):
            self.at += 1
            parts.append(self.comparison())
        return parts[0] if len(parts) == 1 else Logic("and", tuple(parts))

    def comparison(self) -> Node:
        left = self.operand()
        token = self.peek()
        if token is not None and token[0] == "op":
            self.at += 1
            return Compare(token[1], left, self.operand())
        return left

    def operand(self) -> Node:
        token = self.peek()
        if token is None:
            raise Untranslatable("it ends where a value was expected")
        kind, value = token
        self.at += 1
        if kind == "field":
            return Ref(value[2:-1])
        if kind == "self":
            return Ref(None)
        if kind == "number":
            return Literal(float(value) if "." in value else int(value))
        if kind == "string":
            return Literal(value[1:-1])
        if kind == "paren" and value == "(":
            inner = self.disjunction()
            self.take("paren", ")")
            return inner
        if kind == "word" and value in FUNCTIONS:
            self.take("paren", "(")
            args = [self.disjunction()]
            while self.peek() == ("paren", ","):
                self.at += 1
                args.append(self.disjunction())
            self.take("paren", ")")
            return Call(value, tuple(args))
        if kind == "word":
            raise Untranslatable(f"the function or word {value!r} is not supported")
        raise Untranslatable(f"unexpected {value!r}")


@dataclass(frozen=True)
class Target:
    """A field an expression names: where its answer sits, and what kind of answer it is (an
    XPath comparison means something else for a number, a text, one choice or several)."""

    path: tuple[str, ...]
    kind: str  # text | integer | decimal | date | one | many


Locate = Callable[[str], Target]  # a field's name -> where and what it is


def condition(node: Node, locate: Locate, *, subject: Target | None = None) -> Any:
    """A JSON Schema the whole record's answers fit when ``node`` holds (``relevant``);
    with ``subject``, ``.`` is that field (``constraint``: use ``field_schema`` instead)."""
    if isinstance(node, Logic):
        parts = [condition(part, locate, subject=subject) for part in node.parts]
        return {"allOf" if node.op == "and" else "anyOf": parts}
    if isinstance(node, Call) and node.function == "not":
        (inner,) = _arity(node, 1)
        return {"not": condition(inner, locate, subject=subject)}
    empty = _empty_test(node, locate, subject)
    if empty is not None:  # ${x} = '' holds when x is not answered, != '' when it is
        target, answered = empty
        present = _at(target.path, {}, True)
        return present if answered else {"not": present}
    path, schema, required = _atom(node, locate, subject)
    return _at(path, schema, required)


def field_schema(node: Node, locate: Locate, subject: Target) -> Any:
    """A JSON Schema the answer itself fits when a constraint holds (``.``, or the field's own
    name, is the answer at ``subject``; a constraint that names another field is refused). An
    absent answer is not checked."""
    if isinstance(node, Logic):
        parts = [field_schema(part, locate, subject) for part in node.parts]
        return {"allOf" if node.op == "and" else "anyOf": parts}
    if isinstance(node, Call) and node.function == "not":
        (inner,) = _arity(node, 1)
        return {"not": field_schema(inner, locate, subject)}
    empty = _empty_test(node, locate, subject)
    if empty is not None:  # of an answer that is there: never empty
        target, answered = empty
        if target.path != subject.path:
            raise Untranslatable("a constraint may test only the answer itself ('.')")
        return {} if answered else {"not": {}}
    path, schema, _ = _atom(node, locate, subject)
    if path != subject.path:
        raise Untranslatable("a constraint may test only the answer itself ('.')")
    return schema


def _at(path: tuple[str, ...], schema: Any, required: bool) -> Any:
    """``schema`` for the value at ``path`` inside the answers object (the path is required
    if ``required``)."""
    for name in reversed(path):
        wrapped: dict[str, Any] = {"properties": {name: schema}}
        if required:
            wrapped["required"] = [name]
        schema = wrapped
    return schema


def _empty_test(node: Node, locate: Locate, subject: Target | None) -> tuple[Target, bool] | None:
    """(the field, True for ``!= ''``) when ``node`` compares a field with the empty text."""
    if not isinstance(node, Compare) or node.op not in ("=", "!="):
        return None
    left, right = node.left, node.right
    if isinstance(left, Literal):
        left, right = right, left
    if isinstance(right, Literal) and right.value == "" and isinstance(left, Ref):
        return _path(left, locate, subject), node.op == "!="
    return None


def _atom(node: Node, locate: Locate, subject: Target | None) -> tuple[tuple[str, ...], Any, bool]:
    """(the field's path, a schema for its value, whether an empty answer fails it)."""
    if isinstance(node, Call) and node.function == "selected":
        field, value = _arity(node, 2)
        target, text = _path(field, locate, subject), _text(value)
        if target.kind == "many":
            return target.path, {"contains": {"const": text}}, True
        if target.kind == "one":
            return target.path, {"const": text}, True
        raise Untranslatable("selected() tests a select_one or select_multiple question")
    if isinstance(node, Call) and node.function == "regex":
        field, pattern = _arity(node, 2)
        target = _path(field, locate, subject)
        if target.kind not in ("text", "date", "one"):
            raise Untranslatable("regex() tests a text, a date or one choice")
        try:
            text = odk_regex.translated(_text(pattern))
        except ValueError as exc:
            raise Untranslatable(str(exc)) from exc
        return target.path, {"type": "string", "pattern": text}, not re.search(text, "")
    if isinstance(node, Compare):
        return _comparison(node, locate, subject)
    if isinstance(node, Ref):
        raise Untranslatable("a field on its own is not a condition: compare it with a value")
    raise Untranslatable("this is not a condition fieldsync can translate")


def _comparison(
    node: Compare, locate: Locate, subject: Target | None
) -> tuple[tuple[str, ...], Any, bool]:
    left, right, op = node.left, node.right, node.op
    if isinstance(left, Literal) and not isinstance(right, Literal):
        left, right, op = right, left, _MIRROR[op]
    if not isinstance(right, Literal):
        raise Untranslatable("a field may be compared only with a literal value")
    value = right.value
    if isinstance(left, Call) and left.function in ("count-selected", "string-length"):
        (field,) = _arity(left, 1)
        target = _path(field, locate, subject)
        counted = "many" if left.function == "count-selected" else None
        if (counted and target.kind != counted) or (
            not counted and target.kind not in ("text", "date", "one")
        ):
            raise Untranslatable(f"{left.function}() of a {target.kind} answer is not supported")
        if not isinstance(value, int):
            raise Untranslatable(f"{left.function}() compares with a whole number only")
        low, high = _bounds(op, value)
        keys = ("minItems", "maxItems") if counted else ("minLength", "maxLength")
        schema = _bounded(keys, low, high)
        return target.path, schema, not _holds(op, 0, value)
    if not isinstance(left, Ref):
        raise Untranslatable("only a field, count-selected() or string-length() is compared")
    target = _path(left, locate, subject)
    wanted = _as_answer(target, value, op)
    if op in ("=", "!="):
        same: Any = {"const": wanted}
        return target.path, same if op == "=" else {"not": same}, op == "="
    keyword = {"<": "exclusiveMaximum", "<=": "maximum", ">": "exclusiveMinimum", ">=": "minimum"}
    return target.path, {"type": "integer", keyword[op]: wanted}, True


def _as_answer(target: Target, value: str | int | float, op: str) -> str | int:
    """The literal as the answer would be stored, for a comparison XPath makes the same way;
    ``Untranslatable`` where XPath compares otherwise than JSON Schema would."""
    kind = target.kind
    if kind == "integer":
        number = value if isinstance(value, int) else None
        if isinstance(value, str) and re.fullmatch(r"-?[0-9]{1,15}", value):
            number = int(value)
        if number is None:
            raise Untranslatable(f"a whole-number question compared with {value!r}")
        return number
    if op not in ("=", "!="):
        raise Untranslatable(f"'{op}' compares numbers: only a whole-number question has one")
    if kind == "one":
        if isinstance(value, float):
            raise Untranslatable(f"a choice compared with {value!r}")
        return str(value)  # choice names are text; XPath compares ${q} = 1 as '1'
    if kind in ("text", "date") and isinstance(value, str):
        return value
    if kind == "many":
        raise Untranslatable("a select_multiple answer is tested with selected()")
    if kind == "decimal":
        raise Untranslatable("a decimal answer is kept as text: comparing it is not supported")
    raise Untranslatable(f"a {kind} answer compared with {value!r}")


_MIRROR = {"=": "=", "!=": "!=", "<": ">", ">": "<", "<=": ">=", ">=": "<="}


def _bounds(op: str, value: int) -> tuple[int | None, int | None]:
    if op == "=":
        return value, value
    if op == "!=":
        raise Untranslatable("'!=' with a count or a length is not supported; use < or >")
    return {
        "<": (None, value - 1),
        "<=": (None, value),
        ">": (value + 1, None),
        ">=": (value, None),
    }[op]


def _bounded(keys: tuple[str, str], low: int | None, high: int | None) -> dict[str, Any]:
    if high is not None and high < 0:
        return {"not": {}}  # a count or a length below 0: never
    bounded: dict[str, Any] = {}
    if low is not None:
        bounded[keys[0]] = max(low, 0)
    if high is not None:
        bounded[keys[1]] = high
    return bounded


def _holds(op: str, left: int, right: int) -> bool:
    return {
        "=": left == right,
        "!=": left != right,
        "<": left < right,
        "<=": left <= right,
        ">": left > right,
        ">=": left >= right,
    }[op]


def _path(node: Node, locate: Locate, subject: Target | None) -> Target:
    if not isinstance(node, Ref):
        raise Untranslatable("the first argument must be a field")
    if node.name is None:
        if subject is None:
            raise Untranslatable("'.' means the answer itself, which only a constraint has")
        return subject
    return locate(node.name)


def _text(node: Node) -> str:
    if not isinstance(node, Literal) or not isinstance(node.value, str):
        raise Untranslatable("a text in quotes was expected")
    return node.value


def _arity(node: Call, count: int) -> tuple[Node, ...]:
    if len(node.args) != count:
        raise Untranslatable(f"{node.function}() takes {count} argument(s)")
    return node.args
