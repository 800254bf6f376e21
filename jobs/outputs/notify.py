"""Tell people how the night went: its outcome posted to a webhook and/or mailed (issue #14).

`[notify]` (jobs/config.py NotifySettings) says where. The outcome is one JSON document: the
night, its status (`succeeded`, `succeeded_with_warnings`, `failed`), the gates, the
invariants, money at risk per verdict and currency, the pending refunds' decisions where the
run made them, the report's path, and a Slack-compatible `text` field (what the mail's body
says too). Secrets come from the environment variables the config names.

Sending never fails the night: each channel has `timeout_seconds`, and any error is logged as
a `notify_failed` warning and otherwise ignored.
"""

from __future__ import annotations

import json
import logging
import os
import smtplib
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from email.message import EmailMessage

from jobs.config import NotifySettings
from jobs.engine.engine import Engine, records
from jobs.logs import json_value
from jobs.outputs.outcome import night_status
from jobs.outputs.summary import summary_fields

log = logging.getLogger("refund_recon")


def night_finished(settings: NotifySettings, result, warehouse: str) -> None:
    """Send the outcome of a published night (`result`: the pipeline's RunResult)."""
    if _configured(settings):
        with _never_failing("outcome"):
            send(settings, finished_outcome(result, warehouse))


def night_failed(settings: NotifySettings, as_of: str, message: str, **fields) -> None:
    """Send the outcome of a night that failed."""
    if _configured(settings):
        with _never_failing("outcome"):
            send(settings, failed_outcome(as_of, message, **fields))


def finished_outcome(result, warehouse: str) -> dict:
    """The outcome of a published night, from the run's own tables."""
    summary = summary_fields(result)
    gates = records(
        result.runner.engine, "SELECT gate, source, passed, message FROM gate_results ORDER BY gate, source"
    )
    failed_gates = [gate for gate in gates if gate["passed"] is False]  # NULL: not judged (no history)
    outcome = {
        "as_of": summary["as_of"],
        "run_id": summary["run_id"],
        "status": night_status(summary["warnings"]),
        "warnings": summary["warnings"],
        "gates": {"checked": len(gates), "failed": failed_gates},
        "invariants": summary["invariants"],
        "verdicts": [
            {"verdict": verdict, "currency": currency} | money
            for verdict, currencies in summary["verdicts"].items()
            for currency, money in currencies.items()
        ],
        "decisions": _decisions(result.runner.engine),
        "report": summary["report_paths"][0] if summary["report_paths"] else None,
        "warehouse": warehouse,
    }
    return outcome | {"text": _text(outcome)}


def failed_outcome(as_of: str, message: str, **fields) -> dict:
    """The outcome of a night that failed, with what the failure carried (its run_id...)."""
    outcome = {"as_of": as_of, "run_id": fields.get("run_id"), "status": "failed", "message": message}
    return outcome | {"text": _text(outcome)}


def send(settings: NotifySettings, outcome: dict) -> None:
    """Post `outcome` to the webhook and mail it, as configured and as `when` allows; log any failure."""
    if settings.when == "problems" and outcome["status"] == "succeeded":
        return
    channels: list[tuple[str, Callable[[NotifySettings, dict], None]]] = []
    if settings.webhook_url_env:
        channels.append(("webhook", post_webhook))
    if settings.smtp_host:
        channels.append(("mail", send_mail))
    for channel, deliver in channels:
        with _never_failing(channel):
            deliver(settings, outcome)
            log.info("notify: %s sent", channel, extra={"event": "notify_sent", "channel": channel})


@contextmanager
def _never_failing(what: str) -> Iterator[None]:
    """Log any error of the block as a `notify_failed` warning, and go on: the night is not failed."""
    try:
        yield
    except Exception as error:
        log.warning(
            "notify: the %s was not sent (%s)", what, _reason(error), extra={"event": "notify_failed", "channel": what}
        )


def post_webhook(settings: NotifySettings, outcome: dict) -> None:
    """POST the outcome as JSON to the URL in the environment variable `webhook_url_env`."""
    url = _secret(settings.webhook_url_env)
    if not url.startswith(("https://", "http://")):
        raise ValueError(f"the URL in {settings.webhook_url_env} is not an http(s) URL")
    body = json.dumps(outcome, default=json_value, ensure_ascii=False).encode("utf-8")
    request = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": "application/json; charset=utf-8"}
    )
    with urllib.request.urlopen(request, timeout=settings.timeout_seconds) as response:
        response.read()


def send_mail(settings: NotifySettings, outcome: dict) -> None:
    """Mail the outcome's text (its first line the subject) by SMTP, STARTTLS and login as configured."""
    assert settings.smtp_host, "send_mail is called only with notify.smtp_host set"
    message = EmailMessage()
    message["Subject"], message["From"], message["To"] = (
        outcome["text"].splitlines()[0],
        settings.mail_from,
        ", ".join(settings.mail_to),
    )
    message.set_content(outcome["text"] + "\n")
    with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=settings.timeout_seconds) as smtp:
        if settings.smtp_starttls:
            smtp.starttls()
        if settings.smtp_user:
            smtp.login(settings.smtp_user, _secret(settings.smtp_password_env) if settings.smtp_password_env else "")
        smtp.send_message(message)


def _configured(settings: NotifySettings) -> bool:
    return bool(settings.webhook_url_env or settings.smtp_host)


def _secret(variable: str | None) -> str:
    value = os.environ.get(variable or "")
    if not value:
        raise LookupError(f"the environment variable {variable} is not set")
    return value


def _reason(error: Exception) -> str:
    """Why a channel failed, in a line, never showing the webhook URL (its token is a secret)."""
    if isinstance(error, urllib.error.HTTPError):
        return f"HTTP {error.code} {error.reason}"
    if isinstance(error, urllib.error.URLError):
        return f"cannot reach the webhook: {error.reason}"
    return f"{type(error).__name__}: {error}".splitlines()[0]


def _decisions(engine: Engine) -> list[dict] | None:
    """Pending refunds per decision and currency, where the run decided them (`pending_refund_decisions`)."""
    try:
        return records(
            engine,
            "SELECT decision, currency, count(*) AS refunds, sum(refund_amount) AS amount "
            "FROM pending_refund_decisions GROUP BY decision, currency ORDER BY decision, currency",
        )
    except engine.query_errors:  # no such table: the run decided none
        return None


def _text(outcome: dict) -> str:
    """The outcome for a person: a headline, then one line per part."""
    status = outcome["status"].replace("_", " ")
    lines = [
        f"refund-recon night {outcome['as_of']}: {status}"
        + (f" (run {outcome['run_id']})" if outcome["run_id"] else "")
    ]
    if outcome["status"] == "failed":
        return "\n".join([*lines, outcome["message"]])
    gates = outcome["gates"]
    lines.append(
        f"Gates: {len(gates['failed'])} of {gates['checked']} failed"
        + "".join(f"\n  ⚠ {gate['message']}" for gate in gates["failed"])
    )
    lines += [f"⚠ {warning['message']}" for warning in outcome["warnings"] if warning["kind"] != "gate"]
    lines.append(f"Invariants: {outcome['invariants']['passed']}/{outcome['invariants']['checked']} passed")
    lines.append(
        "At risk: "
        + "; ".join(
            f"{item['verdict']} {item['currency']} {item['amount_at_risk']:,.2f} ({item['refunds']:,} refunds)"
            for item in outcome["verdicts"]
        )
    )
    if outcome["decisions"] is not None:
        lines.append(
            "Pending refunds: "
            + (
                "; ".join(
                    f"{item['decision']} {item['refunds']:,} ({item['currency']} {item['amount']:,.2f})"
                    for item in outcome["decisions"]
                )
                or "none"
            )
        )
    if outcome["report"]:
        lines.append(f"Report: {outcome['report']}")
    return "\n".join(lines)
