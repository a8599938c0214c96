"""Usage and spend alerts: thresholds per billing period, one alert per crossing.

    limit_for(rule, previous) -> Decimal | None     pure: the threshold in force
    evaluate_alerts(conn, now, sink) -> [Alert]     records crossings and emits their events
"""

from __future__ import annotations

from collector.alerts.rules import AlertRule, Metric, limit_for

__all__ = ["AlertRule", "Metric", "limit_for"]
