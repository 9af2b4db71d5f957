"""A small, safe expression language for decision-point conditions, constraints and rules.

Manifests describe *when* a policy may act (``condition: "days_since_last_interaction > 3"``) and
*what it must not do* (``rule: "action == 'escalate' and interactions < 2"``).  These strings are
parsed once, at load time, into a tree that is evaluated over whole columns of snapshot features at
once (NumPy, no per-row Python).  Nothing is ever passed to ``eval``.

Grammar (lowest precedence first)::

    expr     := or
    or       := and ("or" and)*
    and      := not ("and" not)*
    not      := "not" not | compare
    compare  := sum (("==" | "!=" | "<" | "<=" | ">" | ">=") sum)?
              | sum "not"? "in" "[" literal ("," literal)* "]"
    sum      := product (("+" | "-") product)*
    product  := unary (("*" | "/" | "%") unary)*
    unary    := "-" unary | atom
    atom     := number | string | "true" | "false" | name | call | "(" expr ")"
    call     := ("abs" | "min" | "max" | "is_null") "(" expr ("," expr)* ")"

Strings are quoted with ``'`` or ``"``.  Names are snapshot features (``[A-Za-z_][A-Za-z0-9_.]*``).

Types are checked when the expression is parsed against the features that exist (:func:`parse` with
``names``): a name that is not a feature is an error that lists the ones that are, never a silent
false; comparing a string feature with a number, doing arithmetic on strings, or using a number
where a condition is expected (``and``, ``or``, ``not``, a whole condition) are errors too.

Missing values: a numeric feature that is unknown at the snapshot (no value seen yet) is NaN and a
string feature is None.  Every comparison involving a missing value is false, ``!=`` included
(SQL's "unknown" folded to false), arithmetic propagates NaN (division or ``%`` by zero gives NaN), and ``is_null(x)`` tests for it
explicitly.  So ``days_since_last_interaction > 3`` is false for a case that never had an
interaction; write ``is_null(days_since_last_interaction) or days_since_last_interaction > 3`` to
include it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

NUMBER, STRING, BOOL = "number", "string", "bool"
"""The three value types: float64 arrays (NaN = missing), object arrays of str (None = missing), bool arrays."""

FUNCTIONS = ("abs", "min", "max", "is_null")
KEYWORDS = ("and", "or", "not", "in", "true", "false")

_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<number>(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?)
  | (?P<string>'[^']*'|"[^"]*")
  | (?P<name>[A-Za-z_][A-Za-z0-9_.]*)
  | (?P<op>==|!=|<=|>=|<|>|\+|-|\*|/|%|\(|\)|\[|\]|,)
""", re.VERBOSE)


class ExpressionError(ValueError):
    """An expression that cannot be parsed or does not type-check; the message says where and how to fix it."""


@dataclass(frozen=True)
class Expr:
    """A parsed expression: its source, its tree, the feature names it reads and its result type."""

    source: str
    tree: tuple
    names: frozenset[str]
    type: str

    def evaluate(self, columns: Mapping[str, np.ndarray], n: int) -> np.ndarray:
        """The expression over ``n`` rows; ``columns`` maps each name in :attr:`names` to an array of length n."""
        missing = sorted(self.names - set(columns))
        if missing:
            raise ExpressionError(f"{self.source!r}: no column for {missing}")
        out = _eval(self.tree, columns, n)
        if self.type == BOOL:
            return np.broadcast_to(np.asarray(out, dtype=bool), (n,)).copy()
        if self.type == NUMBER:
            return np.broadcast_to(np.asarray(out, dtype=np.float64), (n,)).copy()
        return np.broadcast_to(np.asarray(out, dtype=object), (n,)).copy()


def _tokens(text: str, where: str) -> list[tuple[str, str, int]]:
    out, pos = [], 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise ExpressionError(f"{where}: cannot read {text[pos:pos + 10]!r} at column {pos + 1} of {text!r}; "
                                  "allowed are numbers, quoted strings, names, comparisons, and/or/not, in [...], "
                                  "+ - * / %, parentheses and " + ", ".join(f"{f}()" for f in FUNCTIONS))
        kind = m.lastgroup
        if kind != "ws":
            value = m.group(kind)
            if kind == "name" and value in KEYWORDS:
                kind = "kw"
            out.append((kind, value, pos + 1))
        pos = m.end()
    out.append(("end", "", len(text) + 1))
    return out


class _Parser:
    def __init__(self, text: str, names: Mapping[str, str] | None, where: str):
        self.text, self.where, self.known = text, where, names
        self.toks = _tokens(text, where)
        self.i = 0
        self.used: set[str] = set()

    # -- helpers -----------------------------------------------------------------------------------
    def peek(self) -> tuple[str, str, int]:
        return self.toks[self.i]

    def take(self) -> tuple[str, str, int]:
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def fail(self, message: str, col: int | None = None) -> ExpressionError:
        col = self.peek()[2] if col is None else col
        return ExpressionError(f"{self.where}: {message} (column {col} of {self.text!r})")

    def expect(self, value: str) -> None:
        kind, got, col = self.take()
        if got != value or kind not in ("op", "kw"):
            raise self.fail(f"expected {value!r}, found {got or 'the end'!r}", col)

    def at(self, *values: str) -> bool:
        kind, value, _ = self.peek()
        return kind in ("op", "kw") and value in values

    def need(self, node: tuple, typ: str, what: str, col: int) -> None:
        if node[0] != typ:
            raise self.fail(f"{what} needs a {typ}, found a {node[0]} ({_show(node)})", col)

    # -- grammar -----------------------------------------------------------------------------------
    def parse(self) -> tuple:
        node = self.or_()
        kind, value, col = self.peek()
        if kind != "end":
            raise self.fail(f"unexpected {value!r}", col)
        return node

    def or_(self) -> tuple:
        col = self.peek()[2]
        node = self.and_()
        while self.at("or"):
            c = self.take()[2]
            rhs = self.and_()
            self.need(node, BOOL, "'or'", col)
            self.need(rhs, BOOL, "'or'", c)
            node = (BOOL, "or", node, rhs)
        return node

    def and_(self) -> tuple:
        col = self.peek()[2]
        node = self.not_()
        while self.at("and"):
            c = self.take()[2]
            rhs = self.not_()
            self.need(node, BOOL, "'and'", col)
            self.need(rhs, BOOL, "'and'", c)
            node = (BOOL, "and", node, rhs)
        return node

    def not_(self) -> tuple:
        if self.at("not"):
            col = self.take()[2]
            node = self.not_()
            self.need(node, BOOL, "'not'", col)
            return (BOOL, "not", node)
        return self.compare()

    def compare(self) -> tuple:
        col = self.peek()[2]
        lhs = self.sum_()
        if self.at("==", "!=", "<", "<=", ">", ">="):
            op = self.take()[1]
            rhs = self.sum_()
            if lhs[0] != rhs[0] or lhs[0] == BOOL and op not in ("==", "!="):
                raise self.fail(f"cannot compare a {lhs[0]} ({_show(lhs)}) with a {rhs[0]} ({_show(rhs)}) by {op}", col)
            if lhs[0] == STRING and op not in ("==", "!="):
                raise self.fail(f"strings compare only by == and !=, not {op}", col)
            return (BOOL, op, lhs, rhs)
        negate = False
        if self.at("not") and self.toks[self.i + 1][1] == "in":
            self.take()
            negate = True
        if self.at("in"):
            self.take()
            self.expect("[")
            items = [self.literal()]
            while self.at(","):
                self.take()
                items.append(self.literal())
            self.expect("]")
            kinds = {k for k, _ in items}
            if kinds != {lhs[0]}:
                raise self.fail(f"'in' compares a {lhs[0]} with a list of {'/'.join(sorted(kinds))}", col)
            node = (BOOL, "in", lhs, tuple(v for _, v in items))
            return (BOOL, "not", node) if negate else node
        return lhs

    def literal(self) -> tuple[str, object]:
        kind, value, col = self.take()
        if kind == "number":
            return NUMBER, float(value)
        if kind == "string":
            return STRING, value[1:-1]
        if kind == "op" and value == "-" and self.peek()[0] == "number":
            return NUMBER, -float(self.take()[1])
        raise self.fail(f"a list holds numbers or strings, found {value!r}", col)

    def sum_(self) -> tuple:
        node = self.product()
        while self.at("+", "-"):
            op, col = self.take()[1:]
            rhs = self.product()
            self.need(node, NUMBER, f"{op!r}", col)
            self.need(rhs, NUMBER, f"{op!r}", col)
            node = (NUMBER, op, node, rhs)
        return node

    def product(self) -> tuple:
        node = self.unary()
        while self.at("*", "/", "%"):
            op, col = self.take()[1:]
            rhs = self.unary()
            self.need(node, NUMBER, f"{op!r}", col)
            self.need(rhs, NUMBER, f"{op!r}", col)
            node = (NUMBER, op, node, rhs)
        return node

    def unary(self) -> tuple:
        if self.at("-"):
            col = self.take()[2]
            node = self.unary()
            self.need(node, NUMBER, "'-'", col)
            return (NUMBER, "neg", node)
        return self.atom()

    def atom(self) -> tuple:
        kind, value, col = self.take()
        if kind == "number":
            return (NUMBER, "const", float(value))
        if kind == "string":
            return (STRING, "const", value[1:-1])
        if kind == "kw" and value in ("true", "false"):
            return (BOOL, "const", value == "true")
        if kind == "op" and value == "(":
            node = self.or_()
            self.expect(")")
            return node
        if kind == "name":
            if self.at("("):
                return self.call(value, col)
            return self.name(value, col)
        raise self.fail(f"expected a value, found {value or 'the end'!r}", col)

    def name(self, value: str, col: int) -> tuple:
        if self.known is not None and value not in self.known:
            raise self.fail(f"unknown name {value!r}; the features are: {', '.join(sorted(self.known)) or 'none'}",
                            col)
        self.used.add(value)
        typ = NUMBER if self.known is None else self.known[value]
        return (typ, "name", value)

    def call(self, fn: str, col: int) -> tuple:
        if fn not in FUNCTIONS:
            raise self.fail(f"unknown function {fn!r}; the functions are {', '.join(FUNCTIONS)}", col)
        self.expect("(")
        args = [self.or_()]
        while self.at(","):
            self.take()
            args.append(self.or_())
        self.expect(")")
        if fn == "is_null":
            if len(args) != 1 or args[0][1] != "name":
                raise self.fail("is_null() takes one feature name", col)
            return (BOOL, "is_null", args[0])
        for a in args:
            self.need(a, NUMBER, f"{fn}()", col)
        if fn == "abs" and len(args) != 1:
            raise self.fail("abs() takes one argument", col)
        if fn in ("min", "max") and len(args) < 2:
            raise self.fail(f"{fn}() takes two or more arguments", col)
        return (NUMBER, fn, *args)


def _show(node: tuple) -> str:
    if node[1] in ("const", "name"):
        return repr(node[2]) if node[1] == "const" else node[2]
    return node[1]


def parse(text: str, names: Mapping[str, str] | None = None, *, where: str = "expression",
          want: str | None = BOOL) -> Expr:
    """Parse ``text`` into an :class:`Expr`.

    Args:
        text: the expression.
        names: the available features, name -> type (``"number"``, ``"string"`` or ``"bool"``);
            None accepts any name as a number (for tests and tools).
        where: where the expression comes from (``"manifest.yaml: decision_points[0].condition"``),
            the start of every error message.
        want: the type the whole expression must have (a condition or rule is a bool); None: any.
    """
    if not isinstance(text, str) or not text.strip():
        raise ExpressionError(f"{where}: expected an expression as a non-empty string, found {text!r}")
    p = _Parser(text, names, where)
    tree = p.parse()
    if want is not None and tree[0] != want:
        raise ExpressionError(f"{where}: {text!r} is a {tree[0]}, a {want} is needed here "
                              f"(for example {text.strip()} > 0)" if tree[0] == NUMBER else
                              f"{where}: {text!r} is a {tree[0]}, a {want} is needed here")
    return Expr(text, tree, frozenset(p.used), tree[0])


# ------------------------------------------------------------------------------------------------
# evaluation over columns
# ------------------------------------------------------------------------------------------------

def _null(values, typ: str) -> np.ndarray:
    if typ == NUMBER:
        return np.isnan(np.asarray(values, dtype=np.float64))
    if typ == STRING:
        return np.asarray(values, dtype=object) == None  # noqa: E711 - elementwise
    return np.zeros(np.shape(values), dtype=bool)


def _eval(node: tuple, cols: Mapping[str, np.ndarray], n: int):
    op = node[1]
    if op == "const":
        return node[2]
    if op == "name":
        v = cols[node[2]]
        if len(v) != n:
            raise ExpressionError(f"column {node[2]!r} has {len(v)} rows, expected {n}")
        return v
    if op == "is_null":
        return _null(_eval(node[2], cols, n), node[2][0])
    if op == "not":
        return ~np.asarray(_eval(node[2], cols, n), dtype=bool)
    if op == "and":
        return np.logical_and(_eval(node[2], cols, n), _eval(node[3], cols, n))
    if op == "or":
        return np.logical_or(_eval(node[2], cols, n), _eval(node[3], cols, n))
    if op == "neg":
        return -np.asarray(_eval(node[2], cols, n), dtype=np.float64)
    if op == "abs":
        return np.abs(np.asarray(_eval(node[2], cols, n), dtype=np.float64))
    if op in ("min", "max"):
        f = np.minimum if op == "min" else np.maximum  # NaN propagates
        vals = [np.asarray(_eval(a, cols, n), dtype=np.float64) for a in node[2:]]
        out = vals[0]
        for v in vals[1:]:
            out = f(out, v)
        return out
    if op == "in":
        lhs_t = node[2][0]
        lhs = _eval(node[2], cols, n)
        if lhs_t == NUMBER:
            return np.isin(np.asarray(lhs, dtype=np.float64), np.asarray(node[3], dtype=np.float64))
        arr = np.asarray(lhs, dtype=object)
        out = np.zeros(arr.shape, dtype=bool)
        for item in node[3]:
            out |= arr == item
        return out
    lhs, rhs = _eval(node[2], cols, n), _eval(node[3], cols, n)
    if op in ("+", "-", "*", "/", "%"):
        a, b = np.asarray(lhs, dtype=np.float64), np.asarray(rhs, dtype=np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            if op == "+":
                return a + b
            if op == "-":
                return a - b
            if op == "*":
                return a * b
            if op == "/":
                return np.where(b == 0, np.nan, a / np.where(b == 0, 1.0, b))
            return np.where(b == 0, np.nan, np.fmod(a, np.where(b == 0, 1.0, b)))
    # comparisons: a missing operand makes the result false
    sub = node[2][0]
    missing = _null(lhs, sub) | _null(rhs, sub)
    if sub == STRING:
        a, b = np.asarray(lhs, dtype=object), np.asarray(rhs, dtype=object)
        eq = a == b
        res = eq if op == "==" else ~np.asarray(eq, dtype=bool)
    else:
        dt = np.float64 if sub == NUMBER else bool
        a, b = np.asarray(lhs, dtype=dt), np.asarray(rhs, dtype=dt)
        with np.errstate(invalid="ignore"):
            res = {"==": np.equal, "!=": np.not_equal, "<": np.less, "<=": np.less_equal,
                   ">": np.greater, ">=": np.greater_equal}[op](a, b)
    return np.logical_and(res, ~missing)
