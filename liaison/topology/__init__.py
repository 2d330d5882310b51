"""The broker topology: exchanges, queues, bindings, users and permissions, as planned and applied.

- ``plan(directory, settings)`` is pure: the topology as frozen values;
- ``compare(plan, observed)`` is pure: the differences, as values;
- ``apply`` and ``diff`` are the I/O shell (management API and pika).
"""

from liaison.topology._apply import ApplyReport, apply, diff, observe
from liaison.topology._compare import Change, Difference, Observed, compare
from liaison.topology._credentials import (
    CredentialProblem,
    CredentialState,
    check_credentials,
    credentials_match,
    credentials_path,
    credentials_url,
    read_credentials_url,
    rotation_hint,
    write_credentials,
)
from liaison.topology._plan import (
    PARTICIPANT_TAG,
    RETRY_DELAY_EXCHANGE,
    BindingSpec,
    ExchangeSpec,
    Permissions,
    QueueSpec,
    TopicPermission,
    Topology,
    UserSpec,
    participant_user,
    plan,
)

__all__ = [
    "PARTICIPANT_TAG",
    "RETRY_DELAY_EXCHANGE",
    "ApplyReport",
    "BindingSpec",
    "Change",
    "CredentialProblem",
    "CredentialState",
    "Difference",
    "ExchangeSpec",
    "Observed",
    "Permissions",
    "QueueSpec",
    "TopicPermission",
    "Topology",
    "UserSpec",
    "apply",
    "check_credentials",
    "compare",
    "credentials_match",
    "credentials_path",
    "credentials_url",
    "diff",
    "observe",
    "participant_user",
    "plan",
    "read_credentials_url",
    "rotation_hint",
    "write_credentials",
]
