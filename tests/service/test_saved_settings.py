"""Settings saved by an owner and secrets at rest, on SQLite and PostgreSQL: a saved mail server
is used by the next delivery without a restart, in this process and in another one; secrets
(sources' signing secrets, saved passwords) are stored sealed and never in plain text; secrets
an earlier version stored in plain text are sealed at start-up; a changed key is reported, not
a crash."""

from __future__ import annotations

import hashlib
import hmac

import pytest
import sqlalchemy as sa

from opsloop.core.errors import Conflict, InvalidInput
from opsloop.store.schema import settings_values, sources
from tests.conftest import OpsFactory, lead_playbook
from tests.leads import settle
from tests.sinks import SmtpSink

KEY = "the installation's shared key"
SIGNED = """\
name: forms
kind: webhook
verify: hmac
signed: body
"""


def test_a_mail_server_saved_here_is_used_by_the_next_delivery_in_every_process(
    make_ops: OpsFactory, database_url: str, smtp_sink: SmtpSink
) -> None:
    ops = make_ops(database_url, playbooks=[lead_playbook()], encryption_key=KEY)
    worker = make_ops(database_url, encryption_key=KEY)  # started before the change
    worker.ctx.live.ttl = 0  # it would look again within a second; the test does not wait
    assert worker.settings.smtp_port == 25

    ops.configuration.save(
        "smtp",
        {"smtp_host": "127.0.0.1", "smtp_port": str(smtp_sink.port), "smtp_password": "pw-1"},
        actor="ana@example.com",
    )

    assert (worker.settings.smtp_host, worker.settings.smtp_port) == ("127.0.0.1", smtp_sink.port)
    assert worker.settings.smtp_password is not None
    assert worker.settings.smtp_password.get_secret_value() == "pw-1"
    [email] = settle(ops, 1)
    worker.run_jobs()
    assert worker.deliver.get_action(email["id"])["status"] == "delivered"
    assert [m.rcpt_tos for m in smtp_sink.messages] == [["lead1@example.com"]]
    with ops.db.read() as conn:
        stored = dict(conn.execute(sa.select(settings_values.c.key, settings_values.c.value)).all())
    assert stored["smtp_port"] == str(smtp_sink.port)
    assert stored["smtp_password"].startswith("fernet:")
    assert "pw-1" not in stored["smtp_password"]


def test_a_start_up_setting_wins_and_a_bad_value_changes_nothing(
    make_ops: OpsFactory, database_url: str
) -> None:
    ops = make_ops(database_url, smtp_host="mail.internal")
    changed = ops.configuration.save(
        "smtp", {"smtp_host": "elsewhere.example.com", "smtp_from": "a@b.c"}, actor="ana"
    )
    assert changed == ["smtp_from"], "the start-up host is not saved over"
    assert (ops.settings.smtp_host, ops.settings.smtp_from) == ("mail.internal", "a@b.c")
    with pytest.raises(InvalidInput) as refused:
        ops.configuration.save("llm", {"llm__url": "ftp://x", "llm__model": "m"}, actor="ana")
    assert [e.field for e in refused.value.errors] == ["llm__url"]
    assert "is not an http:// or https:// URL" in refused.value.errors[0].message
    assert ops.settings.llm.model is None


def test_source_secrets_are_sealed_and_old_plain_ones_are_sealed_at_start_up(
    make_ops: OpsFactory, database_url: str
) -> None:
    ops = make_ops(database_url, encryption_key=KEY)
    ops.ingest.add_source(SIGNED, "forms.yaml", secret="s3cret-forms", actor="ana")
    with ops.db.read() as conn:
        [stored] = conn.execute(sa.select(sources.c.secret)).scalars()
    assert stored.startswith("fernet:")
    assert "s3cret" not in stored
    assert ops.ingest.get_source("forms").secret == "s3cret-forms"
    body = b'{"type": "form.submitted", "subject": "lead:1"}'
    signature = hmac.new(b"s3cret-forms", body, hashlib.sha256).hexdigest()
    received = ops.ingest.receive_hook("forms", body, {"X-OpsLoop-Signature": signature})
    assert [a.status for a in received.ingested.accepted] == ["created"]

    # As an earlier version left it: the secret in plain text. The next start seals it.
    with ops.db.transaction() as tx:
        tx.conn.execute(sa.update(sources).values(secret="s3cret-forms"))
    restarted = make_ops(database_url, encryption_key=KEY)
    with restarted.db.read() as conn:
        [stored] = conn.execute(sa.select(sources.c.secret)).scalars()
    assert stored.startswith("fernet:")
    assert restarted.ingest.get_source("forms").secret == "s3cret-forms"

    # Another key cannot open it: the source says it has no secret (its deliveries are refused
    # until the secret is entered again), and everything else works.
    stranger = make_ops(database_url, encryption_key="a different key")
    assert stranger.ingest.get_source("forms").secret is None
    assert [s.name for s in stranger.ingest.list_sources()] == ["forms"]


def test_a_process_without_the_key_refuses_to_seal_with_a_new_one(
    make_ops: OpsFactory, database_url: str
) -> None:
    ops = make_ops(database_url)  # its key: a file in its own data folder
    ops.ingest.add_source(SIGNED, "forms.yaml", secret="s3cret-forms", actor="ana")
    elsewhere = make_ops(database_url)  # another data folder, so no key file

    with pytest.raises(Conflict) as refused:
        elsewhere.ingest.add_source(
            SIGNED.replace("forms", "typeform"), "t.yaml", secret="other", actor="ana"
        )

    assert "holds secrets sealed with a key this process does not have" in str(refused.value)
    assert "OPSLOOP_DATA_DIR" in str(refused.value)
    assert "OPSLOOP_ENCRYPTION_KEY" in str(refused.value)
    assert [s.name for s in ops.ingest.list_sources()] == ["forms"]


@pytest.mark.parametrize(
    ("group", "field", "value", "says"),
    [
        ("general", "public_url", "javascript:alert(1)", "is not an http:// or https:// URL"),
        ("chat", "notify_url", "file:///etc/passwd", "is not an http:// or https:// URL"),
        ("smtp", "smtp_port", "99999999999", "less than or equal to 65535"),
        ("smtp", "smtp_host", "evil\r\nRCPT TO:<x@y>", "must be one line"),
        ("smtp", "smtp_host", "a" * 5000, "is not a host name"),
        ("smtp", "smtp_from", "x\r\nBcc: victim@example.com", "must be one line"),
        ("smtp", "smtp_from", "nobody", "is not an address"),
    ],
)
def test_hostile_values_are_refused_by_name_and_nothing_is_saved(
    make_ops: OpsFactory, sqlite_url: str, group: str, field: str, value: str, says: str
) -> None:
    ops = make_ops(sqlite_url)
    with pytest.raises(InvalidInput) as refused:
        ops.configuration.save(group, {field: value}, actor="ana")
    [error] = refused.value.errors
    assert (error.field, says in error.message) == (field, True), error.message
    assert ops.configuration.save(group, {}, actor="ana") == [], "nothing was saved"
