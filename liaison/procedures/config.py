"""Acknowledgement rules: which messages need which receipt from whom, within how long.

Data (``liaison/data/acks.toml`` or the file ``acks_path`` names), validated
against the directory at start-up so that a rule naming an unknown participant or
an unparseable duration stops the service before it consumes anything.

The expected set is who the message was actually delivered to among its explicit
recipients (the hub's rule copies, such as the duty officer's, are not asked to
acknowledge), narrowed to ``recipients`` when the rule names some.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from fnmatch import fnmatchcase
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from liaison.core.rules import RuleName
from liaison.directory import Directory, SendPattern
from liaison.errors import ConfigError
from liaison.procedures.calendar import Duration
from schemas.types import ParticipantCode, Precedence

RECEIPT_TYPES = ("receipt.received", "receipt.registered", "receipt.answered")


class AckRule(BaseModel):
    """Messages matching ``types`` (and ``precedence``) need ``receipt`` within ``within``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: RuleName
    types: tuple[SendPattern, ...] = Field(min_length=1, max_length=64)
    precedence: tuple[Precedence, ...] | None = Field(default=None, min_length=1)
    #: Only these recipients are chased (e.g. the Palace, the Chamber); all when absent.
    recipients: tuple[ParticipantCode, ...] | None = Field(default=None, min_length=1)
    receipt: str
    within: str
    #: When to remind those still awaited (before ``within`` runs out); none when absent.
    remind_after: str | None = None
    #: Who hears of a missed deadline besides the original sender.
    escalate_to: tuple[ParticipantCode, ...] = ("duty-officer",)
    description: str | None = None

    @field_validator("receipt")
    @classmethod
    def _known_receipt(cls, value: str) -> str:
        if value not in RECEIPT_TYPES:
            raise ValueError(f"must be one of {', '.join(RECEIPT_TYPES)}")
        return value

    @field_validator("within", "remind_after")
    @classmethod
    def _duration(cls, value: str | None) -> str | None:
        if value is None:
            return value
        try:
            Duration.parse(value)
        except ConfigError as exc:
            raise ValueError(str(exc)) from None
        return value

    @property
    def reminder(self) -> Duration | None:
        """``remind_after`` as a Duration."""
        return None if self.remind_after is None else Duration.parse(self.remind_after)

    @property
    def duration(self) -> Duration:
        """``within`` as a Duration."""
        return Duration.parse(self.within)

    def matches(self, type_: str, precedence: Precedence) -> bool:
        """Whether a message of this type and precedence is chased by this rule."""
        return any(fnmatchcase(type_, p) for p in self.types) and (
            self.precedence is None or precedence in self.precedence
        )


@dataclass(frozen=True)
class AckRules:
    """The acknowledgement rules, in file order; the first that matches applies."""

    rules: tuple[AckRule, ...]

    def first(
        self, type_: str, precedence: Precedence, recipients: tuple[str, ...]
    ) -> AckRule | None:
        """The rule that chases this message, if any (it must concern one of its recipients)."""
        for rule in self.rules:
            if rule.matches(type_, precedence) and (
                rule.recipients is None or set(rule.recipients) & set(recipients)
            ):
                return rule
        return None

    @classmethod
    def load(cls, path: Path | None, directory: Directory) -> AckRules:
        """The rules in ``path`` (bundled ``acks.toml`` when ``None``), checked."""
        if path is None:
            text = resources.files("liaison.data").joinpath("acks.toml").read_text("utf-8")
            source = "bundled acks.toml"
        else:
            try:
                text = path.read_text(encoding="utf-8")
            except OSError as exc:
                raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
            source = str(path)
        return cls.from_toml_text(text, directory, source=source)

    @classmethod
    def from_toml_text(cls, text: str, directory: Directory, *, source: str = "<text>") -> AckRules:
        """Parse and validate; errors name the file, the rule and the field."""
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{source} is not valid TOML: {exc}") from None
        unknown = sorted(set(data) - {"ack"})
        if unknown:
            raise ConfigError(f"{source}: unknown top-level key {unknown[0]!r} (expected [[ack]])")
        entries = data.get("ack", [])
        if not isinstance(entries, list):
            raise ConfigError(f"{source}: 'ack' must be [[ack]] tables")
        rules = tuple(_parse(entry, index, source) for index, entry in enumerate(entries))
        names: set[str] = set()
        for rule in rules:
            if rule.name in names:
                raise ConfigError(f"{source}: ack rule {rule.name!r} is defined twice")
            names.add(rule.name)
            for field in ("recipients", "escalate_to"):
                for code in getattr(rule, field) or ():
                    if code not in directory:
                        raise ConfigError(
                            f"{source}: ack rule {rule.name!r}, field {field!r}: "
                            f"{code!r} is not in the directory"
                        )
        return cls(rules)


@dataclass(frozen=True)
class ExpectedReport:
    """A report ``sender`` owes every month, by ``due_day`` of the month after."""

    name: str = "ona-monthly"
    type: str = "ona.report"
    sender: str = "ona"
    due_day: int = 10
    escalate_to: tuple[str, ...] = ("gs", "duty-officer")


def _parse(entry: Any, index: int, source: str) -> AckRule:
    name = entry.get("name") if isinstance(entry, dict) else None
    who = repr(name) if isinstance(name, str) and name else f"#{index + 1}"
    try:
        return AckRule.model_validate(entry)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        location = ".".join(str(part) for part in first["loc"])
        message = str(first["msg"]).removeprefix("Value error, ")
        raise ConfigError(f"{source}: ack rule {who}, field {location!r}: {message}") from None


__all__ = ["RECEIPT_TYPES", "AckRule", "AckRules", "ExpectedReport"]
