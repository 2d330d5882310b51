"""Configuration of the treaty and question procedures: TOML files, checked at start-up.

``liaison/data/treaties.toml`` and ``questions.toml`` are bundled; ``treaties_path``
and ``questions_path`` name others. A code not in the directory, an unknown step
or an unparseable duration stops the service before it consumes anything, with
an error naming the file and the entry.
"""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from liaison.core.rules import RuleName
from liaison.directory import Directory
from liaison.errors import ConfigError
from liaison.procedures.calendar import Duration
from liaison.procedures.questions import AssignRule, QuestionPolicy
from liaison.procedures.treaties import Expectation, Roles, TreatyPolicy
from schemas.treaties import TreatyStep
from schemas.types import ParticipantCode

_M = TypeVar("_M", bound=BaseModel)


def _duration(value: str) -> str:
    try:
        Duration.parse(value)
    except ConfigError as exc:
        raise ValueError(str(exc)) from None
    return value


class _Roles(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    treaties: ParticipantCode = "gs-treaties"
    government_council: ParticipantCode = "council"
    council_of_state: ParticipantCode = "council-of-state"
    chamber: ParticipantCode = "chamber"
    palace: ParticipantCode = "palace"
    journal: ParticipantCode = "scl"


class _Expect(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    after: TreatyStep
    within: str
    escalate_to: tuple[ParticipantCode, ...] = ()
    remind_after: str | None = None
    description: str | None = None

    _within = field_validator("within")(_duration)

    @field_validator("remind_after")
    @classmethod
    def _remind(cls, value: str | None) -> str | None:
        return None if value is None else _duration(value)


class _TreatiesFile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    roles: _Roles = _Roles()
    expect: tuple[_Expect, ...] = Field(default=(), max_length=32)


class _Assign(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: RuleName
    subject: str = Field(min_length=1, max_length=200)
    to: ParticipantCode


class _QuestionsFile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    secretariat: ParticipantCode = "gs"
    chamber: ParticipantCode = "chamber"
    default_assignee: ParticipantCode = "gs"
    reminders: tuple[int, ...] = Field(default=(7, 2), max_length=8)
    escalate_to: tuple[ParticipantCode, ...] = ("gs",)
    assign: tuple[_Assign, ...] = Field(default=(), max_length=200)

    @field_validator("reminders")
    @classmethod
    def _positive(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if any(days < 1 or days > 60 for days in value) or len(set(value)) != len(value):
            raise ValueError("reminders are distinct numbers of working days, 1 to 60")
        return value


def _read(path: Path | None, bundled: str) -> tuple[dict[str, Any], str]:
    if path is None:
        text = resources.files("liaison.data").joinpath(bundled).read_text("utf-8")
        source = f"bundled {bundled}"
    else:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
        source = str(path)
    try:
        return tomllib.loads(text), source
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source} is not valid TOML: {exc}") from None


def _validate(model: type[_M], data: dict[str, Any], source: str) -> _M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(part) for part in first["loc"])
        message = str(first["msg"]).removeprefix("Value error, ")
        raise ConfigError(f"{source}, field {where!r}: {message}") from None


def _known(directory: Directory, source: str, codes: dict[str, tuple[str, ...]]) -> None:
    for where, values in codes.items():
        for code in values:
            if code not in directory:
                raise ConfigError(f"{source}, {where}: {code!r} is not in the directory")


def load_treaties(path: Path | None, directory: Directory, *, code: str) -> TreatyPolicy:
    """The treaty procedure's policy from ``path`` (the bundled file when None), checked."""
    data, source = _read(path, "treaties.toml")
    parsed = _validate(_TreatiesFile, data, source)
    roles = Roles(**parsed.roles.model_dump())
    codes: dict[str, tuple[str, ...]] = {
        f"roles.{k}": (v,) for k, v in parsed.roles.model_dump().items()
    }
    codes.update({f"expect after {e.after.value}": e.escalate_to for e in parsed.expect})
    _known(directory, source, codes)
    steps = [e.after for e in parsed.expect]
    if len(set(steps)) != len(steps):
        raise ConfigError(f"{source}: two [[expect]] entries for the same step")
    expectations = tuple(
        Expectation(
            e.after,
            Duration.parse(e.within),
            e.escalate_to,
            Duration.parse(e.remind_after) if e.remind_after else None,
        )
        for e in parsed.expect
    )
    return TreatyPolicy(code, roles=roles, expectations=expectations)


def load_questions(path: Path | None, directory: Directory, *, code: str) -> QuestionPolicy:
    """The question procedure's policy from ``path`` (the bundled file when None), checked."""
    data, source = _read(path, "questions.toml")
    parsed = _validate(_QuestionsFile, data, source)
    codes: dict[str, tuple[str, ...]] = {
        "secretariat": (parsed.secretariat,),
        "chamber": (parsed.chamber,),
        "default_assignee": (parsed.default_assignee,),
        "escalate_to": parsed.escalate_to,
    }
    codes.update({f"assign {a.name!r}": (a.to,) for a in parsed.assign})
    _known(directory, source, codes)
    return QuestionPolicy(
        code,
        chamber=parsed.chamber,
        secretariat=parsed.secretariat,
        rules=tuple(AssignRule(a.name, a.subject, a.to) for a in parsed.assign),
        default_assignee=parsed.default_assignee,
        reminders=tuple(sorted(parsed.reminders, reverse=True)),
        escalate_to=parsed.escalate_to,
        assignable=frozenset(directory.codes()),
    )


__all__ = ["load_questions", "load_treaties"]
