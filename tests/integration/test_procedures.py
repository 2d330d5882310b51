"""The procedures service on the real broker, with the router and audit writer running."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy

from liaison.directory import load_directory
from liaison.settings import Settings
from liaison.topology import apply
from schemas import wire
from schemas.correspondence import Letter
from schemas.envelope import new_envelope
from schemas.examples import example_payload
from schemas.types import Precedence
from tests.integration.console import cli, delete_queue
from tests.integration.harness import depth, publish_as, running, wait_for
from tests.integration.procedures_support import (
    acknowledge,
    procedures_env,
    procedures_service,
    procedures_settings,
    take_json,
)


def letter(sender: str, recipients: tuple[str, ...], subject: str = "Visite d'État"):  # type: ignore[no-untyped-def]
    return new_envelope(
        Letter(
            registry_reference="GS/2026/12",
            subject=subject,
            body="Monsieur le Maréchal, j'ai l'honneur de ...",
            addressee="Maréchal de la Cour",
            signatory="Le Secrétaire général",
        ),
        sender=sender,
        recipients=recipients,
    )


@pytest.fixture
def proc(hub_settings: Settings, database_url: str, tmp_path: Path) -> Settings:
    settings = procedures_settings(hub_settings, database_url, tmp_path)
    done = cli(settings, "procedures", "migrate", **_extra(settings))
    assert done.code == 0, done.err
    return settings


def _extra(settings: Settings) -> dict[str, str]:
    env = procedures_env(settings)
    return {
        k: v for k, v in env.items() if k.startswith("LIAISON_PROC") or k == "LIAISON_ACKS_PATH"
    }


def _hub(settings: Settings, tmp_path: Path, *, procedures: bool = True):  # type: ignore[no-untyped-def]
    """The router and the audit writer, and the procedures service unless told not to."""
    from contextlib import ExitStack

    stack = ExitStack()
    stack.enter_context(running(settings, "serve", log_path=str(tmp_path / "router.log")))
    stack.enter_context(
        running(
            settings,
            "audit",
            "run",
            wait_queue=wire.AUDIT_QUEUE,
            log_path=str(tmp_path / "audit.log"),
        )
    )
    if procedures:
        stack.enter_context(procedures_service(settings, tmp_path))
    return stack


class TestRegistry:
    def test_letter_is_registered_and_its_receipt_comes_back(
        self, proc: Settings, tmp_path: Path
    ) -> None:
        """gs writes to the Palace: the Palace gets the letter, gs a receipt.registered with MAEE/<year>/1."""
        year = datetime.now(UTC).year
        sent = letter("gs", ("palace",))
        with _hub(proc, tmp_path):
            publish_as(proc, "gs", sent)
            ((_, copy),) = take_json(proc, "palace", 1)
            assert copy["message_id"] == str(sent.message_id)
            ((props, receipt),) = take_json(proc, "gs", 1)
            assert receipt["type"] == "receipt.registered"
            assert receipt["sender"] == "gs-procedures"
            assert receipt["payload"]["registry_number"] == f"MAEE/{year}/1"
            assert receipt["payload"]["original_message_id"] == str(sent.message_id)
            assert props.user_id == proc.user_for("gs-procedures") or props.user_id == proc.hub_user

            shown = cli(proc, "registry", "show", f"MAEE/{year}/1", "--json", **_extra(proc))
            assert shown.code == 0, shown.err
            line = shown.json()
            assert (line["sender"], line["recipients"], line["subject"]) == (
                "gs",
                ["palace"],
                "Visite d'État",
            )

            # The Palace has 2 working days to register it: awaited, not overdue.
            awaited = cli(proc, "acks", "pending", "--json", **_extra(proc)).json()
            assert [(a["message_id"], a["waiting_on"], a["overdue"]) for a in awaited] == [
                (str(sent.message_id), ["palace"], False)
            ]

            def rebuilt() -> bool:
                return cli(proc, "procedures", "rebuild", **_extra(proc)).code == 0

            wait_for(rebuilt, timeout=30, what="a rebuild from the ledger with no difference")

            # Someone edits the live register behind the service's back: the rebuild says so.
            tamper = sqlalchemy.create_engine(proc.procedures_url)
            with tamper.begin() as db:
                db.exec_driver_sql("UPDATE registry SET subject = 'Autre chose'")
            tamper.dispose()
            checked = cli(proc, "procedures", "rebuild", **_extra(proc))
            assert checked.code == 2
            assert f"DIFFERENT registry MAEE/{year}/1: subject live='Autre chose'" in checked.out

    def test_a_backdated_letter_is_dated_by_its_arrival_and_the_rebuild_agrees(
        self, proc: Settings, tmp_path: Path
    ) -> None:
        """A letter dated last New Year's Eve, sent today: this year's number, a deadline
        from today, and a rebuild from the ledger that dates it the same way."""
        year = datetime.now(UTC).year
        backdated = letter("gs", ("palace",)).model_copy(
            update={"created_at": datetime(year - 1, 12, 31, 12, 0, tzinfo=UTC)}
        )
        before = datetime.now(UTC)
        with _hub(proc, tmp_path):
            publish_as(proc, "gs", backdated)
            ((_, receipt),) = take_json(proc, "gs", 1)
            assert receipt["payload"]["registry_number"] == f"MAEE/{year}/1"
            shown = cli(proc, "registry", "show", f"MAEE/{year}/1", "--json", **_extra(proc))
            assert shown.code == 0, shown.err
            registered_at = datetime.fromisoformat(shown.json()["registered_at"])
            assert registered_at >= before - timedelta(seconds=proc.max_clock_skew_s + 1)
            # The Palace's two working days start on arrival: not overdue from the start.
            awaited = cli(proc, "acks", "pending", "--json", **_extra(proc)).json()
            assert [(a["message_id"], a["overdue"]) for a in awaited] == [
                (str(backdated.message_id), False)
            ]

            def rebuilt() -> bool:
                return cli(proc, "procedures", "rebuild", **_extra(proc)).code == 0

            wait_for(rebuilt, timeout=30, what="a rebuild from the ledger with no difference")

    def test_a_letter_retried_later_keeps_its_first_arrival_and_the_rebuild_agrees(
        self, proc: Settings, tmp_path: Path
    ) -> None:
        """The registry's inbox was missing when a backdated letter came: its copy is an
        unroutable dead letter; the operator repairs the topology and retries it later.
        Registered as of when the hub first received it, as the rebuild dates it."""
        backdated = letter("gs", ("palace",)).model_copy(
            update={"created_at": datetime.now(UTC) - timedelta(days=1)}
        )
        delete_queue(proc, wire.inbox_queue("gs-procedures"))
        before = datetime.now(UTC)
        with _hub(proc, tmp_path, procedures=False):
            publish_as(proc, "gs", backdated)
            wait_for(lambda: depth(proc, wire.DEAD_QUEUE) == 1, what="the unroutable copy")
            arrived_by = datetime.now(UTC)  # the hub has received it by now
            time.sleep(3)  # the operator comes a little later
            apply(proc, load_directory(None))
            done = cli(proc, "dlq", "retry", str(backdated.message_id), "--operator", "alice")
            assert done.code == 0, done.err
            with procedures_service(proc, tmp_path):
                ((_, receipt),) = take_json(proc, "gs", 1)
                number = receipt["payload"]["registry_number"]
                shown = cli(proc, "registry", "show", number, "--json", **_extra(proc))
                registered_at = datetime.fromisoformat(shown.json()["registered_at"])
                skew = timedelta(seconds=proc.max_clock_skew_s)
                # The first arrival less the skew, not the retry's (3 s later).
                assert before - skew - timedelta(seconds=1) <= registered_at
                assert registered_at <= arrived_by - skew

                def rebuilt() -> bool:
                    return cli(proc, "procedures", "rebuild", **_extra(proc)).code == 0

                wait_for(rebuilt, timeout=30, what="a rebuild from the ledger with no difference")


class TestAcknowledgementsChased:
    def test_flash_cable_two_of_three_ack_one_escalation_naming_the_third(
        self, proc: Settings, tmp_path: Path
    ) -> None:
        """A reminder at 2 s, then at the 4 s deadline exactly one escalation naming dir-european; status breaches until it acks."""
        cable = new_envelope(
            example_payload("mission.cable", 2),
            sender="emb-berlin",
            recipients=("dir-political", "gs", "dir-european"),
            precedence=Precedence.FLASH,
        )
        with _hub(proc, tmp_path):
            publish_as(proc, "emb-berlin", cable)
            for code in ("dir-political", "gs"):
                ((props, copy),) = take_json(proc, code, 1)
                acknowledge(proc, code, props, copy)
            ((european_props, european_copy),) = take_json(proc, "dir-european", 1)
            # The duty officer gets the cable (rule copy), then the escalation.
            ((_, duty_cable),) = take_json(proc, "duty-officer", 1)
            assert duty_cable["message_id"] == str(cable.message_id)
            ((_, escalation),) = take_json(proc, "duty-officer", 1, timeout=30)
            assert escalation["type"] == "procedure.escalation"
            assert escalation["payload"]["waiting_on"] == ["dir-european"]
            assert escalation["payload"]["subject_message_id"] == str(cable.message_id)
            # The sender has the two receipts and the escalation.
            at_sender = [data for _, data in take_json(proc, "emb-berlin", 3)]
            assert sorted(d["type"] for d in at_sender) == [
                "procedure.escalation",
                "receipt.received",
                "receipt.received",
            ]
            assert escalation["message_id"] in {d["message_id"] for d in at_sender}

            # Before the deadline, the one still awaited was reminded (at 2 s).
            ((_, reminder),) = take_json(proc, "dir-european", 1)
            assert reminder["type"] == "procedure.reminder"
            assert reminder["payload"]["waiting_on"] == ["dir-european"]

            status = cli(proc, "status", "--json", "--source", "amqp", **_extra(proc))
            assert status.code == 2, status.out
            kinds = [b["kind"] for b in status.json()["breaches"]]
            assert kinds == ["acks_overdue"], status.out
            overdue = cli(proc, "acks", "pending", "--overdue", "--json", **_extra(proc)).json()
            assert [a["waiting_on"] for a in overdue] == [["dir-european"]]

            acknowledge(proc, "dir-european", european_props, european_copy)
            wait_for(
                lambda: cli(proc, "status", "--json", "--source", "amqp", **_extra(proc)).code == 0,
                timeout=30,
                what="status back to 0 once the last receipt arrived",
            )
            # Exactly one escalation: nothing more for the duty officer after more sweeps.
            time.sleep(1.5)
            assert [depth(proc, q) for q in wire.inbox_queues("duty-officer")] == [0, 0]
            # The ledger holds the cable, the receipts and the escalation: same state.
            wait_for(
                lambda: cli(proc, "procedures", "rebuild", **_extra(proc)).code == 0,
                timeout=30,
                what="a rebuild with the escalation marked fired and no difference",
            )
