"""The night tells people (issue #14): `[notify]` posts the outcome to a webhook (JSON with a
Slack-compatible `text`) and mails it; a failed notification is logged and never fails or
delays the night; secrets come from the environment. Tested against a local HTTP server and a
local SMTP server started here."""

from __future__ import annotations

import base64
import json
import socketserver
import threading
import time
from email import message_from_bytes
from email.policy import default as email_policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner
from exports import purchase, refund, write_exports

from jobs.cli import main
from jobs.config import ConfigError, NotifySettings, load_settings
from jobs.engine.engine import DuckDBEngine
from jobs.outputs import notify

NIGHT = ["--as-of", "2026-03-31"]
TOKEN = "T0KEN-s3cret"


# --- a local webhook and a local mail server ---------------------------------------------------


class Webhook:
    """An HTTP server on 127.0.0.1 answering each POST with `status` after `delay` seconds."""

    def __init__(self, status: int = 200, delay: float = 0.0):
        self.bodies: list[dict] = []
        webhook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                webhook.bodies.append(
                    {"path": self.path, "type": self.headers["Content-Type"], "json": json.loads(body)}
                )
                time.sleep(delay)
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/{TOKEN}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class MailServer:
    """Just enough SMTP (EHLO, AUTH PLAIN, MAIL, RCPT, DATA, QUIT) to receive one message."""

    def __init__(self):
        self.messages: list[dict] = []
        mail = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self):
                envelope = {"rcpt": [], "auth": None}
                self.say("220 localhost test SMTP")
                while line := self.rfile.readline().decode().rstrip("\r\n"):
                    verb = line.split(" ")[0].upper()
                    if verb == "EHLO":
                        self.say("250-localhost", "250 AUTH PLAIN")
                    elif verb == "AUTH":
                        envelope["auth"] = base64.b64decode(line.split(" ")[2]).split(b"\0")[1:]
                        self.say("235 ok")
                    elif verb == "MAIL":
                        envelope["from"] = line
                        self.say("250 ok")
                    elif verb == "RCPT":
                        envelope["rcpt"].append(line)
                        self.say("250 ok")
                    elif verb == "DATA":
                        self.say("354 go on")
                        data = b""
                        while (chunk := self.rfile.readline()) != b".\r\n":
                            data += chunk
                        mail.messages.append(envelope | {"message": message_from_bytes(data, policy=email_policy)})
                        self.say("250 queued")
                    elif verb == "QUIT":
                        self.say("221 bye")
                        return
                    else:
                        self.say("250 ok")

            def say(self, *lines):
                self.wfile.write("".join(f"{line}\r\n" for line in lines).encode())

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def webhook():
    servers = []

    def start(status: int = 200, delay: float = 0.0) -> Webhook:
        servers.append(Webhook(status, delay))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


@pytest.fixture
def mail_server():
    server = MailServer()
    yield server
    server.close()


def a_night(folder: Path) -> Path:
    """R1 compliant, R2 past the window (100.00 USD at risk); its freshness gates fail (warnings)."""
    return write_exports(
        folder,
        purchases=[purchase(order_id="O1"), purchase(order_id="O2", account_id="A2", entity_id="E2")],
        refunds=[
            refund(refund_id="R1", order_id="O1"),
            refund(
                refund_id="R2", order_id="O2", requested_at="2026-03-07 10:00:00", processed_at="2026-03-08 10:00:00"
            ),
        ],
    )


def run_night(tmp_path: Path, notify_toml: str, folder: Path | None = None):
    config = tmp_path / "refund-recon.toml"
    config.write_text("[outputs]\nexports = false\n[notify]\n" + notify_toml, encoding="utf-8")
    started = time.monotonic()
    result = CliRunner().invoke(
        main,
        [
            "run",
            "--input",
            str(folder or a_night(tmp_path / "in")),
            "--db",
            str(tmp_path / "recon.duckdb"),
            "--config",
            str(config),
            *NIGHT,
        ],
    )
    return result, time.monotonic() - started


# --- what is sent ------------------------------------------------------------------------------


def test_a_night_with_warnings_is_posted_as_json_with_a_text_and_mailed(tmp_path, webhook, mail_server, monkeypatch):
    hook = webhook()
    monkeypatch.setenv("RR_WEBHOOK", hook.url)
    monkeypatch.setenv("RR_SMTP_PASSWORD", "mail-pa55")
    result, _ = run_night(
        tmp_path,
        f"""webhook_url_env = "RR_WEBHOOK"
smtp_host = "127.0.0.1"
smtp_port = {mail_server.port}
smtp_starttls = false
smtp_user = "refund-recon"
smtp_password_env = "RR_SMTP_PASSWORD"
mail_from = "refund-recon@example.com"
mail_to = ["finance@example.com", "risk@example.com"]
""",
    )
    assert result.exit_code == 0, result.output
    (posted,) = hook.bodies
    outcome = posted["json"]
    assert posted["path"] == f"/hooks/{TOKEN}" and posted["type"].startswith("application/json")
    assert (outcome["as_of"], outcome["status"]) == ("2026-03-31", "succeeded_with_warnings")
    assert outcome["gates"]["failed"] and all(not gate["passed"] for gate in outcome["gates"]["failed"])
    assert outcome["invariants"]["passed"] == outcome["invariants"]["checked"] > 0
    assert {"verdict": "breach", "currency": "USD", "refunds": 1, "amount_at_risk": "100.00"} in outcome["verdicts"]
    assert outcome["report"].endswith(".html") and Path(outcome["report"]).exists()
    assert outcome["text"].startswith("refund-recon night 2026-03-31: succeeded with warnings")
    assert "breach USD 100.00 (1 refunds)" in outcome["text"] and "Invariants: " in outcome["text"]
    assert "Freshness of purchases" in outcome["text"]
    (mail,) = mail_server.messages
    assert mail["auth"] == [b"refund-recon", b"mail-pa55"]
    assert len(mail["rcpt"]) == 2
    assert mail["message"]["Subject"] == outcome["text"].splitlines()[0]
    assert mail["message"].get_content().replace("\r\n", "\n").strip() == outcome["text"]
    assert "notify: webhook sent" in result.stderr and "notify: mail sent" in result.stderr


def test_a_failed_night_is_posted_with_its_message_and_run_id(tmp_path, webhook, monkeypatch):
    hook = webhook()
    monkeypatch.setenv("RR_WEBHOOK", hook.url)
    folder = a_night(tmp_path / "in")
    (folder / "refunds.csv").write_text("refund_id\nR1\n", encoding="utf-8")
    result, _ = run_night(tmp_path, 'webhook_url_env = "RR_WEBHOOK"\nwhen = "problems"\n', folder)
    assert result.exit_code == 1
    (posted,) = hook.bodies
    outcome = posted["json"]
    assert (outcome["status"], outcome["as_of"]) == ("failed", "2026-03-31") and outcome["run_id"]
    assert "missing required column" in outcome["message"] and outcome["message"] in outcome["text"]


@pytest.mark.parametrize(
    "status, when, sent",
    [
        ("succeeded", "always", True),
        ("succeeded", "problems", False),
        ("succeeded_with_warnings", "problems", True),
        ("failed", "problems", True),
    ],
)
def test_when_says_which_nights_are_sent(monkeypatch, status, when, sent):
    posted = []
    monkeypatch.setattr(notify, "post_webhook", lambda settings, outcome: posted.append(outcome))
    notify.send(NotifySettings(when=when, webhook_url_env="RR_WEBHOOK"), {"status": status})
    assert bool(posted) == sent


def test_decisions_are_counted_where_the_run_made_them():
    con = duckdb.connect()
    assert notify._decisions(DuckDBEngine(con)) is None
    con.execute(
        "CREATE TABLE pending_refund_decisions (refund_id VARCHAR, decision VARCHAR, currency VARCHAR, "
        "refund_amount DECIMAL(18,2))"
    )
    con.execute(
        "INSERT INTO pending_refund_decisions VALUES ('R1', 'hold', 'USD', 10.00), "
        "('R2', 'hold', 'USD', 5.50), ('R3', 'decline', 'CNY', 1999.00)"
    )
    assert [
        (row["decision"], row["currency"], row["refunds"], str(row["amount"]))
        for row in notify._decisions(DuckDBEngine(con))
    ] == [("decline", "CNY", 1, "1999.00"), ("hold", "USD", 2, "15.50")]


# --- a notification never fails or delays the night ----------------------------------------------


@pytest.mark.parametrize("case", ["http 500", "hangs past the timeout", "variable unset", "not http"])
def test_a_failed_notification_is_logged_and_the_night_still_succeeds_on_time(tmp_path, webhook, monkeypatch, case):
    hook = webhook(status=500 if case == "http 500" else 200, delay=30.0 if case == "hangs past the timeout" else 0)
    if case == "not http":
        monkeypatch.setenv("RR_WEBHOOK", f"file:///etc/passwd?{TOKEN}")
    elif case != "variable unset":
        monkeypatch.setenv("RR_WEBHOOK", hook.url)
    else:
        monkeypatch.delenv("RR_WEBHOOK", raising=False)
    result, seconds = run_night(tmp_path, 'webhook_url_env = "RR_WEBHOOK"\ntimeout_seconds = 1\n')
    assert result.exit_code == 0, result.output
    assert "refund-recon run " in result.stdout  # the summary as usual
    warning = [line for line in result.stderr.splitlines() if "notify: the webhook was not sent" in line]
    assert len(warning) == 1 and " WARNING " in warning[0], result.stderr
    assert TOKEN not in result.output
    if case == "hangs past the timeout":
        assert seconds < 20, seconds  # the night waited the 1-second timeout, not the server's 30 seconds


def test_the_mail_server_not_answering_is_logged_and_the_night_succeeds(tmp_path):
    import socket

    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    result, _ = run_night(
        tmp_path,
        f'smtp_host = "127.0.0.1"\nsmtp_port = {port}\nmail_from = "a@example.com"\n'
        f'mail_to = ["b@example.com"]\ntimeout_seconds = 1\n',
    )
    assert result.exit_code == 0, result.output
    assert "notify: the mail was not sent (ConnectionRefusedError" in result.stderr


# --- secrets come from the environment ---------------------------------------------------------


@pytest.mark.parametrize(
    "toml, fragment",
    [
        (f'webhook_url = "https://hooks.example.com/{TOKEN}"', "secrets come from the environment"),
        ('smtp_password = "hunter2"', "secrets come from the environment"),
        ('webhook_url_env = "https://hooks.example.com/x"', "must name an environment variable"),
        ('when = "sometimes"', 'must be "always" or "problems"'),
        ("timeout_seconds = 0", "must be a whole number from 1 to 60"),
        ("smtp_port = 70000", "must be a whole number from 1 to 65535"),
        ('smtp_host = "smtp.example.com"', "needs notify.mail_from and notify.mail_to"),
        ('mail_to = "finance"', "must be a list of mail addresses"),
        ("colour = 1", "unknown config key 'notify.colour'"),
    ],
)
def test_notify_settings_are_checked_and_secrets_are_refused(tmp_path, toml, fragment):
    config = tmp_path / "refund-recon.toml"
    config.write_text(f"[notify]\n{toml}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=fragment):
        load_settings(config)


def test_where_the_outcome_is_sent_is_not_part_of_the_settings_fingerprint(tmp_path):
    config = tmp_path / "refund-recon.toml"
    config.write_text('[notify]\nwebhook_url_env = "RR_WEBHOOK"\n', encoding="utf-8")
    assert load_settings(config).fingerprint() == load_settings(None).fingerprint()
