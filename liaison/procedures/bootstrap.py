"""Wiring the procedures service from the settings: the only place that builds its parts."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import replace
from datetime import timedelta
from uuid import UUID

from liaison.core.tokens import load_or_create_secret
from liaison.directory import load_directory
from liaison.errors import ConfigError
from liaison.procedures.case_config import load_questions, load_treaties
from liaison.procedures.config import AckRules, ExpectedReport
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
    namespace = id_namespace(settings)
    treaties = load_treaties(settings.treaties_path, directory, code=CODE)
    questions = load_questions(settings.questions_path, directory, code=CODE)
    return Policy(
        CODE,
        settings.registry_prefix,
        directory,
        rules,
        namespace,
        treaties=replace(treaties, id_namespace=namespace),
        questions=replace(questions, id_namespace=namespace),
        reports=(ExpectedReport(due_day=settings.ona_report_due_day),),
        max_clock_skew=timedelta(seconds=settings.max_clock_skew_s),
    )


def id_namespace(settings: Settings) -> UUID:
    """The secret namespace of the service's derived message ids (same for live and rebuild).

    Derived from the hub's receipt-token secret, which every hub-side process holds.
    """
    secret = load_or_create_secret(settings.receipt_key_file)
    digest = hmac.new(secret, b"liaison procedures message ids", hashlib.sha256).digest()
    return UUID(bytes=digest[:16])


__all__ = ["CODE", "id_namespace", "policy"]
