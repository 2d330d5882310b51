"""A test that lacks its broker, browser or ../shared fails unless skipping is asked for."""

from __future__ import annotations

import pytest

from tests.conftest import ALLOW_SKIP, missing_requirement


class TestMissingRequirement:
    def test_fails_by_default(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Without the opt-out variable a missing requirement fails, naming the variable."""
        monkeypatch.delenv(ALLOW_SKIP, raising=False)
        with pytest.raises(pytest.fail.Exception) as failed:
            missing_requirement("no RabbitMQ")
        assert "no RabbitMQ" in str(failed.value)
        assert f"{ALLOW_SKIP}=1" in str(failed.value)

    def test_ci_alone_does_not_skip(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """CI unset is not an opt-out: only the explicit variable is."""
        monkeypatch.delenv("CI", raising=False)
        monkeypatch.setenv(ALLOW_SKIP, "yes")
        with pytest.raises(pytest.fail.Exception):
            missing_requirement("no browser")

    def test_skips_when_opted_out(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """LIAISON_TEST_ALLOW_SKIP=1 turns the failure into a skip with the reason."""
        monkeypatch.setenv(ALLOW_SKIP, "1")
        with pytest.raises(pytest.skip.Exception) as skipped:
            missing_requirement("no ../shared")
        assert "no ../shared" in str(skipped.value)
