"""The dedupe-key scheme: keys about one message's bytes read back to that message."""

from __future__ import annotations

from liaison.core import dedupe


def test_every_key_about_a_parsed_message_names_its_id_sender_and_bytes() -> None:
    """The audit query finds a message's records by id, sender and content tag, whatever the event."""
    owner = dedupe.owner("gs", b'{"letter": 1}')
    other = dedupe.owner("gs", b'{"letter": 2}')
    assert owner != other
    expected = f"m-1:{owner}"
    keys = [
        dedupe.event_key("received", "m-1", dedupe.routed(owner, "")),
        dedupe.event_key("routed", "m-1", dedupe.routed(owner, "op-7")),
        dedupe.event_key("rejected", "m-1", dedupe.per_recipient(owner, "gs-legal")),
        dedupe.event_key("rejected", "m-1", dedupe.refused(owner, "expired")),
        dedupe.event_key("dead_lettered", "m-1", dedupe.unroutable(owner, "", "gs-archives")),
    ]
    assert {dedupe.message_of(key) for key in keys} == {expected}
    assert dedupe.message_of(dedupe.event_key("received", "m-1", other)) != expected
