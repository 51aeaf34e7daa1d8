"""Name patterns of a config, checked so that matching cannot backtrack catastrophically.

Python's ``re`` backtracks: ``(a+)+b``, ``(a|a)*b`` or ``(a?){30}a{30}`` take exponential time
on ordinary names, so a config file could make ``lookup()`` hang. Patterns are therefore
parsed (with ``re``'s own parser) and refused unless they keep to a subset whose worst case
is a small polynomial, and names longer than :data:`MAX_NAME_LENGTH` never match a pattern:

* no backreferences, lookahead/lookbehind or conditional groups;
* the body of a repeated group (``*``, ``+``, ``{m,n}`` with n > 1) matches a fixed number of
  characters: no quantifier and no alternation inside it (``(?:\\d\\d)+`` is fine,
  ``(a+)+`` and ``(a|b)*`` are not);
* at most :data:`MAX_REPEATS` variable repeats (``*``, ``+``, ``{m,n}``) and at most
  :data:`MAX_OPTIONALS` optional parts (``?``) in the whole pattern.

Backtracking then tries at most ``(n + 1) ** MAX_REPEATS * 2 ** MAX_OPTIONALS`` paths for a
name of n characters (n <= 256: well under a second in the worst case, microseconds for real
parameter names). Every pattern muspec writes (``(?:.*\\.)?layers\\.(\\d+)\\.mlp\\.up_proj\\.weight``)
is inside the subset.
"""

from typing import Optional

try:  # Python >= 3.11
    import re._constants as _c
    import re._parser as _parser
except ImportError:  # pragma: no cover - older Pythons
    import sre_constants as _c
    import sre_parse as _parser

#: Names longer than this never match a pattern (they fall through to ``default``).
MAX_NAME_LENGTH = 256
#: Variable repeats (``*``, ``+``, ``{m,n}``) allowed in one pattern.
MAX_REPEATS = 3
#: Optional parts (``?``) allowed in one pattern.
MAX_OPTIONALS = 2

_REFUSED = {
    "GROUPREF": "backreferences",
    "GROUPREF_IGNORE": "backreferences",
    "GROUPREF_EXISTS": "conditional groups",
    "ASSERT": "lookahead/lookbehind",
    "ASSERT_NOT": "lookahead/lookbehind",
}
_REPEATS = ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT")


class _Count:
    def __init__(self):
        self.repeats = 0
        self.optionals = 0


def _walk(items, repeated: bool, count: _Count) -> Optional[str]:
    for op, av in items:
        name = str(op)
        if name in _REFUSED:
            return f"{_REFUSED[name]} are not allowed in name patterns"
        if name in _REPEATS:
            lo, hi, body = av
            if lo != hi:
                if repeated:
                    return "a quantifier inside a repeated group can backtrack exponentially"
                if hi == 1:
                    count.optionals += 1
                else:
                    count.repeats += 1
            problem = _walk(body, repeated or hi > 1, count)
        elif name == "BRANCH":
            if repeated:
                return "alternation inside a repeated group can backtrack exponentially"
            problem = next((p for p in (_walk(alt, repeated, count) for alt in av[1]) if p), None)
        elif name == "SUBPATTERN":
            problem = _walk(av[-1], repeated, count)
        elif name == "ATOMIC_GROUP":
            problem = _walk(av, repeated, count)
        else:  # LITERAL, NOT_LITERAL, ANY, IN, AT, CATEGORY: one character or a position
            problem = None
        if problem:
            return problem
    return None


def regex_problem(regex: str) -> Optional[str]:
    """Why ``regex`` is outside the safe subset, or None. Syntax errors are left to ``re``."""
    try:
        tree = _parser.parse(regex)
    except (_c.error, OverflowError, RecursionError, ValueError):
        return None
    count = _Count()
    problem = _walk(tree, False, count)
    if problem:
        return problem
    if count.repeats > MAX_REPEATS:
        return f"{count.repeats} variable repeats (*, +, {{m,n}}); at most {MAX_REPEATS} are allowed"
    if count.optionals > MAX_OPTIONALS:
        return f"{count.optionals} optional parts (?); at most {MAX_OPTIONALS} are allowed"
    return None
