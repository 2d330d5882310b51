"""The participants directory: who is on the hub, what each may send, what each may read.

The directory is data (``liaison/data/directory.toml``, or the file named by the
settings), loaded and validated once at start-up. Everything that decides on a
participant reads it: the router (may this sender send this type? is this
recipient cleared?), the topology (one inbox, one user and its permissions per
participant) and the signature check (the participant's public key).

A broken file raises :class:`DirectoryError` naming the participant and the
field, never a pydantic traceback: the people who edit it are not Python
programmers.
"""

from __future__ import annotations

import base64
import binascii
import re
import tomllib
from collections.abc import Iterable, Iterator
from enum import StrEnum
from fnmatch import fnmatchcase
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
)

from liaison.errors import DirectoryError
from schemas.types import Classification, Line, Note, ParticipantCode, Precedence

#: The character set of message type names, which a ``*`` may stand for.
_TYPE_CHARS = "[a-z_.]"
#: A send pattern: a type name in which ``*`` stands for any run of type-name characters.
_SEND_PATTERN = re.compile(r"^(?!.*\.\.)[a-z*][a-z_.*]{0,63}$")


#: A message type name without wildcards (the rule of ``schemas.types.TypeName``).
_TYPE_NAME = re.compile(r"^[a-z][a-z_]*(\.[a-z][a-z_]*)+$")


def _check_send_pattern(value: str) -> str:
    plain = "*" not in value
    if (
        not _SEND_PATTERN.fullmatch(value)
        or value.endswith(".")
        or (plain and not _TYPE_NAME.fullmatch(value))
    ):
        raise ValueError(
            f"{value!r} is not a message type or a glob of one "
            "(lower-case dotted words; '*' is the only wildcard)"
        )
    return value


def _check_public_key(value: str) -> str:
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("public_key is not valid base64") from None
    if len(raw) != 32:
        raise ValueError(
            f"public_key must be the base64 of a raw 32-byte Ed25519 key, got {len(raw)} bytes"
        )
    return value


#: ``correspondence.letter``, ``correspondence.*``, ``receipt.*`` or ``*``.
SendPattern = Annotated[str, AfterValidator(_check_send_pattern)]
#: Base64 of the 32 raw bytes of an Ed25519 public key.
PublicKey = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=64), AfterValidator(_check_public_key)
]


class ParticipantKind(StrEnum):
    """What sort of institution or office a participant is (for people and dashboards)."""

    SECRETARIAT = "secretariat"
    SERVICE = "service"
    DIRECTORATE = "directorate"
    PALACE = "palace"
    PARLIAMENT = "parliament"
    GOVERNMENT = "government"
    MINISTRY = "ministry"
    AUTHORITY = "authority"
    COMMITTEE = "committee"
    EMBASSY = "embassy"
    PERMANENT_REPRESENTATION = "permanent_representation"
    CONSULATE = "consulate"
    DUTY = "duty"


class Participant(BaseModel):
    """One institution on the hub: its code, what it may send, what it is cleared to read."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    code: ParticipantCode
    name: Line
    kind: ParticipantKind
    #: Message types it may publish: names or globs where ``*`` stands for any characters.
    may_send: tuple[SendPattern, ...] = Field(default=(), max_length=64)
    #: The highest classification it may receive.
    clearance: Classification
    #: When set, every message it sends must carry a valid Ed25519 signature.
    public_key: PublicKey | None = None
    #: When set, the only senders whose messages it receives (a publication channel such
    #: as the website, which must carry only what the procedures service released); a
    #: copy from anyone else is refused as ``recipient_closed``.
    receives_from: tuple[ParticipantCode, ...] | None = Field(default=None, max_length=64)
    #: The highest precedence it may give its own messages. FLASH and IMMEDIATE copies
    #: go to the recipients' urgent inboxes, read first: a sender capped lower cannot
    #: use them to push its traffic ahead of everyone else's. A routing rule may still
    #: raise a message (the hub's decision, not the sender's).
    max_precedence: Precedence = Precedence.FLASH
    description: Note | None = None

    def may_use(self, precedence: Precedence) -> bool:
        """Whether the directory lets this participant send at ``precedence``."""
        return not precedence.outranks(self.max_precedence)

    def can_send(self, type_name: str) -> bool:
        """Whether the directory lets this participant publish messages of ``type_name``."""
        return _can_send(self.may_send, type_name)

    def send_pattern_regex(self) -> str:
        """An anchored regex of the routing keys (type names) it may publish to ingress.

        Used as the participant's RabbitMQ topic permission on ``liaison.ingress``, so
        the broker itself refuses a type the directory does not allow. A ``*`` becomes
        a run of type-name characters: on valid type names this is exactly
        :meth:`can_send`, and routing keys that are not type names are refused outright.
        """
        if not self.may_send:
            # Nothing to send: only the empty routing key matches, which is no type name.
            return "^$"
        alternatives = dict.fromkeys(_glob_to_regex(pattern) for pattern in self.may_send)
        return "^(" + "|".join(alternatives) + ")$"


@lru_cache(maxsize=4096)
def _can_send(may_send: tuple[str, ...], type_name: str) -> bool:
    # Cached: the router asks this for every message, with few distinct answers.
    return any(fnmatchcase(type_name, pattern) for pattern in may_send)


def _glob_to_regex(pattern: str) -> str:
    return "".join(f"{_TYPE_CHARS}*" if char == "*" else re.escape(char) for char in pattern)


class Directory:
    """Every participant, by code; immutable once built."""

    __slots__ = ("_by_code", "participants")

    def __init__(self, participants: Iterable[Participant]) -> None:
        self.participants: tuple[Participant, ...] = tuple(participants)
        by_code: dict[str, Participant] = {}
        for participant in self.participants:
            if participant.code in by_code:
                raise DirectoryError(
                    "the code is used by more than one participant",
                    participant=participant.code,
                    field="code",
                )
            by_code[participant.code] = participant
        for participant in self.participants:
            unknown = sorted(set(participant.receives_from or ()) - set(by_code))
            if unknown:
                raise DirectoryError(
                    f"receives from participants the directory does not have: {unknown}",
                    participant=participant.code,
                    field="receives_from",
                )
        self._by_code = by_code

    @classmethod
    def from_toml_text(cls, text: str, *, source: str = "<text>") -> Directory:
        """Parse and validate a directory file's text; ``source`` names it in errors."""
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise DirectoryError(f"{source} is not valid TOML: {exc}") from None
        unknown = sorted(set(data) - {"participant"})
        if unknown:
            raise DirectoryError(
                f"{source}: unknown top-level key (expected [[participant]] tables)",
                field=unknown[0],
            )
        entries = data.get("participant", [])
        if not isinstance(entries, list):
            raise DirectoryError(f"{source}: 'participant' must be [[participant]] tables")
        return cls(_parse_participant(entry, index, source) for index, entry in enumerate(entries))

    def __contains__(self, code: object) -> bool:
        return code in self._by_code

    def __iter__(self) -> Iterator[Participant]:
        return iter(self.participants)

    def __len__(self) -> int:
        return len(self.participants)

    def __repr__(self) -> str:
        return f"Directory({len(self)} participants)"

    def get(self, code: str) -> Participant | None:
        """The participant ``code``, or ``None`` when the directory does not know it."""
        return self._by_code.get(code)

    def require(self, code: str) -> Participant:
        """The participant ``code``; :class:`DirectoryError` when it is not in the directory."""
        participant = self._by_code.get(code)
        if participant is None:
            raise DirectoryError("not in the directory", participant=code)
        return participant

    def codes(self) -> tuple[str, ...]:
        """Every participant's code, in file order."""
        return tuple(self._by_code)


def _parse_participant(entry: Any, index: int, source: str) -> Participant:
    raw_code = entry.get("code") if isinstance(entry, dict) else None
    # Name the participant as the file does; the position when the code itself is unusable.
    who = raw_code if isinstance(raw_code, str) and raw_code else f"#{index + 1}"
    if not isinstance(entry, dict):
        raise DirectoryError(f"{source}: each participant must be a table", participant=who)
    try:
        return Participant.model_validate(entry)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        location = [str(part) for part in first["loc"]]
        field = location[0] if location else None
        # ``may_send.2`` says which entry of a list is wrong.
        detail = ".".join(location)
        message = str(first["msg"]).removeprefix("Value error, ")
        if first["type"] == "extra_forbidden":
            message = "unknown field"
        raise DirectoryError(
            f"{source}: {message}" + (f" ({detail})" if detail != field else ""),
            participant=who,
            field=field,
        ) from None


def load_directory(path: Path | None = None) -> Directory:
    """The directory in ``path``, or the bundled one when ``path`` is ``None``."""
    if path is None:
        text = resources.files("liaison.data").joinpath("directory.toml").read_text("utf-8")
        return Directory.from_toml_text(text, source="bundled directory.toml")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DirectoryError(f"cannot read directory file {path}: {exc.strerror}") from None
    return Directory.from_toml_text(text, source=str(path))


__all__ = [
    "Directory",
    "Participant",
    "ParticipantKind",
    "PublicKey",
    "SendPattern",
    "load_directory",
]
