"""Routing rules: the copies the hub adds to a message's explicit recipients.

Rules are data (``liaison/data/rules.toml``, or the file named by the settings),
validated at start-up against the directory, so that a rule naming a participant
that does not exist stops the hub before it routes anything. Applying them is a
pure function of the message's type, sender, precedence and classification; a
rule with ``when`` conditions also reads payload fields its types declare (see
``liaison.core.conditions``), and may raise the precedence the copies are delivered at.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from fnmatch import fnmatchcase
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from liaison.core.conditions import Condition, Predicate, compile_conditions
from liaison.directory import Directory, SendPattern
from liaison.errors import ConfigError
from schemas.envelope import Envelope
from schemas.registry import Registry
from schemas.types import Classification, Note, ParticipantCode, Payload, Precedence

#: Precedences, most urgent first (the order of ``Precedence``).
_URGENCY = {p: i for i, p in enumerate(Precedence)}

#: A rule's name, used in errors and in the audit trail's explanations.
RuleName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]{0,63}$")]


class Rule(BaseModel):
    """Copy messages that match every given condition to ``copy_to``.

    An absent condition matches everything: a rule with only ``types`` applies to
    every sender, precedence and classification.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: RuleName
    #: Message type names or globs (``treaty.*``), as in the directory's ``may_send``.
    types: tuple[SendPattern, ...] = Field(min_length=1, max_length=64)
    senders: tuple[ParticipantCode, ...] | None = Field(default=None, min_length=1)
    precedence: tuple[Precedence, ...] | None = Field(default=None, min_length=1)
    #: The rule applies to messages classified at this level or above.
    min_classification: Classification | None = None
    copy_to: tuple[ParticipantCode, ...] = Field(min_length=1, max_length=64)
    #: An observer's copy (the hub's own services watching traffic, e.g. the registry):
    #: delivered like any copy, but it never makes a message deliverable on its own, so
    #: a letter addressed to nobody is still refused as ``no_recipients``.
    observer: bool = False
    #: Conditions on payload fields of ``types`` (all must hold); checked at start-up.
    when: tuple[Condition, ...] | None = Field(default=None, min_length=1, max_length=16)
    #: The precedence the message is delivered at when this rule applies (never lowered).
    raise_precedence: Precedence | None = None
    description: Note | None = None

    def matches(
        self, type_: str, sender: str, precedence: Precedence, classification: Classification
    ) -> bool:
        """Whether a message with these facts gets this rule's copies."""
        return (
            any(fnmatchcase(type_, pattern) for pattern in self.types)
            and (self.senders is None or sender in self.senders)
            and (self.precedence is None or precedence in self.precedence)
            and (
                self.min_classification is None
                or classification.rank >= self.min_classification.rank
            )
        )


class Rules:
    """The routing rules, in file order, checked against one directory."""

    __slots__ = ("_addressing", "_by_type", "_cache", "rules")

    def __init__(
        self, rules: tuple[Rule, ...], directory: Directory, registry: Registry | None = None
    ) -> None:
        _check_against(rules, directory)
        self.rules = rules
        # Rules that read the payload, by exact type: every other message costs one lookup.
        self._by_type: dict[str, list[tuple[Rule, Predicate]]] = {}
        content = [rule for rule in rules if rule.when or rule.raise_precedence]
        if content:
            if registry is None:
                from schemas.catalog import default_registry  # noqa: PLC0415

                registry = default_registry()
            for rule in content:
                predicates = compile_conditions(rule.name, rule.when or (), rule.types, registry)
                for type_, predicate in predicates.items():
                    self._by_type.setdefault(type_, []).append((rule, predicate))
        # The answer depends on four small enums and names only; the router asks
        # for every message, so remember answers (bounded by the combinations met).
        self._cache: dict[tuple[str, str, Precedence, Classification], tuple[str, ...]] = {}
        self._addressing: dict[tuple[str, str, Precedence, Classification], bool] = {}

    @classmethod
    def load(
        cls, path: Path | None, directory: Directory, registry: Registry | None = None
    ) -> Rules:
        """The rules in ``path``, or the bundled ones when ``path`` is ``None``."""
        if path is None:
            text = resources.files("liaison.data").joinpath("rules.toml").read_text("utf-8")
            return cls.from_toml_text(
                text, directory, source="bundled rules.toml", registry=registry
            )
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read rules file {path}: {exc.strerror}") from None
        return cls.from_toml_text(text, directory, source=str(path), registry=registry)

    @classmethod
    def from_toml_text(
        cls,
        text: str,
        directory: Directory,
        *,
        source: str = "<text>",
        registry: Registry | None = None,
    ) -> Rules:
        """Parse and validate a rules file's text; ``source`` names it in errors."""
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{source} is not valid TOML: {exc}") from None
        unknown = sorted(set(data) - {"rule"})
        if unknown:
            raise ConfigError(f"{source}: unknown top-level key {unknown[0]!r} (expected [[rule]])")
        entries = data.get("rule", [])
        if not isinstance(entries, list):
            raise ConfigError(f"{source}: 'rule' must be [[rule]] tables")
        rules = tuple(_parse_rule(entry, index, source) for index, entry in enumerate(entries))
        try:
            return cls(rules, directory, registry)
        except ConfigError as exc:
            raise ConfigError(f"{source}: {exc}") from None

    def __iter__(self) -> Iterator[Rule]:
        return iter(self.rules)

    def __len__(self) -> int:
        return len(self.rules)

    def __repr__(self) -> str:
        return f"Rules({', '.join(rule.name for rule in self.rules)})"

    def extra_recipients(
        self,
        type_: str,
        sender: str,
        precedence: Precedence,
        classification: Classification,
    ) -> tuple[str, ...]:
        """The codes the rules copy this message to: rule order, no repeats, never the sender.

        A copy back to the sender is no copy: the sender already has the message.
        """
        key = (type_, sender, precedence, classification)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        found: dict[str, None] = {}
        for rule in self.rules:
            if rule.when is None and rule.matches(type_, sender, precedence, classification):
                found.update(dict.fromkeys(code for code in rule.copy_to if code != sender))
        result = tuple(found)
        if len(self._cache) < 100_000:
            self._cache[key] = result
        return result

    def addresses(
        self,
        type_: str,
        sender: str,
        precedence: Precedence,
        classification: Classification,
    ) -> bool:
        """Whether a rule that is not an observer copies this message to someone."""
        key = (type_, sender, precedence, classification)
        cached = self._addressing.get(key)
        if cached is not None:
            return cached
        result = any(
            not rule.observer
            and rule.when is None
            and rule.matches(type_, sender, precedence, classification)
            and any(code != sender for code in rule.copy_to)
            for rule in self.rules
        )
        if len(self._addressing) < 100_000:
            self._addressing[key] = result
        return result

    def by_content(self, envelope: Envelope[Payload]) -> tuple[tuple[str, ...], bool, Precedence]:
        """The copies the rules that read payloads add, whether one of them addresses the
        message (is not an observer), and the precedence to deliver at (never lowered)."""
        candidates = self._by_type.get(envelope.type)
        precedence = envelope.precedence
        if not candidates:
            return (), False, precedence
        found: dict[str, None] = {}
        addresses = False
        sender = envelope.sender
        for rule, predicate in candidates:
            if not rule.matches(
                envelope.type, sender, envelope.precedence, envelope.classification
            ) or not predicate(envelope.payload):
                continue
            copies = [code for code in rule.copy_to if code != sender]
            found.update(dict.fromkeys(copies))
            addresses = addresses or (not rule.observer and bool(copies))
            raised = rule.raise_precedence
            if raised is not None and _URGENCY[raised] < _URGENCY[precedence]:
                precedence = raised
        return tuple(found), addresses, precedence


def _parse_rule(entry: Any, index: int, source: str) -> Rule:
    raw_name = entry.get("name") if isinstance(entry, dict) else None
    who = repr(raw_name) if isinstance(raw_name, str) and raw_name else f"#{index + 1}"
    if not isinstance(entry, dict):
        raise ConfigError(f"{source}: rule {who}: each rule must be a table")
    try:
        return Rule.model_validate(entry)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        location = ".".join(str(part) for part in first["loc"])
        message = str(first["msg"]).removeprefix("Value error, ")
        if first["type"] == "extra_forbidden":
            message = "unknown field"
        raise ConfigError(f"{source}: rule {who}, field {location!r}: {message}") from None


def _check_against(rules: tuple[Rule, ...], directory: Directory) -> None:
    seen: set[str] = set()
    for rule in rules:
        if rule.name in seen:
            raise ConfigError(f"rule {rule.name!r}, field 'name': used by more than one rule")
        seen.add(rule.name)
        for field in ("senders", "copy_to"):
            for code in getattr(rule, field) or ():
                if code not in directory:
                    raise ConfigError(
                        f"rule {rule.name!r}, field {field!r}: {code!r} is not in the directory"
                    )
        if rule.min_classification is not None:
            # Such a copy would be refused for clearance on every message the rule selects.
            for code in rule.copy_to:
                clearance = directory.require(code).clearance
                if clearance.rank < rule.min_classification.rank:
                    raise ConfigError(
                        f"rule {rule.name!r}, field 'copy_to': {code!r} is cleared to "
                        f"{clearance.value}, below the rule's min_classification "
                        f"{rule.min_classification.value}"
                    )


__all__ = ["Rule", "Rules"]
