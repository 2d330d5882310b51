"""Wiring the procedures service from the settings: the only place that builds its parts."""

from __future__ import annotations

from liaison.directory import load_directory
from liaison.errors import ConfigError
from liaison.procedures.config import AckRules, ExpectedReport
from liaison.procedures.core import Policy
from liaison.settings import Settings

#: The procedures service's participant code in the directory.
CODE = "gs-procedures"


def policy(settings: Settings) -> Policy:
    """The folds' fixed inputs: directory, acknowledgement rules (checked), prefix."""
    directory = load_directory(settings.directory_path)
    if CODE not in directory:
        raise ConfigError(f"the directory has no participant {CODE!r} for the procedures service")
    rules = AckRules.load(settings.acks_path, directory)
    reports = (ExpectedReport(due_day=settings.ona_report_due_day),)
    return Policy(CODE, settings.registry_prefix, directory, rules, reports)


__all__ = ["CODE", "policy"]
