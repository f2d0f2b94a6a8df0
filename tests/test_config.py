from __future__ import annotations

from pathlib import Path

import pytest

from tenantry.config import EmailBackend, Environment, Settings, SettingsError, check_environment


def settings(**values: object) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[arg-type]


class TestDefaults:
    def test_embedded_database_lives_in_the_data_dir(self, tmp_path: Path) -> None:
        url = settings(data_dir=tmp_path).resolved_database_url
        assert url == f"sqlite:///{tmp_path.resolve() / 'tenantry.db'}"

    def test_migration_url_defaults_to_the_database_url(self) -> None:
        s = settings(database_url="postgresql+asyncpg://app@db/t")
        assert s.resolved_migration_database_url == "postgresql+asyncpg://app@db/t"
        s = settings(
            database_url="postgresql+asyncpg://app@db/t",
            migration_database_url="postgresql+asyncpg://owner@db/t",
        )
        assert s.resolved_migration_database_url == "postgresql+asyncpg://owner@db/t"

    def test_read_from_prefixed_environment(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("TENANTRY_DB_POOL_SIZE", "3")
        monkeypatch.setenv("TENANTRY_EMAIL_BACKEND", "console")
        s = settings()
        assert s.db_pool_size == 3 and s.email_backend is EmailBackend.CONSOLE

    def test_dotenv_is_read(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.chdir(tmp_path)
        (tmp_path / ".env").write_text("TENANTRY_PUBLIC_URL=https://example.test\n")
        assert Settings().public_url == "https://example.test"


class TestProductionGuard:
    def test_dev_defaults_are_refused_in_one_message_naming_each(self) -> None:
        with pytest.raises(SettingsError) as refused:
            check_environment(settings(env=Environment.PROD))
        message = str(refused.value)
        for name in (
            "TENANTRY_EMAIL_BACKEND",
            "TENANTRY_SECRET_KEY",
            "TENANTRY_SIGNING_KEY",
            "TENANTRY_PUBLIC_URL",
        ):
            assert name in message

    def test_production_settings_pass(self) -> None:
        check_environment(
            settings(
                env=Environment.PROD,
                email_backend=EmailBackend.SMTP,
                smtp_url="smtp://mail.example.test:587",
                secret_key="x" * 48,
                signing_key="-----BEGIN PRIVATE KEY-----...",
                public_url="https://tenantry.example.test",
            )
        )

    def test_dev_allows_everything(self) -> None:
        check_environment(settings())
