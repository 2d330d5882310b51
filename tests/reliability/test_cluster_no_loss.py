"""No confirmed message is lost when RabbitMQ nodes of a three-node cluster go away.

Three extra nodes on this machine (``tests/rabbit_nodes.py``) form a cluster; the hub's
quorum queues have members on all three. The router and the audit writer run as
processes given all three nodes' URLs, and four producers (each an institution with its
own user, pipelined confirms, retrying what was not confirmed, every node's URL) publish
while the node leading ``hub.ingress`` is killed hard (SIGKILL of its Erlang VM) and
later restarted, and then another node is stopped. Afterwards every confirmed message is
in each of its recipients' inboxes, the ledger holds exactly one ``received`` and one
``delivered`` record per message, and ``liaison audit verify`` passes.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pika
import pytest

from liaison.adapters.connections import node_parameters
from liaison.ledger.query import iter_records
from liaison.settings import Settings
from schemas import wire
from tests import rabbit_nodes
from tests.reliability.faults import HubProcess
from tests.reliability.test_no_loss import (
    PRODUCERS,
    Plan,
    drain,
    expected_deliveries,
    settle,
    start_producers,
)


@dataclass(frozen=True)
class ClusterPlan:
    """How many messages, and when the nodes fail (seconds from the start)."""

    messages: int
    rate_per_producer: float
    kill_leader_at: float
    restart_leader_at: float
    stop_other_at: float


SHORT = ClusterPlan(20_000, 250.0, 5.0, 15.0, 22.0)
LONG = ClusterPlan(100_000, 350.0, 10.0, 30.0, 50.0)


def queue_info(cluster: rabbit_nodes.Cluster, vhost: str, queue: str) -> dict[str, Any]:
    """The management API's view of ``queue``, from the first node that answers."""
    for node in cluster.nodes:
        if node.process is None:
            continue
        try:
            response = httpx.get(
                f"http://127.0.0.1:{node.management_port}/api/queues/"
                f"{quote(vhost, safe='')}/{quote(queue, safe='')}",
                auth=("guest", "guest"),
                timeout=5.0,
            )
        except httpx.HTTPError:
            continue
        if response.status_code == 200:
            info: dict[str, Any] = response.json()
            return info
    raise AssertionError(f"no node's management API describes {queue}")


def dead_letter_causes(settings: Settings) -> Counter[str]:
    """Read ``hub.dead`` without taking anything: how many letters per queue and cause."""
    causes: Counter[str] = Counter()
    connection = pika.BlockingConnection(node_parameters(settings, name="proof-dead"))
    try:
        channel = connection.channel()
        channel.basic_qos(prefetch_count=2_000)
        for method, props, _body in channel.consume(wire.DEAD_QUEUE, inactivity_timeout=2.0):
            if method is None:
                break
            headers = props.headers or {}
            queue = headers.get("x-first-death-queue", "?")
            cause = headers.get(wire.H_REASON) or headers.get("x-first-death-reason", "?")
            causes[f"{queue!s}:{cause!s}"] += 1
        channel.cancel()
    finally:
        connection.close()  # unacked: every letter goes back to hub.dead for drain()
    return causes


def inject_node_faults(
    plan: ClusterPlan,
    leader: rabbit_nodes.Node,
    other: rabbit_nodes.Node,
    router: HubProcess,
    writer: HubProcess,
    producers: dict[str, tuple[subprocess.Popen[bytes], Path]],
    note: Callable[[str], None],
    started: float,
) -> None:
    """Kill the leader, restart it, stop another node; until every producer has finished."""
    stage = 0
    while any(p.poll() is None for p, _ in producers.values()) or stage < 3:
        now = time.monotonic() - started
        assert now < 1_500, "producers still running after 1500 s"
        if stage == 0 and now >= plan.kill_leader_at:
            leader.kill()
            note(f"SIGKILL {leader.name} (leader of {wire.INGRESS_QUEUE})")
            stage = 1
        elif stage == 1 and now >= plan.restart_leader_at:
            leader.start()
            leader.wait_amqp()
            note(f"{leader.name} restarted, AMQP answers")
            stage = 2
        elif stage == 2 and now >= plan.stop_other_at:
            other.stop()
            note(f"{other.name} stopped")
            stage = 3
        if not router.alive():
            note(f"router exited ({router.popen.returncode if router.popen else '?'}); restarted")
            router.start()
        if not writer.alive():
            note("audit writer exited; restarted")
            writer.start()
        time.sleep(0.2)


def run_cluster_proof(
    cluster: rabbit_nodes.Cluster, settings: Settings, plan: ClusterPlan, tmp_path: Path
) -> None:
    """The whole scenario for ``plan``; prints and asserts the figures."""
    ingress = queue_info(cluster, settings.vhost, wire.INGRESS_QUEUE)
    members = sorted(ingress.get("members", []))
    assert members == sorted(n.name for n in cluster.nodes), ingress
    for code in ("gs", "gs-legal"):
        inbox = queue_info(cluster, settings.vhost, wire.inbox_queue(code))
        assert len(inbox.get("members", [])) == 3, inbox
    leader = cluster.node(str(ingress["leader"]))
    other = next(n for n in cluster.nodes if n is not leader)

    started = time.monotonic()
    timeline: list[str] = []

    def note(what: str) -> None:
        timeline.append(f"{time.monotonic() - started:6.1f}s {what}")

    writer = HubProcess(
        settings,
        ("audit", "run"),
        tmp_path / "writer.log",
        {"LIAISON_CHECKPOINT_EVERY": "5000", "LIAISON_CHECKPOINT_SECONDS": "2"},
    )
    router = HubProcess(settings, ("serve",), tmp_path / "router.log")
    producers: dict[str, tuple[subprocess.Popen[bytes], Path]] = {}
    per_producer = plan.messages // len(PRODUCERS)
    try:
        writer.start()
        router.start()
        producers = start_producers(
            settings, Plan(plan.messages, plan.rate_per_producer, (), 0.0, (0.0, 0.0)), tmp_path
        )
        inject_node_faults(plan, leader, other, router, writer, producers, note, started)
        publish_s = time.monotonic() - started
        for code, (popen, _out) in producers.items():
            log = (tmp_path / f"producer-{code}.log").read_text(errors="replace")
            assert popen.wait(timeout=60) == 0, f"producer {code} failed:\n{log[-3000:]}"
            timeline.append(f"producer {code}: {log.strip().splitlines()[-1]}")
        # The cluster whole again before settling, so that later tests find three nodes.
        other.start()
        other.wait_amqp()
        note(f"{other.name} started again")
        settle(router, settings, wire.INGRESS_QUEUE, timeout=600)
        settle(writer, settings, wire.AUDIT_QUEUE, timeout=300)
        settled_s = time.monotonic() - started
    finally:
        for popen, _out in producers.values():
            if popen.poll() is None:
                popen.kill()
        router.kill()
        writer.kill()
        for node in (leader, other):
            if node.process is None:
                node.start()
                node.wait_amqp()

    expected = expected_deliveries(producers)
    inboxes = sorted({code for recipients in PRODUCERS.values() for code in recipients})
    found = {code: drain(settings, wire.inbox_queue(code)) for code in inboxes}
    causes = dead_letter_causes(settings)
    dead = drain(settings, wire.DEAD_QUEUE)
    lost = [
        (message_id, code)
        for message_id, recipients in expected.items()
        for code in recipients
        if found[code][message_id] == 0
    ]
    copies = sum(len(r) for r in expected.values())
    duplicates = sum(n - 1 for counts in found.values() for n in counts.values() if n > 1)
    records = Counter(
        (record.event, record.message_id)
        for record in iter_records(settings.audit_dir)
        if record.event in ("received", "delivered")
    )
    audit_wrong = [
        (event, message_id, records[(event, message_id)])
        for message_id in expected
        for event in ("received", "delivered")
        if records[(event, message_id)] != 1
    ]
    verify = subprocess.run(
        [sys.executable, "-m", "liaison", "audit", "verify", str(settings.audit_dir)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    router_log = router.log()
    summary = (
        f"cluster no-loss proof: {len(expected)} confirmed messages ({copies} inbox copies "
        f"expected), lost={len(lost)} duplicates={duplicates} "
        f"dead-lettered={sum(dead.values())} {dict(causes)}; router connections lost "
        f"{router_log.count('router.connection_lost')}, started {router.starts} times; "
        f"audit records checked {len(expected) * 2}, wrong={len(audit_wrong)}; "
        f"publish phase {publish_s:.1f} s, settled at {settled_s:.1f} s; "
        f"audit verify: {verify.stdout.strip()}"
    )
    print("\n" + summary)
    print("\n".join(timeline))
    assert len(expected) == per_producer * len(PRODUCERS), summary
    assert not lost, f"{summary}; first lost: {lost[:5]}"
    assert not audit_wrong, f"{summary}; first wrong audit counts: {audit_wrong[:5]}"
    assert verify.returncode == 0, f"{summary}\n{verify.stderr}"


@pytest.mark.timeout(1_200)
def test_cluster_no_loss_short(
    rabbit_cluster: rabbit_nodes.Cluster, cluster_settings: Settings, tmp_path: Path, long: bool
) -> None:
    """20,000 messages while the ingress leader node is killed and restarted, then another node stops: none lost, each received and delivered record once, ledger verifies."""
    if long:
        pytest.skip("long mode runs test_cluster_no_loss_long instead")
    run_cluster_proof(rabbit_cluster, cluster_settings, SHORT, tmp_path)


@pytest.mark.slow
@pytest.mark.timeout(3_000)
def test_cluster_no_loss_long(
    rabbit_cluster: rabbit_nodes.Cluster, cluster_settings: Settings, tmp_path: Path
) -> None:
    """100,000 messages through the same node failures: none lost, each record once, ledger verifies."""
    run_cluster_proof(rabbit_cluster, cluster_settings, LONG, tmp_path)
