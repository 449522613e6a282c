"""Alerts: an optional webhook (``alerts.webhook_url``) called with a JSON body when validation
rejects or warns and when a job fails.

Delivery is best effort: a webhook that is down or slow (5 s timeout) is logged and never fails
the insert or the job that raised the alert. The URL may carry a token, so it is never logged.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import socket
import urllib.request
from typing import Any

from featurestore.config import Config

log = logging.getLogger(__name__)
TIMEOUT_SECONDS = 5.0


def send_alert(config: Config, event: str, payload: dict[str, Any]) -> bool:
    """POST ``{"event", "sent_at", "host", **payload}`` to the webhook; True if it answered 2xx."""
    url = config.get("alerts.webhook_url")
    if not url:
        return False
    body = json.dumps({"event": event, "sent_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                       "host": socket.gethostname(), **payload}, default=str).encode("utf-8")
    request = urllib.request.Request(url, data=body, method="POST",
                                     headers={"Content-Type": "application/json", "User-Agent": "featurestore"})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:  # noqa: S310 - URL from config
            return 200 <= response.status < 300
    except Exception as exc:  # noqa: BLE001 - alerts must never break the caller
        log.warning("alert %r was not delivered to the configured webhook: %s", event, type(exc).__name__)
        return False
