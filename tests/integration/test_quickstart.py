"""The README's first quick-start command, from a clean clone, on a broker whose management plugin is off.

A fresh machine of this kind runs Debian's RabbitMQ without the management plugin. The
test starts such a node of its own (beside the shared broker, which it never touches),
clones the committed project into a temporary directory and runs ``make demo`` there,
exactly as a newcomer would: the set-up step must turn the plugin on and say so, and the
demo must print its one-line summary.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import rabbit_nodes
from tests.conftest import missing_requirement

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def bare_node(tmp_path: Path) -> Iterator[rabbit_nodes.Node]:
    """A RabbitMQ node of its own with no plugins at all, killed and removed afterwards."""
    why = rabbit_nodes.missing()
    if why is not None:
        missing_requirement(f"extra RabbitMQ nodes cannot start here: {why}")
    with rabbit_nodes.node_base("qs") as base:
        node = rabbit_nodes.new_node(base, f"qs{os.getpid()}", 1, plugins=())
        with rabbit_nodes.running([node]):
            yield node


@pytest.mark.timeout(900)
def test_make_demo_from_a_clean_clone_turns_management_on_and_prints_one_line(
    bare_node: rabbit_nodes.Node, tmp_path: Path
) -> None:
    """`make demo` in a fresh clone, management plugin off: the set-up says it turned the plugin on, the demo prints one summary line and no logs."""
    if shutil.which("git") is None or shutil.which("make") is None:
        pytest.fail("git and make are needed for the quick start")
    clone = tmp_path / "liaison"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LIAISON_", "VIRTUAL_ENV"))}
    env.update(
        LIAISON_AMQP_URL=f"amqp://guest:guest@127.0.0.1:{bare_node.amqp_port}/liaison",
        LIAISON_MANAGEMENT_URL=f"http://127.0.0.1:{bare_node.management_port}",
        LIAISON_HTTP_PORT="0",  # the shared machine's 8787 may be taken
        # Which node `rabbitmq-plugins` acts on: this one, not the machine's default.
        RABBITMQ_NODENAME=bare_node.name,
        RABBITMQ_ENABLED_PLUGINS_FILE=str(bare_node.directory / "enabled_plugins"),
    )
    result = subprocess.run(
        ["make", "demo", "DEMO_FLAGS=--exit"],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        timeout=840,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "setup: the management API" in result.stderr
    assert "turning on the plugin: rabbitmq-plugins enable rabbitmq_management" in result.stderr
    assert "rabbitmq_management is on" in result.stderr
    summaries = [line for line in result.stdout.splitlines() if line.startswith("demo: ")]
    assert len(summaries) == 1, result.stdout[-3000:]
    summary = summaries[0]
    assert "7 messages sent, 6 delivered" in summary
    assert "1 dead-lettered (schema_violation)" in summary
    assert "audit log: OK" in summary
    assert "What went where" not in result.stdout  # the table is for terminals and -v
    assert "topology.change" not in result.stdout + result.stderr  # no log lines by default
