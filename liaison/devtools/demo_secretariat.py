"""The Secretariat's part of ``liaison demo``: a release, an overspend, a serious incident.

Runs after the procedures scenes, with the router, audit writer and procedures
service up:

1. the ICC drafts a press release under a short embargo, the Deputy Secretary
   General approves it; it is on the public Atom feed once the embargo has passed,
   and the website system receives ``icc.release_published``;
2. the committee's secretariat opens a budget line and commits more than it holds:
   the commitment is booked and the General Secretariat gets the escalation;
3. an embassy reports a high-severity security incident at ROUTINE: the duty
   officer receives it as FLASH (header ``x-liaison-precedence``).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from xml.etree import ElementTree

from liaison.devtools.demo_procedures import Echo, _publish, _take
from liaison.settings import Settings
from liaison.web.public import PublicFeed
from schemas import wire
from schemas.committee import BudgetLineOpened, ExpenseCommitted
from schemas.communication import Language, PressRelease, ReleaseApprovedV2
from schemas.envelope import new_envelope
from schemas.examples import example_payload
from schemas.missions import Severity


def run_secretariat_demo(settings: Settings, echo: Echo, *, embargo_s: float = 5.0) -> None:
    """The three scenes above, printed as they happen."""
    echo("\nThe Secretariat (ICC releases, the committee's accounts, escalation by content):")
    embargo = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=embargo_s + 1)
    release = new_envelope(
        PressRelease(
            title="Le Ministre reçoit son homologue slovène",
            body="Le Ministre des Affaires étrangères et européennes a reçu ce jour ...",
            embargo_until=embargo,
            languages=(Language.FR, Language.EN),
        ),
        sender="gs-icc",
        recipients=("gs-dsg",),
    )
    _publish(settings, "gs-icc", release)
    approval = new_envelope(
        # The approval names the words approved: the digest of the draft gs-dsg received.
        ReleaseApprovedV2.of(release.message_id, "gs-icc", release.payload),
        sender="gs-dsg",
        recipients=("gs-icc",),
    )
    _publish(settings, "gs-dsg", approval)
    echo(f"  press release gs-icc → gs-dsg, embargoed until {embargo.isoformat()}; gs-dsg approves")
    feed = PublicFeed(settings, max_age_s=0)
    before = len(_titles(feed()))
    _, published = _take(
        settings,
        "icc-website",
        lambda d: d["type"] == "icc.release_published",
        timeout=60 + embargo_s,
    )
    entries = _titles(feed())
    at = published["payload"]["published_at"]
    echo(
        f"  on the public feed /public/feed.atom at {at} ({before} entries before the embargo, "
        f"{len(entries)} after): {entries[0] if entries else '?'}"
    )

    opened = BudgetLineOpened(
        line="6.1.2",
        year=2026,
        label="Aménagement de locaux",
        amount=Decimal("50000.00"),
        currency="EUR",
    )
    over = ExpenseCommitted(
        commitment_reference="ENG-2026-015",
        line="6.1.2",
        year=2026,
        amount=Decimal("62500.00"),
        currency="EUR",
        supporting_reference="BC-2026-0150",
    )
    for payload in (opened, over):
        _publish(settings, "cciioe", new_envelope(payload, sender="cciioe", recipients=("gs",)))
    _, alert = _take(
        settings, "gs", lambda d: d["type"] == "committee.overspend_escalated", timeout=60
    )
    echo(
        f"  committee: line 6.1.2 opened with 50000.00 EUR; commitment of 62500.00 EUR booked and "
        f"escalated to gs ({alert['payload']['available']} EUR were left)"
    )

    incident = example_payload("mission.security_incident", 1).model_copy(
        update={"severity": Severity.HIGH}
    )
    sent = new_envelope(incident, sender="emb-berlin", recipients=("gs-security",))
    _publish(settings, "emb-berlin", sent)
    props, _ = _take(
        settings, "duty-officer", lambda d: d["message_id"] == str(sent.message_id), timeout=60
    )
    raised = (props.headers or {}).get(wire.H_PRECEDENCE, sent.precedence.value)
    echo(
        f"  security incident (severity high, sent {sent.precedence.value}) emb-berlin → "
        f"gs-security; duty-officer and gs receive it as {raised}"
    )


def _titles(document: bytes) -> list[str]:
    # Our own feed, generated a moment ago: the standard library's parser is enough here.
    atom = "{http://www.w3.org/2005/Atom}"
    root = ElementTree.fromstring(document)  # noqa: S314 - not untrusted input
    return [entry.findtext(f"{atom}title") or "" for entry in root.iter(f"{atom}entry")]


__all__ = ["run_secretariat_demo"]
