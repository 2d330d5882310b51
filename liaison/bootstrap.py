"""The one place where the hub's parts are loaded and wired from the settings."""

from __future__ import annotations

from datetime import timedelta

from liaison.core.decide import RoutingContext
from liaison.core.rules import Rules
from liaison.core.tokens import load_or_create_secret
from liaison.directory import Directory, load_directory
from liaison.errors import DirectoryError
from liaison.settings import Settings
from schemas.catalog import default_registry
from schemas.registry import Registry


def routing_context(settings: Settings, directory: Directory | None = None) -> RoutingContext:
    """Directory, rules, registry (validated against each other) and the receipt token secret."""
    directory = directory or load_directory(settings.directory_path)
    rules = Rules.load(settings.rules_path, directory)
    registry = default_registry()
    check_directory_types(directory, registry)
    return RoutingContext(
        registry=registry,
        directory=directory,
        rules=rules,
        hub_user=settings.hub_user,
        receipt_secret=load_or_create_secret(settings.receipt_key_file),
        user_prefix=settings.user_prefix,
        max_bytes=settings.max_message_bytes,
        max_depth=settings.max_depth,
        max_clock_skew=timedelta(seconds=settings.max_clock_skew_s),
    )


def check_directory_types(directory: Directory, registry: Registry) -> None:
    """Refuse a ``may_send`` entry that names no registered type (a typo would go unnoticed)."""
    types = registry.types()
    for participant in directory:
        for pattern in participant.may_send:
            probe = participant.model_copy(update={"may_send": (pattern,)})
            if not any(probe.can_send(type_) for type_ in types):
                raise DirectoryError(
                    f"{pattern!r} matches no registered message type",
                    participant=participant.code,
                    field="may_send",
                )
