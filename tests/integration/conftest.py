"""Fixtures for broker tests: a vhost with the hub's topology applied."""

from __future__ import annotations

import pytest

from liaison.directory import load_directory
from liaison.settings import Settings
from liaison.topology import apply


@pytest.fixture
def hub_settings(settings: Settings) -> Settings:
    """Settings whose vhost carries the full topology of the bundled directory."""
    apply(settings, load_directory(None))
    return settings
