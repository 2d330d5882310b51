"""Fixtures of the reliability suite: the hub's topology on the test's vhost, and the mode."""

from __future__ import annotations

import pytest

from liaison.directory import load_directory
from liaison.settings import Settings
from liaison.topology import apply
from tests.conftest import long_mode


@pytest.fixture
def long(request: pytest.FixtureRequest) -> bool:
    """Whether this run is the long one (``--long`` or ``LIAISON_PROOF_LONG=1``)."""
    return long_mode(request.config)


@pytest.fixture
def hub_settings(settings: Settings) -> Settings:
    """Settings whose vhost carries the full topology of the bundled directory."""
    apply(settings, load_directory(None))
    return settings
