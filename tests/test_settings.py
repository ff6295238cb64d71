"""Settings from the environment, files and opsloop.toml."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from opsloop.settings import Settings


def test_secrets_and_nested_settings_can_come_from_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "smtp").write_text("s3cret\n")
    (tmp_path / "sources.json").write_text(
        '{"Shop": {"secret": "abc", "signature_header": "X-Sig"}}'
    )
    monkeypatch.setenv("OPSLOOP_SMTP_PASSWORD_FILE", str(tmp_path / "smtp"))
    monkeypatch.setenv("OPSLOOP_SOURCES_FILE", str(tmp_path / "sources.json"))
    settings = Settings()
    assert settings.smtp_password is not None
    assert settings.smtp_password.get_secret_value() == "s3cret"
    assert list(settings.sources) == ["shop"], "source names are case-insensitive"
    assert settings.sources["shop"].signature_header == "X-Sig"
    assert "s3cret" not in repr(settings), "secrets are never printed"


def test_an_unreadable_secret_file_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPSLOOP_WEBHOOK_SECRET_FILE", "/nonexistent/secret")
    with pytest.raises(
        ValueError, match="OPSLOOP_WEBHOOK_SECRET_FILE: cannot read /nonexistent/secret"
    ):
        Settings()


def test_opsloop_toml_is_read_and_a_misspelled_key_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "opsloop.toml"
    config.write_text(
        'smtp_host = "mail.example.com"\n[notify_channels]\nsales = "https://chat.example.com/hook"\n'
    )
    monkeypatch.setenv("OPSLOOP_CONFIG", str(config))
    settings = Settings()
    assert settings.smtp_host == "mail.example.com"
    assert settings.notify_channels == {"sales": "https://chat.example.com/hook"}
    config.write_text('smtp_hots = "mail.example.com"\n')
    with pytest.raises(ValidationError, match="smtp_hots"):
        Settings()


def test_placeholder_secrets_are_refused_in_production(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPSLOOP_ENVIRONMENT", "production")
    monkeypatch.setenv("OPSLOOP_WEBHOOK_SECRET", "changeme")
    with pytest.raises(ValidationError, match="webhook_secret is a placeholder"):
        Settings()


def test_the_procrastinate_runtime_is_refused_on_sqlite_with_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="`procrastinate` runs on PostgreSQL"):
        Settings(data_dir=tmp_path, runtime="procrastinate")
    on_postgres = "postgresql+psycopg://opsloop@db/opsloop"
    assert Settings(database_url=on_postgres, runtime="procrastinate").runtime == "procrastinate"


def test_the_default_database_is_a_sqlite_file_in_the_data_dir(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "d")
    assert (
        settings.resolved_database_url == f"sqlite:///{(tmp_path / 'd' / 'opsloop.db').resolve()}"
    )
    assert settings.resolved_playbooks_dir == tmp_path / "d" / "playbooks"
    assert Settings(log_level="info").log_level == "INFO"


def test_a_settings_source_cannot_take_a_reserved_name_and_reads_durations() -> None:
    with pytest.raises(ValidationError, match="the source name 'api' is used by OpsLoop itself"):
        Settings(sources={"API": {"secret": "s3cret"}})
    shop = Settings(sources={"shop": {"tolerance": "2m", "dedupe_window": "0s"}}).sources["shop"]
    assert (shop.tolerance, shop.dedupe_window) == (timedelta(minutes=2), timedelta(0))
    assert (shop.signed, shop.allow_unsigned) == ("body", False)  # as settings sources were
    assert Settings().protected_traits == ["email", "phone"]
