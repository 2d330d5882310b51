"""``topology apply`` and ``diff`` against a real RabbitMQ, and the permissions they grant.

The permission checks connect as the participants, with the credentials apply
generated: what a participant may do is what RabbitMQ lets it do, not what the
plan says.
"""

from __future__ import annotations

import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pika
import pika.exceptions
import pytest
from click.testing import CliRunner

from liaison.adapters.management import Management, q
from liaison.adapters.retry_relay import RetryRelay, start_relay
from liaison.cli import main
from liaison.core.retry import RelayContext
from liaison.directory import Directory, load_directory
from liaison.settings import Settings
from liaison.topology import (
    RETRY_DELAY_EXCHANGE,
    CredentialState,
    apply,
    credentials_path,
    diff,
)
from schemas import wire

SMALL = """
[[participant]]
code = "gs"
name = "Secrétariat général"
kind = "secretariat"
clearance = "CONFIDENTIAL"
may_send = ["correspondence.*", "receipt.*", "chamber.answer"]

[[participant]]
code = "emb-berlin"
name = "Ambassade à Berlin"
kind = "embassy"
clearance = "CONFIDENTIAL"
may_send = ["mission.*", "receipt.*"]

[[participant]]
code = "gs-legal"
name = "Service juridique"
kind = "service"
clearance = "CONFIDENTIAL"
may_send = ["legal.opinion_given"]
"""


@pytest.fixture
def small(settings: Settings, tmp_path: Path) -> tuple[Settings, Directory]:
    """Settings pointing at a three-participant directory file, and that directory."""
    path = tmp_path / "directory.toml"
    path.write_text(SMALL, encoding="utf-8")
    return settings.replace(directory_path=path), load_directory(path)


@pytest.fixture
def api(settings: Settings) -> Iterator[Management]:
    """The management API, as the hub."""
    with Management(settings) as client:
        yield client


def _url(settings: Settings, code: str) -> str:
    text = credentials_path(settings, code).read_text(encoding="utf-8")
    (line,) = [line for line in text.splitlines() if line.startswith("LIAISON_AMQP_URL=")]
    return line.removeprefix("LIAISON_AMQP_URL=")


def _password(settings: Settings, code: str) -> str:
    return pika.URLParameters(_url(settings, code)).credentials.password  # type: ignore[no-any-return]


def _connect(settings: Settings, code: str) -> pika.BlockingConnection:
    return pika.BlockingConnection(pika.URLParameters(_url(settings, code)))


class TestApply:
    """apply creates the topology, once."""

    def test_creates_everything(self, small: tuple[Settings, Directory], api: Management) -> None:
        """Exchanges, quorum queues with their arguments, bindings, users and permissions."""
        settings, directory = small
        report = apply(settings, directory)
        assert report.changes
        assert not report.unresolved
        vhost = settings.vhost
        exchanges = {e["name"]: e for e in api.exchanges(vhost)}
        assert exchanges[wire.INGRESS_EXCHANGE]["type"] == "topic"
        assert exchanges[wire.DELIVER_EXCHANGE]["type"] == "direct"
        assert exchanges[wire.DEAD_EXCHANGE]["type"] == "fanout"
        assert exchanges[wire.AUDIT_EXCHANGE]["type"] == "fanout"
        assert exchanges[wire.RETRY_EXCHANGE]["type"] == "topic"
        assert exchanges[RETRY_DELAY_EXCHANGE]["type"] == "headers"
        assert exchanges[RETRY_DELAY_EXCHANGE]["internal"] is True
        assert all(exchanges[name]["durable"] for name in exchanges if name.startswith("liaison."))

        queues = {queue["name"]: queue for queue in api.queues(vhost)}
        expected = {
            wire.INGRESS_QUEUE,
            wire.DEAD_QUEUE,
            wire.AUDIT_QUEUE,
            wire.RETRY_DUE_QUEUE,
            *(wire.retry_queue(delay) for delay in wire.RETRY_DELAYS_MS),
            *(queue for code in directory.codes() for queue in wire.inbox_queues(code)),
        }
        assert set(queues) == expected
        assert all(queue["type"] == "quorum" and queue["durable"] for queue in queues.values())
        inbox = queues["inbox.gs"]["arguments"]
        assert inbox["x-delivery-limit"] == settings.delivery_limit
        assert inbox["x-dead-letter-exchange"] == wire.DEAD_EXCHANGE
        assert queues[wire.AUDIT_QUEUE]["arguments"]["x-single-active-consumer"] is True
        assert "x-dead-letter-exchange" not in queues[wire.DEAD_QUEUE]["arguments"]
        delay = queues["hub.retry.5s"]["arguments"]
        assert delay["x-message-ttl"] == 5_000
        # To the retry relay, never to liaison.deliver (CC/BCC would reach any inbox).
        assert delay["x-dead-letter-exchange"] == wire.RETRY_DUE_EXCHANGE
        assert "x-dead-letter-routing-key" not in delay

        bindings = {(b["source"], b["destination"], b["routing_key"]) for b in api.bindings(vhost)}
        assert (wire.INGRESS_EXCHANGE, wire.INGRESS_QUEUE, "#") in bindings
        assert (wire.DELIVER_EXCHANGE, "inbox.emb-berlin", "emb-berlin") in bindings
        assert (wire.DELIVER_EXCHANGE, "inbox.emb-berlin.urgent", "emb-berlin.urgent") in bindings
        assert (wire.RETRY_EXCHANGE, RETRY_DELAY_EXCHANGE, "#") in bindings

        user = settings.user_for("emb-berlin")
        assert api.get_user(user) is not None
        perms = api.get_permissions(vhost, user)
        assert perms is not None
        assert (perms["configure"], perms["write"], perms["read"]) == (
            "^$",
            r"^(liaison\.ingress|liaison\.retry)$",
            r"^inbox\.emb-berlin(\.urgent)?$",  # its two precedence bands
        )
        topics = {
            t["exchange"]: (t["write"], t["read"]) for t in api.get_topic_permissions(vhost, user)
        }
        assert topics == {
            wire.INGRESS_EXCHANGE: (directory.require("emb-berlin").send_pattern_regex(), "^$"),
            wire.RETRY_EXCHANGE: ("^emb-berlin$", "^$"),
        }
        hub = api.get_permissions(vhost, settings.hub_user)
        assert hub is not None
        assert (hub["configure"], hub["write"], hub["read"]) == (".*", ".*", ".*")

    def test_second_apply_changes_nothing(self, small: tuple[Settings, Directory]) -> None:
        """Applying twice: the second run makes 0 changes and diff is empty."""
        settings, directory = small
        apply(settings, directory)
        before = {code: _password(settings, code) for code in directory.codes()}
        again = apply(settings, directory)
        assert again.changes == ()
        assert again.credential_files == ()
        assert diff(settings, directory) == []
        assert {code: _password(settings, code) for code in directory.codes()} == before

    def test_dry_run_changes_nothing(
        self, small: tuple[Settings, Directory], api: Management
    ) -> None:
        """A dry run reports what it would do and leaves broker and disk untouched."""
        settings, directory = small
        report = apply(settings, directory, dry_run=True)
        assert "declare queue inbox.gs" in report.changes
        assert api.queues(settings.vhost) == []
        assert api.get_user(settings.user_for("gs")) is None
        assert not settings.credentials_dir.exists()

    def test_full_bundled_directory(self, settings: Settings, api: Management) -> None:
        """The real directory applies cleanly, one inbox per participant, then is in sync."""
        directory = load_directory()
        report = apply(settings, directory)
        assert not report.unresolved
        inboxes = [q["name"] for q in api.queues(settings.vhost) if q["name"].startswith("inbox.")]
        assert len(inboxes) == 2 * len(directory)  # the routine and the urgent band
        assert diff(settings, directory) == []
        assert len(report.credential_files) == len(directory)


class TestDiff:
    """diff finds drift; apply repairs what it safely can and leaves the rest."""

    def test_detects_and_repairs_deleted_queue(
        self, small: tuple[Settings, Directory], api: Management
    ) -> None:
        """A deleted inbox shows up as missing (with its binding) and apply restores it."""
        settings, directory = small
        apply(settings, directory)
        api.request("DELETE", f"/queues/{q(settings.vhost)}/inbox.gs-legal")
        assert [str(d) for d in diff(settings, directory)] == [
            "missing queue inbox.gs-legal",
            "missing binding liaison.deliver -> queue inbox.gs-legal key 'gs-legal'",
        ]
        assert len(apply(settings, directory).changes) == 2
        assert diff(settings, directory) == []

    def test_upgrade_adds_the_urgent_band(
        self, small: tuple[Settings, Directory], api: Management
    ) -> None:
        """A deployment from before the urgent band: diff shows it, apply adds it, then twice."""
        settings, directory = small
        apply(settings, directory)
        vhost = q(settings.vhost)
        user = settings.user_for("gs")
        for code in directory.codes():  # as it was: one inbox, read ^inbox\.<code>$
            api.request("DELETE", f"/queues/{vhost}/inbox.{code}.urgent")
        old = {"configure": "^$", "write": "^(liaison\\.ingress|liaison\\.retry)$"}
        api.request("PUT", f"/permissions/{vhost}/{q(user)}", {**old, "read": "^inbox\\.gs$"})
        found = [str(d) for d in diff(settings, directory)]
        for code in directory.codes():
            assert f"missing queue inbox.{code}.urgent" in found
            assert (
                f"missing binding liaison.deliver -> queue inbox.{code}.urgent key '{code}.urgent'"
            ) in found
        assert any(line.startswith(f"changed permissions {user}") for line in found), found
        assert len(found) == 2 * len(directory) + 1
        apply(settings, directory)
        assert diff(settings, directory) == []
        assert apply(settings, directory).changes == ()
        assert diff(settings, directory) == []
        perms = api.get_permissions(settings.vhost, user)
        assert perms is not None
        assert perms["read"] == "^inbox\\.gs(\\.urgent)?$"

    def test_extra_queue_reported_not_deleted(
        self, small: tuple[Settings, Directory], api: Management
    ) -> None:
        """An inbox no participant owns any more is extra, and stays."""
        settings, directory = small
        apply(settings, directory)
        api.request("PUT", f"/queues/{q(settings.vhost)}/inbox.gone", {"durable": True})
        assert [str(d) for d in diff(settings, directory)] == [
            "extra queue inbox.gone: not in the plan; left in place"
        ]
        report = apply(settings, directory)
        assert report.changes == ()
        assert [d.name for d in report.extra] == ["inbox.gone"]
        assert "inbox.gone" in {queue["name"] for queue in api.queues(settings.vhost)}

    def test_queue_with_other_arguments_is_unresolved(
        self, small: tuple[Settings, Directory], api: Management
    ) -> None:
        """A classic inbox in the way is reported, not deleted, and the rest is applied."""
        settings, directory = small
        api.request("PUT", f"/queues/{q(settings.vhost)}/inbox.gs", {"durable": True})
        report = apply(settings, directory)
        assert [(d.what, d.name) for d in report.unresolved] == [("queue", "inbox.gs")]
        assert [str(d).split(":")[0] for d in diff(settings, directory)] == [
            "changed queue inbox.gs"
        ]


class TestCredentials:
    """Generated passwords: files only, 0600, never printed, never changed unasked."""

    def test_files_private_and_passwords_never_shown(
        self, small: tuple[Settings, Directory], capfd: pytest.CaptureFixture[str]
    ) -> None:
        """The CLI writes 0600 files; no password appears in its output or logs."""
        settings, directory = small
        env = {
            "LIAISON_AMQP_URL": settings.amqp_url,
            "LIAISON_MANAGEMENT_URL": settings.management_url,
            "LIAISON_USER_PREFIX": settings.user_prefix,
            "LIAISON_CREDENTIALS_DIR": str(settings.credentials_dir),
            "LIAISON_DIRECTORY_PATH": str(settings.directory_path),
            "LIAISON_LOG_JSON": "true",
        }
        runner = CliRunner()
        first = runner.invoke(main, ["topology", "apply"], env=env)
        assert first.exit_code == 0, first.output
        second = runner.invoke(main, ["topology", "apply"], env=env)
        assert second.exit_code == 0, second.output
        assert "0 changes." in second.output
        in_sync = runner.invoke(main, ["topology", "diff"], env=env)
        assert in_sync.exit_code == 0, in_sync.output
        dry = runner.invoke(main, ["topology", "apply", "--dry-run"], env=env)
        assert dry.exit_code == 0, dry.output
        assert "queue inbox.gs (" in dry.output
        captured = capfd.readouterr()
        shown = "".join(
            [first.output, second.output, in_sync.output, dry.output, captured.out, captured.err]
        )
        assert str(settings.credentials_dir) in first.output
        assert stat.S_IMODE(settings.credentials_dir.stat().st_mode) == 0o700
        for code in directory.codes():
            path = credentials_path(settings, code)
            assert stat.S_IMODE(path.stat().st_mode) == 0o600
            password = _password(settings, code)
            assert len(password) >= 32
            assert password not in shown

    def test_diff_exit_code(self, small: tuple[Settings, Directory]) -> None:
        """diff exits 1 and lists the differences while the broker lacks the topology."""
        settings, _ = small
        env = {
            "LIAISON_AMQP_URL": settings.amqp_url,
            "LIAISON_MANAGEMENT_URL": settings.management_url,
            "LIAISON_USER_PREFIX": settings.user_prefix,
            "LIAISON_DIRECTORY_PATH": str(settings.directory_path),
        }
        result = CliRunner().invoke(main, ["topology", "diff"], env=env)
        assert result.exit_code == 1
        assert "missing queue inbox.gs" in result.output

    def test_lost_file_is_reported_and_its_password_kept(
        self, small: tuple[Settings, Directory]
    ) -> None:
        """A lost credential file is reported as missing; the user's password stays as it was."""
        settings, directory = small
        apply(settings, directory)
        old = _url(settings, "gs")
        credentials_path(settings, "gs").unlink()
        report = apply(settings, directory)
        assert report.changes == ()
        assert report.credential_files == ()
        assert [(p.code, p.state) for p in report.credential_problems] == [
            ("gs", CredentialState.MISSING)
        ]
        assert not credentials_path(settings, "gs").exists()
        pika.BlockingConnection(pika.URLParameters(old)).close()

    def test_apply_from_a_second_place_changes_no_password(
        self, small: tuple[Settings, Directory], tmp_path: Path
    ) -> None:
        """Another checkout (empty credentials_dir) applies: every first-place file still logs in."""
        settings, directory = small
        apply(settings, directory)
        elsewhere = settings.replace(credentials_dir=tmp_path / "elsewhere")
        env = _env(elsewhere)
        result = CliRunner().invoke(main, ["topology", "apply"], env=env)
        assert result.exit_code == 0, result.output
        assert "0 changes." in result.stdout
        assert (
            f"3 participant(s) cannot log in with the credentials in {elsewhere.credentials_dir}"
            in result.stderr
        )
        assert "passwords were left unchanged" in result.stderr
        assert f"emb-berlin (user {settings.user_for('emb-berlin')}): " in result.stderr
        assert "--rotate-all" in result.stderr
        assert not list((tmp_path / "elsewhere").glob("*.env"))
        for code in directory.codes():
            _connect(settings, code).close()
        # And the first place's next apply still finds its files good: nothing to report.
        again = apply(settings, directory)
        assert (again.changes, again.credential_problems) == ((), ())

    def test_stale_password_is_found_by_trying_it(
        self, small: tuple[Settings, Directory], api: Management
    ) -> None:
        """A file naming the right broker, vhost and user, with a replaced password, is reported as refused."""
        settings, directory = small
        apply(settings, directory)
        user = settings.user_for("gs")
        # Another place rotated gs: the file here still "matches" by its contents.
        api.put_user(user, "changed-elsewhere", "liaison-participant")
        report = apply(settings, directory)
        assert report.changes == ()
        assert [(p.code, p.user, p.state) for p in report.credential_problems] == [
            ("gs", user, CredentialState.REFUSED)
        ]
        result = CliRunner().invoke(main, ["topology", "apply"], env=_env(settings))
        assert result.exit_code == 0, result.output
        line = next(ln for ln in result.stderr.splitlines() if ln.startswith("  gs "))
        assert str(credentials_path(settings, "gs")) in line
        assert "password the broker refuses" in line
        assert "--rotate gs" in result.stderr

    def test_rotate_named_participant_only(self, small: tuple[Settings, Directory]) -> None:
        """--rotate gs gives gs a new password and file; the others keep theirs."""
        settings, directory = small
        apply(settings, directory)
        old = {code: _url(settings, code) for code in directory.codes()}
        result = CliRunner().invoke(
            main, ["topology", "apply", "--rotate", "gs"], env=_env(settings)
        )
        assert result.exit_code == 0, result.output
        assert f"rotate password: user {settings.user_for('gs')}" in result.stdout
        assert _url(settings, "gs") != old["gs"]
        _connect(settings, "gs").close()
        with pytest.raises(pika.exceptions.ProbableAuthenticationError):
            pika.BlockingConnection(pika.URLParameters(old["gs"]))
        for code in ("emb-berlin", "gs-legal"):
            assert _url(settings, code) == old[code]
            _connect(settings, code).close()

    def test_rotate_unknown_participant_is_refused(self, small: tuple[Settings, Directory]) -> None:
        """--rotate with a code not in the directory changes nothing and says why in one line."""
        settings, directory = small
        apply(settings, directory)
        before = {code: _url(settings, code) for code in directory.codes()}
        result = CliRunner().invoke(
            main, ["topology", "apply", "--rotate", "gs-nobody"], env=_env(settings)
        )
        assert result.exit_code == 1
        assert result.output.strip().splitlines() == [
            "Error: cannot rotate 'gs-nobody': not in the directory"
        ]
        assert {code: _url(settings, code) for code in directory.codes()} == before

    def test_rotate_all(self, small: tuple[Settings, Directory]) -> None:
        """--rotate-all gives every participant a new password; the old ones stop working."""
        settings, directory = small
        apply(settings, directory)
        old = {code: _url(settings, code) for code in directory.codes()}
        report = apply(settings, directory, rotate_all=True)
        assert len(report.credential_files) == len(directory)
        assert report.credential_problems == ()
        for code in directory.codes():
            assert _url(settings, code) != old[code]
            _connect(settings, code).close()
        with pytest.raises(pika.exceptions.ProbableAuthenticationError):
            pika.BlockingConnection(pika.URLParameters(old["gs"]))


def _env(settings: Settings) -> dict[str, str]:
    """The environment that points the CLI at ``settings``."""
    return {
        "LIAISON_AMQP_URL": settings.amqp_url,
        "LIAISON_MANAGEMENT_URL": settings.management_url,
        "LIAISON_USER_PREFIX": settings.user_prefix,
        "LIAISON_CREDENTIALS_DIR": str(settings.credentials_dir),
        "LIAISON_DIRECTORY_PATH": str(settings.directory_path),
        "LIAISON_LOG_JSON": "true",
    }


def _refused(action: Any) -> int:
    """The reply code of the channel error ``action`` provokes."""
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as caught:
        action()
    return int(caught.value.reply_code)


class TestParticipantPermissions:
    """What RabbitMQ lets a participant do with the credentials apply gave it."""

    @pytest.fixture
    def applied(self, small: tuple[Settings, Directory]) -> Settings:
        """The small directory, applied."""
        settings, directory = small
        apply(settings, directory)
        return settings

    @pytest.fixture
    def berlin(self, applied: Settings) -> Iterator[pika.BlockingConnection]:
        """A connection as the embassy in Berlin."""
        connection = _connect(applied, "emb-berlin")
        yield connection
        if connection.is_open:
            connection.close()

    def _channel(self, connection: pika.BlockingConnection) -> Any:
        channel = connection.channel()
        channel.confirm_delivery()
        return channel

    def test_publishes_allowed_type(
        self, applied: Settings, berlin: pika.BlockingConnection, api: Management
    ) -> None:
        """An allowed type is confirmed and routed to hub.ingress."""
        channel = self._channel(berlin)
        channel.basic_publish(
            wire.INGRESS_EXCHANGE,
            "mission.cable",
            b"{}",
            pika.BasicProperties(user_id=applied.user_for("emb-berlin")),
            mandatory=True,
        )
        hub = pika.BlockingConnection(pika.URLParameters(applied.amqp_url))
        try:
            method, _, body = hub.channel().basic_get(wire.INGRESS_QUEUE, auto_ack=True)
        finally:
            hub.close()
        assert method is not None
        assert body == b"{}"

    @pytest.mark.parametrize("routing_key", ["council.decision", "treaty.file_opened", "x"])
    def test_refuses_type_it_may_not_send(
        self, berlin: pika.BlockingConnection, routing_key: str
    ) -> None:
        """A type the directory does not allow is refused by RabbitMQ itself (403)."""
        channel = self._channel(berlin)
        code = _refused(
            lambda: channel.basic_publish(wire.INGRESS_EXCHANGE, routing_key, b"{}", mandatory=True)
        )
        assert code == 403

    def test_consumes_own_inbox_only(self, berlin: pika.BlockingConnection) -> None:
        """Its own inbox can be consumed; another participant's cannot (403)."""
        channel = berlin.channel()
        channel.basic_consume("inbox.emb-berlin", lambda *_: None)
        other = berlin.channel()
        assert _refused(lambda: other.basic_consume("inbox.gs", lambda *_: None)) == 403
        hub_queue = berlin.channel()
        assert _refused(lambda: hub_queue.basic_get(wire.AUDIT_QUEUE)) == 403

    def test_cannot_declare(self, berlin: pika.BlockingConnection) -> None:
        """Declaring a queue or an exchange is refused (403)."""
        assert _refused(lambda: berlin.channel().queue_declare("mine", durable=True)) == 403
        assert _refused(lambda: berlin.channel().exchange_declare("mine", "fanout")) == 403

    @pytest.mark.parametrize(
        "exchange",
        [wire.DELIVER_EXCHANGE, wire.AUDIT_EXCHANGE, wire.DEAD_EXCHANGE, RETRY_DELAY_EXCHANGE],
    )
    def test_cannot_publish_past_the_router(
        self, berlin: pika.BlockingConnection, exchange: str
    ) -> None:
        """The hub's own exchanges refuse a participant's publish (403)."""
        channel = self._channel(berlin)
        headers = pika.BasicProperties(headers={wire.H_DELAY: "5s"})
        assert _refused(lambda: channel.basic_publish(exchange, "gs", b"{}", headers)) == 403

    def test_cannot_park_into_another_inbox(self, berlin: pika.BlockingConnection) -> None:
        """Parking for retry under another participant's code is refused (403)."""
        channel = self._channel(berlin)
        headers = pika.BasicProperties(headers={wire.H_DELAY: "5s"})
        assert (
            _refused(lambda: channel.basic_publish(wire.RETRY_EXCHANGE, "gs", b"{}", headers))
            == 403
        )

    def test_parked_message_comes_back_after_the_delay(
        self, applied: Settings, small: tuple[Settings, Directory], berlin: pika.BlockingConnection
    ) -> None:
        """A message parked on liaison.retry for 5s returns to its own inbox, same key, through
        the hub's retry relay (run here in-process, as `liaison serve` runs it)."""
        relay = RetryRelay(applied, RelayContext(small[1], applied.hub_user, applied.user_prefix))
        thread = start_relay(relay)
        try:
            channel = self._channel(berlin)
            channel.basic_publish(
                wire.RETRY_EXCHANGE,
                "emb-berlin",
                b"again",
                pika.BasicProperties(
                    headers={wire.H_DELAY: "5s"},
                    delivery_mode=2,
                    user_id=applied.user_for("emb-berlin"),
                ),
                mandatory=True,
            )
            deadline = time.monotonic() + 15
            method = None
            while method is None and time.monotonic() < deadline:
                method, properties, body = channel.basic_get("inbox.emb-berlin", auto_ack=True)
                if method is None:
                    time.sleep(0.25)
        finally:
            relay.stop()
            thread.join(timeout=10)
        assert method is not None, "the parked message never came back"
        assert body == b"again"
        assert method.routing_key == "emb-berlin"
        assert properties.user_id == applied.hub_user
