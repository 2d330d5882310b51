"""The participants directory: the bundled file, broken files, and what a participant may send."""

from __future__ import annotations

import base64
import re
from fnmatch import fnmatchcase
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import given
from hypothesis import strategies as st

from liaison.directory import Directory, Participant, ParticipantKind, load_directory
from liaison.errors import DirectoryError
from schemas.types import Classification

#: Every message type name in use.
ALL_TYPES = (
    "correspondence.letter",
    "correspondence.note",
    "treaty.file_opened",
    "treaty.stage_reached",
    "council.agenda_item_submitted",
    "council.decision",
    "chamber.question",
    "chamber.answer",
    "chamber.vote",
    "palace.audience_request",
    "palace.letters_of_credence",
    "palace.promulgation",
    "mission.cable",
    "mission.security_incident",
    "mission.consular_case",
    "icc.press_release",
    "icc.briefing",
    "legal.opinion_requested",
    "legal.opinion_given",
    "ona.report",
    "receipt.received",
    "receipt.registered",
    "receipt.answered",
)

INSTITUTIONS = (
    "gs",
    "gs-legal",
    "gs-treaties",
    "gs-icc",
    "gs-archives",
    "gs-it",
    "gs-security",
    "palace",
    "chamber",
    "council",
    "min-state",
    "min-justice",
    "min-finance",
    "min-interior",
    "ona",
    "cciioe",
    "duty-officer",
    "emb-berlin",
    "emb-paris",
    "emb-brussels",
    "emb-washington",
    "emb-beijing",
    "rp-eu-brussels",
    "rp-un-newyork",
    "rp-un-geneva",
)


def _key_b64() -> str:
    public = Ed25519PrivateKey.generate().public_key()
    return base64.b64encode(public.public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()


GOOD = """
[[participant]]
code = "gs"
name = "Secrétariat général"
kind = "secretariat"
clearance = "CONFIDENTIAL"
may_send = ["correspondence.*", "receipt.*"]
"""


class TestBundledDirectory:
    """The directory shipped with the hub describes the real institutions."""

    def test_loads_with_unique_codes(self) -> None:
        """The bundled file loads, and no code appears twice."""
        directory = load_directory()
        assert len(directory) >= len(INSTITUTIONS)
        assert len(set(directory.codes())) == len(directory.codes())

    @pytest.mark.parametrize("code", INSTITUTIONS)
    def test_contains_institution(self, code: str) -> None:
        """Each institution of the mandate has an entry."""
        assert code in load_directory()

    def test_has_eight_directorates(self) -> None:
        """The Ministry's 8 Directorates are all there."""
        kinds = [p.kind for p in load_directory()]
        assert kinds.count(ParticipantKind.DIRECTORATE) == 8

    def test_everyone_sends_correspondence_and_receipts(self) -> None:
        """Any participant can write a letter and acknowledge one (the hub's procedures service aside)."""
        for participant in load_directory():
            if participant.code == "gs-procedures":
                continue
            assert participant.can_send("correspondence.letter"), participant.code
            assert participant.can_send("receipt.received"), participant.code

    @pytest.mark.parametrize("type_name", ALL_TYPES)
    def test_every_type_has_a_sender(self, type_name: str) -> None:
        """No message type in use is unsendable."""
        assert any(p.can_send(type_name) for p in load_directory())

    @pytest.mark.parametrize(
        ("code", "allowed", "refused"),
        [
            ("gs-legal", "legal.opinion_given", "legal.opinion_requested"),
            ("gs-treaties", "treaty.stage_reached", "council.decision"),
            ("chamber", "chamber.question", "palace.promulgation"),
            ("palace", "palace.promulgation", "chamber.vote"),
            ("council", "council.decision", "treaty.file_opened"),
            ("emb-berlin", "mission.cable", "icc.press_release"),
            ("gs-icc", "icc.briefing", "mission.cable"),
            ("ona", "ona.report", "council.decision"),
        ],
    )
    def test_may_send_is_sensible(self, code: str, allowed: str, refused: str) -> None:
        """Each institution sends its own family and not another's."""
        participant = load_directory().require(code)
        assert participant.can_send(allowed)
        assert not participant.can_send(refused)

    @pytest.mark.parametrize(
        ("code", "clearance"),
        [
            ("gs", Classification.CONFIDENTIAL),
            ("palace", Classification.CONFIDENTIAL),
            ("council", Classification.CONFIDENTIAL),
            ("duty-officer", Classification.CONFIDENTIAL),
            ("min-justice", Classification.RESTRICTED),
            ("ona", Classification.INTERNAL),
        ],
    )
    def test_clearances(self, code: str, clearance: Classification) -> None:
        """Clearances follow the institution's role."""
        assert load_directory().require(code).clearance is clearance


class TestLookup:
    """get, require, membership and codes."""

    def test_get_and_require(self) -> None:
        """Known codes are found; unknown ones give None, or DirectoryError from require."""
        directory = Directory.from_toml_text(GOOD)
        assert directory.get("gs") is directory.require("gs")
        assert "gs" in directory
        assert "nobody" not in directory
        assert directory.get("nobody") is None
        assert directory.codes() == ("gs",)
        with pytest.raises(DirectoryError, match="nobody"):
            directory.require("nobody")

    def test_file_path(self, tmp_path: Path) -> None:
        """A directory file given by path is read; a missing one is a DirectoryError."""
        path = tmp_path / "directory.toml"
        path.write_text(GOOD, encoding="utf-8")
        assert load_directory(path).codes() == ("gs",)
        with pytest.raises(DirectoryError, match="cannot read"):
            load_directory(tmp_path / "missing.toml")

    def test_public_key(self) -> None:
        """A base64 raw Ed25519 key is accepted."""
        key = _key_b64()
        directory = Directory.from_toml_text(GOOD + f'public_key = "{key}"\n')
        assert directory.require("gs").public_key == key


def _entry(code: str = "gs", **fields: str) -> str:
    values = {
        "code": f'"{code}"',
        "name": '"Secrétariat"',
        "kind": '"secretariat"',
        "clearance": '"CONFIDENTIAL"',
        "may_send": '["receipt.*"]',
        **fields,
    }
    return "[[participant]]\n" + "".join(f"{k} = {v}\n" for k, v in values.items() if v)


SHORT_KEY = base64.b64encode(b"x" * 31).decode()


@pytest.mark.parametrize(
    ("text", "participant", "field"),
    [
        pytest.param(_entry(colour='"blue"'), "gs", "colour", id="unknown-field"),
        pytest.param(_entry(code="GS!"), "GS!", "code", id="bad-code"),
        pytest.param(_entry(clearance='"SECRET"'), "gs", "clearance", id="bad-clearance"),
        pytest.param(_entry(kind='"club"'), "gs", "kind", id="bad-kind"),
        pytest.param(_entry(public_key='"not base64!"'), "gs", "public_key", id="key-not-b64"),
        pytest.param(_entry(public_key=f'"{SHORT_KEY}"'), "gs", "public_key", id="key-31-bytes"),
        pytest.param(_entry(may_send='["Receipt.*"]'), "gs", "may_send", id="bad-glob"),
        pytest.param(_entry(may_send='["receipt"]'), "gs", "may_send", id="not-a-type"),
        pytest.param(_entry(name=""), "gs", "name", id="missing-name"),
        pytest.param(_entry() + _entry(), "gs", "code", id="duplicate-code"),
        pytest.param(_entry("ona") + _entry(code=""), "#2", "code", id="missing-code"),
        pytest.param('[[participant]]\ncode = 7\nname = "x"\n', "#1", "code", id="code-not-str"),
        pytest.param(_entry() + "[oops]\n", None, "oops", id="unknown-table"),
        pytest.param(_entry(name='"unterminated'), None, None, id="toml-syntax"),
    ],
)
def test_broken_file_names_participant_and_field(
    text: str, participant: str | None, field: str | None
) -> None:
    """Each broken file gives a DirectoryError naming the participant and the field."""
    with pytest.raises(DirectoryError) as caught:
        Directory.from_toml_text(text, source="test.toml")
    error = caught.value
    assert (error.participant, error.field) == (participant, field)
    message = str(error)
    if participant:
        assert repr(participant) in message
    if field:
        assert repr(field) in message
    assert "pydantic" not in message
    assert "validation error" not in message.lower()
    assert error.__cause__ is None


class TestSendPatterns:
    """can_send and the broker's topic-permission regex agree."""

    def test_regex_matches_exactly_the_allowed_types(self) -> None:
        """For every bundled participant and every type, the regex agrees with can_send."""
        for participant in load_directory():
            regex = participant.send_pattern_regex()
            assert regex.startswith("^")
            assert regex.endswith("$")
            for type_name in ALL_TYPES:
                allowed = bool(re.fullmatch(regex, type_name))
                assert allowed == participant.can_send(type_name), (participant.code, type_name)

    def test_dots_are_literal(self) -> None:
        """'legal.opinion_given' does not also allow 'legalXopinion_given'."""
        participant = _participant("legal.opinion_given")
        assert re.fullmatch(participant.send_pattern_regex(), "legal.opinion_given")
        assert not re.fullmatch(participant.send_pattern_regex(), "legalXopinion_given")

    def test_star_allows_every_type_but_not_junk(self) -> None:
        """'*' allows every type name, and refuses routing keys that are no type name."""
        regex = _participant("*").send_pattern_regex()
        assert all(re.fullmatch(regex, type_name) for type_name in ALL_TYPES)
        for junk in ("Receipt.received", "receipt.received#", "a b", "treaty/x"):
            assert not re.fullmatch(regex, junk)

    def test_nothing_to_send(self) -> None:
        """An empty may_send allows no type name."""
        participant = _participant()
        assert not participant.can_send("receipt.received")
        assert not any(re.fullmatch(participant.send_pattern_regex(), t) for t in ALL_TYPES)

    @given(
        pattern=st.from_regex(r"\A(\*|[a-z]{1,4}(\.(\*|[a-z][a-z_]{0,3}\*?)){1,4})\Z"),
        type_name=st.from_regex(r"\A[a-z][a-z_]{0,5}(\.[a-z][a-z_]{0,5}){1,3}\Z"),
    )
    def test_regex_is_the_glob(self, pattern: str, type_name: str) -> None:
        """On any type name, the regex built from a glob decides as fnmatch does."""
        participant = _participant(pattern)
        expected = fnmatchcase(type_name, pattern)
        assert bool(re.fullmatch(participant.send_pattern_regex(), type_name)) == expected


def _participant(*may_send: str) -> Participant:
    return Participant(
        code="test",
        name="Test",
        kind=ParticipantKind.SERVICE,
        clearance=Classification.INTERNAL,
        may_send=may_send,
    )


class TestReceivesFrom:
    def test_a_closed_recipient_must_name_known_senders(self) -> None:
        """receives_from naming a code the directory lacks stops the hub, naming participant and field."""
        text = GOOD + 'receives_from = ["nobody"]\n'
        with pytest.raises(DirectoryError, match="receives_from") as caught:
            Directory.from_toml_text(text)
        assert "nobody" in str(caught.value)

    def test_the_website_receives_only_what_the_procedures_service_released(self) -> None:
        """The bundled website system is a publication channel, closed to everyone else."""
        website = load_directory().require("icc-website")
        assert website.receives_from == ("gs-procedures",)
