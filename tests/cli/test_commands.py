"""The command line as an operator uses it: migrate, token mint, and refusals with exit codes."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from tenantry.auth.jwt import Audience
from tenantry.cli.main import app
from tenantry.config import Settings

runner = CliRunner()


def env(data_dir: Path, database_url: str | None = None) -> dict[str, str]:
    values = {"TENANTRY_DATA_DIR": str(data_dir)}
    if database_url:
        values["TENANTRY_DATABASE_URL"] = database_url
    return values


class TestMigrate:
    def test_check_fails_before_and_passes_after(
        self, empty_database_url: str, tmp_path: Path
    ) -> None:
        before = runner.invoke(app, ["migrate", "--check"], env=env(tmp_path, empty_database_url))
        assert before.exit_code == 1
        assert "no revision" in before.output
        assert runner.invoke(app, ["migrate"], env=env(tmp_path, empty_database_url)).exit_code == 0
        after = runner.invoke(app, ["migrate", "--check"], env=env(tmp_path, empty_database_url))
        assert after.exit_code == 0, after.output

    def test_serve_refuses_to_start_on_drift(self, empty_database_url: str, tmp_path: Path) -> None:
        result = runner.invoke(app, ["serve"], env=env(tmp_path, empty_database_url))
        assert result.exit_code == 1
        assert "tenantry migrate" in result.output


class TestTokenMint:
    def test_prints_a_token_the_deployment_verifies(
        self, tmp_path: Path, database_url: str
    ) -> None:
        result = runner.invoke(
            app,
            ["token", "mint", "--audience", "platform", "--role", "admin", "--ttl", "2h"],
            env=env(tmp_path, database_url),
        )
        assert result.exit_code == 0, result.output
        from tenantry.app import build_token_issuer

        claims = build_token_issuer(Settings(_env_file=None, data_dir=tmp_path)).verify(  # type: ignore[call-arg]
            result.output.strip()
        )
        assert claims["aud"] == Audience.PLATFORM and claims["roles"] == ["admin"]
        assert claims["exp"] - claims["iat"] == 7200

    def test_service_token(self, tmp_path: Path, database_url: str) -> None:
        args = ["token", "mint", "--audience", "internal", "--role", "service"]
        assert runner.invoke(app, args, env=env(tmp_path, database_url)).exit_code == 0

    @pytest.mark.parametrize(
        "args",
        [
            ["--audience", "platform", "--role", "owner"],
            ["--audience", "tenant", "--role", "owner"],
            ["--audience", "platform", "--role", "admin", "--tenant", "ten_1"],
            ["--audience", "platform", "--role", "admin", "--ttl", "soon"],
            ["--audience", "nobody"],
        ],
    )
    def test_usage_errors_exit_2(self, args: list[str], tmp_path: Path) -> None:
        assert runner.invoke(app, ["token", "mint", *args], env=env(tmp_path)).exit_code == 2
