"""Conditions on payload fields for routing rules: data, checked against the type's schema.

A rule's ``when`` lists conditions such as ``{field = "severity", op = ">=", value =
"high"}``. At start-up each is compiled against every version of every type the
rule names: a field the type does not declare, a value the field cannot hold, or an
ordering on a field that has no order stops the hub with an error naming the rule.
Compiled, a condition is a plain function of the payload (no I/O, no clock), so the
routing decision stays pure; the router only evaluates the conditions of rules that
name the message's type (one dict lookup for every other message).

Order: numbers, dates and times compare as such; an enumeration (a ``StrEnum``
such as ``Severity``) compares by its declaration order, lowest first.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, TypeAdapter, ValidationError

from liaison.errors import ConfigError
from schemas.registry import Registry
from schemas.types import Payload

Op = Literal["==", "!=", ">=", ">", "<=", "<", "in"]
Scalar = str | int | bool
_ORDERING: dict[str, Callable[[Any, Any], bool]] = {
    ">=": operator.ge,
    ">": operator.gt,
    "<=": operator.le,
    "<": operator.lt,
}
_ORDERED = (int, float, Decimal, date, datetime)

Predicate = Callable[[Payload], bool]


class Condition(BaseModel):
    """``field op value``: a top-level payload field of the rule's types."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    field: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
    op: Op = "=="
    value: Scalar | tuple[Scalar, ...] = Field(union_mode="left_to_right")


def compile_conditions(
    rule: str, conditions: tuple[Condition, ...], types: tuple[str, ...], registry: Registry
) -> dict[str, Predicate]:
    """One predicate per type (all conditions must hold); ConfigError naming ``rule``."""
    known = set(registry.types())
    result: dict[str, Predicate] = {}
    for type_ in types:
        if "*" in type_:
            raise ConfigError(
                f"rule {rule!r}, field 'types': a rule with conditions names its types "
                f"exactly, not {type_!r}"
            )
        if type_ not in known:
            raise ConfigError(f"rule {rule!r}, field 'types': {type_!r} is not a registered type")
        models = [registry.model(type_, v) for v in registry.versions(type_)]
        checks = [_compile(rule, type_, models, condition) for condition in conditions]
        result[type_] = _all(tuple(checks))
    return result


def _all(checks: tuple[Predicate, ...]) -> Predicate:
    def predicate(payload: Payload) -> bool:
        return all(check(payload) for check in checks)

    return predicate


def _compile(rule: str, type_: str, models: list[type[Payload]], condition: Condition) -> Predicate:
    where = f"rule {rule!r}, condition on {condition.field!r}"
    annotations = []
    for model in models:
        info = model.model_fields.get(condition.field)
        if info is None:
            raise ConfigError(f"{where}: {type_} v{model.version} has no field {condition.field!r}")
        annotations.append(info.annotation)
    annotation = annotations[-1]
    assert annotation is not None  # every payload field is annotated
    adapter: TypeAdapter[Any] = TypeAdapter(annotation)
    values = condition.value if isinstance(condition.value, tuple) else (condition.value,)
    if condition.op == "in" and not isinstance(condition.value, tuple):
        raise ConfigError(f"{where}: 'in' needs a list of values")
    if condition.op != "in" and isinstance(condition.value, tuple):
        raise ConfigError(f"{where}: {condition.op!r} needs one value, not a list")
    try:
        expected = tuple(adapter.validate_python(v) for v in values)
    except ValidationError as exc:
        message = exc.errors(include_url=False)[0]["msg"]
        raise ConfigError(f"{where}: {condition.value!r} is not a valid value: {message}") from None
    name = condition.field
    if condition.op == "in":
        allowed = frozenset(expected)
        return lambda payload: getattr(payload, name) in allowed
    (target,) = expected
    if condition.op == "==":
        return lambda payload: getattr(payload, name) == target
    if condition.op == "!=":
        return lambda payload: getattr(payload, name) != target
    compare = _ORDERING[condition.op]
    if isinstance(target, Enum):
        members = list(type(target))
        rank = {member: index for index, member in enumerate(members)}
        bound = rank[target]
        return lambda payload: compare(rank[getattr(payload, name)], bound)
    if isinstance(target, _ORDERED) and not isinstance(target, bool):

        def ordered(payload: Payload) -> bool:
            value = getattr(payload, name)
            return value is not None and bool(compare(value, target))

        return ordered
    raise ConfigError(
        f"{where}: {condition.op!r} needs a field with an order (a number, a date, an enumeration)"
    )


__all__ = ["Condition", "Predicate", "compile_conditions"]
