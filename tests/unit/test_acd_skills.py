"""Skill requirement expressions: parsing, matching, scores, anchors, errors."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from acd.skills import AllOf, AnyOf, AtLeast, SkillExpressionError, parse_skills

pytestmark = pytest.mark.unit

BILLING = "billing>=50 & (spanish>=30 | english>=70)"


def test_the_issue_example_parses_with_and_binding_tighter_than_or():
    assert parse_skills(BILLING) == AllOf((AtLeast("billing", 50), AnyOf((AtLeast("spanish", 30),
                                                                            AtLeast("english", 70)))))
    assert parse_skills("a | b & c") == AnyOf((AtLeast("a", 1), AllOf((AtLeast("b", 1), AtLeast("c", 1)))))


@pytest.mark.parametrize(("skills", "matches"), [
    ({"billing": 50, "spanish": 30}, True),
    ({"billing": 90, "english": 70}, True),
    ({"billing": 49, "spanish": 100}, False),
    ({"billing": 80, "english": 69, "spanish": 29}, False),
    ({}, False),
])
def test_thresholds_are_inclusive(skills, matches):
    assert parse_skills(BILLING).matches(skills) is matches


def test_a_bare_name_means_having_the_skill():
    expression = parse_skills("french")
    assert expression.matches({"french": 1}) and not expression.matches({"french": 0})


def test_score_sums_an_and_and_takes_the_best_matching_branch_of_an_or():
    expression = parse_skills(BILLING)
    assert expression.score({"billing": 60, "spanish": 40, "english": 90}) == 150
    assert expression.score({"billing": 60, "spanish": 40, "english": 50}) == 100


def test_anchors_are_skills_every_match_holds_one_of():
    assert parse_skills(BILLING).anchor_skills() == {"billing"}
    assert parse_skills("(a | b) & (c | d | e)").anchor_skills() == {"a", "b"}
    assert parse_skills("a | b & c").anchor_skills() == {"a", "b"}


def test_lowered_thresholds_never_raise_one():
    expression = parse_skills(BILLING).lowered({"billing": 20, "english": 90})
    assert str(expression) == "billing>=20 & (spanish>=30 | english>=70)"


@pytest.mark.parametrize(("text", "column", "problem"), [
    ("", 1, "expected a skill name or '(', found end of expression"),
    ("billing>=", 10, "expected a proficiency 1-100 after '>=', found end of expression"),
    ("billing>=x", 10, "expected a proficiency 1-100 after '>=', found 'x'"),
    ("billing>=150", 10, "proficiency 150 out of range 1-100"),
    ("billing>=0", 10, "proficiency 0 out of range 1-100"),
    ("billing & (spanish | english", 29, "expected ')', found end of expression"),
    ("billing spanish", 9, "expected '&', '|' or end of expression, found 'spanish'"),
    ("billing && spanish", 10, "expected a skill name or '(', found '&'"),
    ("billing > 5", 9, "unexpected character '>'"),
    ("billing >= 5 | ()", 17, "expected a skill name or '(', found ')'"),
])
def test_errors_say_where_and_what_was_expected(text, column, problem):
    with pytest.raises(SkillExpressionError) as caught:
        parse_skills(text)
    assert (caught.value.column, caught.value.problem) == (column, problem)
    assert f"at column {column}" in str(caught.value)


names = st.sampled_from(["a", "b", "c", "d"])
atoms = st.builds(AtLeast, names, st.integers(1, 100))
expressions = st.recursive(atoms, lambda inner: st.one_of(
    st.builds(lambda terms: AllOf(tuple(terms)), st.lists(inner, min_size=2, max_size=3)),
    st.builds(lambda terms: AnyOf(tuple(terms)), st.lists(inner, min_size=2, max_size=3))), max_leaves=8)
skill_sets = st.dictionaries(names, st.integers(0, 100))


@given(expressions, skill_sets)
def test_printing_then_parsing_keeps_the_meaning_and_anchors_are_necessary(expression, skills):
    reparsed = parse_skills(str(expression))
    assert reparsed.matches(skills) == expression.matches(skills)
    if expression.matches(skills):
        assert any(skills.get(skill, 0) > 0 for skill in expression.anchor_skills())
