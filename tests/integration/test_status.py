"""``liaison status`` and ``watch`` against the real broker, in management and AMQP modes."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

from liaison.settings import Settings
from schemas import wire
from tests.integration.console import Result, cli, free_port, publish_hub
from tests.integration.harness import running

#: What the test puts where: two inboxes and the dead letters.
EXPECTED = {"inbox.gs": 3, "inbox.gs-archives": 2, "hub.dead": 1}


def fill(settings: Settings) -> None:
    publish_hub(settings, wire.DELIVER_EXCHANGE, "gs", b"{}", count=3)
    publish_hub(settings, wire.DELIVER_EXCHANGE, "gs-archives", b"{}", count=2)
    publish_hub(settings, wire.DEAD_EXCHANGE, "x", b"{}", headers={wire.H_REASON: "not_json"})


def ready_counts(data: dict[str, Any]) -> dict[str, int | None]:
    return {q["name"]: q["ready"] for q in data["queues"]}


def matches(data: dict[str, Any]) -> bool:
    counts = ready_counts(data)
    return all(counts[name] == n for name, n in EXPECTED.items()) and all(
        counts[name] == 0 for name in counts if name not in EXPECTED
    )


def status_until(
    settings: Settings, accept: Any, *args: str, timeout: float = 30.0, **env: str
) -> Result:
    """Run ``status --json`` until ``accept(result)`` holds (management figures lag ~5 s)."""
    deadline = time.monotonic() + timeout
    while True:
        result = cli(settings, "status", "--json", *args, **env)
        if accept(result) or time.monotonic() > deadline:
            return result
        time.sleep(1)


class TestStatus:
    def test_counts_per_queue_from_the_management_api(self, hub_settings: Settings) -> None:
        """With the management API up, every queue shows exactly what was put in it; exit 2."""
        fill(hub_settings)
        result = status_until(hub_settings, lambda r: matches(r.json()))
        data = result.json()
        assert data["source"] == "management"
        assert matches(data), ready_counts(data)
        assert result.code == 2
        kinds = {b["kind"] for b in data["breaches"]}
        assert kinds == {"dead_letters", "router_down"}
        assert data["router"]["alive"] is False
        names = [q["name"] for q in data["queues"]]
        assert names[0] == "hub.ingress" and "inbox.duty-officer" in names
        assert names[-4:] == ["hub.retry.5s", "hub.retry.30s", "hub.retry.5m", "hub.retry.due"]

    def test_forced_amqp_mode(self, hub_settings: Settings) -> None:
        """--source amqp reads exact depths by passive declares, at once, and says so."""
        fill(hub_settings)
        result = cli(hub_settings, "status", "--json", "--source", "amqp")
        data = result.json()
        assert data["source"] == "amqp"
        assert matches(data), ready_counts(data)
        assert {q["unacked"] for q in data["queues"]} == {None}  # AMQP cannot know these
        assert result.code == 2

    def test_falls_back_to_amqp_when_the_management_api_is_down(
        self, hub_settings: Settings
    ) -> None:
        """With the management API unreachable, status still answers, from AMQP, and says why."""
        fill(hub_settings)
        closed = f"http://127.0.0.1:{free_port()}"
        result = cli(hub_settings, "status", "--json", LIAISON_MANAGEMENT_URL=closed)
        data = result.json()
        assert data["source"] == "amqp"
        assert matches(data), ready_counts(data)
        assert any("fell back to AMQP" in w for w in data["warnings"])
        assert result.code == 2
        table = cli(hub_settings, "status", LIAISON_MANAGEMENT_URL=closed)
        assert "source:       amqp" in table.out
        assert "2 dead letter" not in table.out and "1 dead letter(s) in hub.dead" in table.out

    def test_clean_hub_with_a_router_exits_zero(
        self, hub_settings: Settings, tmp_path: Path
    ) -> None:
        """No dead letters and a router consuming: exit 0 in both modes, router alive."""
        s = hub_settings
        with running(s, "serve", log_path=str(tmp_path / "router.log")):
            amqp = cli(s, "status", "--json", "--source", "amqp")
            assert amqp.code == 0, amqp.out
            assert amqp.json()["router"] == {"alive": True, "consumers": 1, "lag": 0}
            managed = status_until(s, lambda r: r.code == 0)
            assert managed.code == 0, managed.out
            assert managed.json()["source"] == "management"
            assert managed.json()["breaches"] == []
            table = cli(s, "status")
            assert "router:       alive (1 consumer(s)), lag 0" in table.out
            assert "OK: no threshold breached" in table.out

    def test_breaches_are_listed_in_the_table(self, hub_settings: Settings) -> None:
        """The human table names each breach and the exit code is 2."""
        fill(hub_settings)
        result = cli(hub_settings, "status", "--source", "amqp")
        assert result.code == 2
        assert "BREACHES (2):" in result.out
        assert "1 dead letter(s) in hub.dead" in result.out
        assert "no router consumes hub.ingress" in result.out


class TestWatch:
    def test_refreshes_the_table(self, hub_settings: Settings) -> None:
        """watch prints the same table, refreshed (here twice, then stopped)."""
        fill(hub_settings)
        result = cli(hub_settings, "watch", "--source", "amqp", "--interval", "0.2", "--count", "2")
        assert result.code == 0, result.err
        assert result.out.count("liaison watch: every 0.2 s") == 2
        # The routine band's row (its urgent band has a row of its own), once per refresh.
        assert len(re.findall(r"^inbox\.gs-archives ", result.out, flags=re.MULTILINE)) == 2
