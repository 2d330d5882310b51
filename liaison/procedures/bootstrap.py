"""Wiring the procedures service from the settings: the only place that builds its parts."""

from __future__ import annotations

from liaison.directory import load_directory
from liaison.errors import ConfigError
from liaison.procedures.case_config import load_questions, load_treaties
from liaison.procedures.config import AckRules
from liaison.procedures.core import Policy
from liaison.settings import Settings

#: The procedures service's participant code in the directory.
CODE = "gs-procedures"


def policy(settings: Settings) -> Policy:
    """The folds' fixed inputs: directory, acknowledgement, treaty and question rules
    (checked), prefix."""
    directory = load_directory(settings.directory_path)
    if CODE not in directory:
        raise ConfigError(f"the directory has no participant {CODE!r} for the procedures service")
    rules = AckRules.load(settings.acks_path, directory)
    return Policy(
        CODE,
        settings.registry_prefix,
        directory,
        rules,
        treaties=load_treaties(settings.treaties_path, directory, code=CODE),
        questions=load_questions(settings.questions_path, directory, code=CODE),
    )


__all__ = ["CODE", "policy"]
