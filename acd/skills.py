"""Skill requirements: a tiny expression language and the agents it admits.

A queue names the skills its calls need, with proficiency thresholds (1-100)::

    billing>=50 & (spanish>=30 | english>=70)

Grammar (``&`` binds tighter than ``|``; a bare name means "has the skill at all", i.e. >=1)::

    expression := all ('|' all)*
    all        := term ('&' term)*
    term       := '(' expression ')' | NAME ['>=' LEVEL]

The parser is a hand-written recursive descent over a token list: no ``eval``, and every error
names the column and what was expected there, so a configuration mistake can be fixed from the
message alone.

Besides ``matches``, each node answers two questions the routing index needs:

- ``anchor_skills()``: a set of skills of which a matching agent must hold at least one. The
  index files each requirement under those skills, so an agent is only ever tested against the
  requirements that mention a skill it has (not against every queue of the site).
- ``score()``: the proficiency of a matching agent for the ``most_skilled`` strategy: its level
  in a skill, the sum over an ``&`` (every skill is used on the call), the best branch of an ``|``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

MIN_LEVEL = 1
MAX_LEVEL = 100

Skills = Mapping[str, int]


class SkillExpressionError(ValueError):
    """A malformed expression; ``column`` is 1-based."""

    def __init__(self, text: str, column: int, problem: str) -> None:
        super().__init__(f"{problem} at column {column}: {text!r}")
        self.text = text
        self.column = column
        self.problem = problem


@dataclass(frozen=True)
class AtLeast:
    skill: str
    level: int

    def matches(self, skills: Skills) -> bool:
        return skills.get(self.skill, 0) >= self.level

    def score(self, skills: Skills) -> int:
        return skills.get(self.skill, 0)

    def anchor_skills(self) -> frozenset[str]:
        return frozenset((self.skill,))

    def lowered(self, levels: Mapping[str, int]) -> AtLeast:
        return AtLeast(self.skill, min(self.level, levels.get(self.skill, self.level)))

    def __str__(self) -> str:
        return f"{self.skill}>={self.level}"


@dataclass(frozen=True)
class AllOf:
    terms: tuple[SkillExpr, ...]

    def matches(self, skills: Skills) -> bool:
        return all(term.matches(skills) for term in self.terms)

    def score(self, skills: Skills) -> int:
        return sum(term.score(skills) for term in self.terms)

    def anchor_skills(self) -> frozenset[str]:
        # Any one term's anchors will do (the agent must satisfy every term): take the
        # narrowest, so the index files this requirement under as few skills as possible.
        return min((term.anchor_skills() for term in self.terms),
                   key=lambda anchors: (len(anchors), sorted(anchors)))

    def lowered(self, levels: Mapping[str, int]) -> AllOf:
        return AllOf(tuple(term.lowered(levels) for term in self.terms))

    def __str__(self) -> str:
        return " & ".join(f"({term})" if isinstance(term, AnyOf) else str(term) for term in self.terms)


@dataclass(frozen=True)
class AnyOf:
    terms: tuple[SkillExpr, ...]

    def matches(self, skills: Skills) -> bool:
        return any(term.matches(skills) for term in self.terms)

    def score(self, skills: Skills) -> int:
        return max((term.score(skills) for term in self.terms if term.matches(skills)), default=0)

    def anchor_skills(self) -> frozenset[str]:
        return frozenset().union(*(term.anchor_skills() for term in self.terms))

    def lowered(self, levels: Mapping[str, int]) -> AnyOf:
        return AnyOf(tuple(term.lowered(levels) for term in self.terms))

    def __str__(self) -> str:
        return " | ".join(str(term) for term in self.terms)


SkillExpr = AtLeast | AllOf | AnyOf


def any_of(*terms: SkillExpr) -> SkillExpr:
    """The alternatives as one expression (a single term stays itself)."""
    return terms[0] if len(terms) == 1 else AnyOf(terms)


_TOKEN = re.compile(r"\s*(?:(?P<name>[A-Za-z_][A-Za-z0-9_.-]*)|(?P<number>\d+)"
                    r"|(?P<op>>=|[&|()])|(?P<bad>\S))")


@dataclass(frozen=True)
class _Token:
    kind: str  # name, number, op, end
    text: str
    column: int


def _tokenize(text: str) -> list[_Token]:
    tokens = []
    position = 0
    while match := _TOKEN.match(text, position):
        kind = match.lastgroup
        column = match.start(kind) + 1
        if kind == "bad":
            raise SkillExpressionError(text, column, f"unexpected character {match.group(kind)!r}")
        tokens.append(_Token(kind, match.group(kind), column))
        position = match.end()
    tokens.append(_Token("end", "", len(text) + 1))
    return tokens


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.index = 0

    @property
    def current(self) -> _Token:
        return self.tokens[self.index]

    def fail(self, expected: str) -> SkillExpressionError:
        token = self.current
        found = "end of expression" if token.kind == "end" else repr(token.text)
        return SkillExpressionError(self.text, token.column, f"expected {expected}, found {found}")

    def take_op(self, op: str) -> bool:
        if self.current.kind == "op" and self.current.text == op:
            self.index += 1
            return True
        return False

    def parse(self) -> SkillExpr:
        expression = self.expression()
        if self.current.kind != "end":
            raise self.fail("'&', '|' or end of expression")
        return expression

    def expression(self) -> SkillExpr:
        terms = [self.all_of()]
        while self.take_op("|"):
            terms.append(self.all_of())
        return any_of(*terms)

    def all_of(self) -> SkillExpr:
        terms = [self.term()]
        while self.take_op("&"):
            terms.append(self.term())
        return terms[0] if len(terms) == 1 else AllOf(tuple(terms))

    def term(self) -> SkillExpr:
        if self.take_op("("):
            inner = self.expression()
            if not self.take_op(")"):
                raise self.fail("')'")
            return inner
        if self.current.kind != "name":
            raise self.fail("a skill name or '('")
        skill = self.current.text
        self.index += 1
        if not self.take_op(">="):
            return AtLeast(skill, MIN_LEVEL)
        return AtLeast(skill, self.level())

    def level(self) -> int:
        token = self.current
        if token.kind != "number":
            raise self.fail(f"a proficiency {MIN_LEVEL}-{MAX_LEVEL} after '>='")
        level = int(token.text)
        if not MIN_LEVEL <= level <= MAX_LEVEL:
            raise SkillExpressionError(self.text, token.column,
                                       f"proficiency {level} out of range {MIN_LEVEL}-{MAX_LEVEL}")
        self.index += 1
        return level


def parse_skills(text: str) -> SkillExpr:
    """Parse a requirement such as ``"billing>=50 & (spanish>=30 | english>=70)"``."""
    return _Parser(text).parse()
