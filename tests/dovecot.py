"""A real IMAP server for tests: Dovecot (Debian's dovecot-imapd), started on a free loopback
port with a configuration of its own in a temporary directory, and stopped after.

Plain IMAP without TLS and a passwd-file user. As root, mail is kept by the `dovecot` user
(Dovecot refuses mail access as root); otherwise everything runs as the current user. When
Dovecot is not installed the test is skipped with the reason printed — except in CI, which
installs it, where that is a failure."""

from __future__ import annotations

import grp
import imaplib
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.sinks import free_port

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"
USER = "support"
PASSWORD = "imap-" + "test-pass"  # test-only


class Dovecot:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.host = "127.0.0.1"
        self.port = free_port()
        self.user = USER
        self.password = PASSWORD
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def log(self) -> str:
        path = self.root / "dovecot.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def start(self) -> None:
        (self.root / "run").mkdir()
        (self.root / "mail").mkdir()
        (self.root / "users").write_text(f"{USER}:{{PLAIN}}{PASSWORD}\n")
        if os.geteuid() == 0:
            login_user, internal_user, internal_group = "dovenull", "dovecot", "dovecot"
            entry = pwd.getpwnam("dovecot")
            uid, gid = entry.pw_uid, entry.pw_gid
            os.chown(self.root / "mail", uid, gid)
        else:
            uid, gid = os.geteuid(), os.getegid()
            login_user = internal_user = pwd.getpwuid(uid).pw_name
            internal_group = grp.getgrgid(gid).gr_name
        config = self.root / "dovecot.conf"
        config.write_text(
            CONFIG.format(
                root=self.root,
                port=self.port,
                uid=uid,
                gid=gid,
                login_user=login_user,
                internal_user=internal_user,
                internal_group=internal_group,
                # Only root may chroot; Dovecot's defaults otherwise.
                chroot_anvil="empty" if os.geteuid() == 0 else "",
                chroot_login="login" if os.geteuid() == 0 else "",
            )
        )
        with (self.root / "stderr.log").open("wb") as stderr:  # the child keeps its own copy
            self.process = subprocess.Popen(
                [DOVECOT, "-F", "-c", str(config)], stdout=subprocess.DEVNULL, stderr=stderr
            )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                stderr = (self.root / "stderr.log").read_text(errors="replace")
                pytest.fail(f"dovecot exited: {stderr}\n{self.log}")
            try:
                self.client().logout()  # the greeting comes before auth is ready: log in
                return
            except (OSError, imaplib.IMAP4.error):
                time.sleep(0.1)
        pytest.fail(f"dovecot did not answer on port {self.port}:\n{self.log}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)

    def client(self) -> imaplib.IMAP4:
        conn = imaplib.IMAP4(self.host, self.port, timeout=10)
        conn.login(self.user, self.password)
        return conn

    def append(self, *messages: bytes, mailbox: str = "INBOX") -> None:
        """Put messages in a mailbox (created if missing), as a mail client would."""
        conn = self.client()
        try:
            if mailbox != "INBOX":
                conn.create(mailbox)
            for message in messages:
                status, detail = conn.append(mailbox, None, None, message)
                assert status == "OK", detail
        finally:
            conn.logout()


CONFIG = """\
protocols = imap
listen = 127.0.0.1
base_dir = {root}/run
state_dir = {root}/run/state
log_path = {root}/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
default_login_user = {login_user}
default_internal_user = {internal_user}
default_internal_group = {internal_group}
first_valid_uid = 1
mail_location = maildir:{root}/mail/%u
service anvil {{
  chroot = {chroot_anvil}
}}
service imap-login {{
  chroot = {chroot_login}
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
}}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/users
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={root}/mail/%u
}}
"""


def dovecot_server() -> Iterator[Dovecot]:
    """Start Dovecot for one test (use it as a fixture's body)."""
    if not os.path.exists(DOVECOT):
        reason = "dovecot is not installed (Debian: apt-get install dovecot-imapd)"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; CI installs it")
        print(reason)
        pytest.skip(reason)
    # Not under pytest's tmp_path: its directories are private to this user (Dovecot's own
    # users must reach the mail) and deep (socket paths must stay under 108 bytes).
    root = Path(tempfile.mkdtemp(prefix="opsloop-imap-"))
    root.chmod(0o755)
    server = Dovecot(root)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)
