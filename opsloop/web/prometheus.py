"""Prometheus text exposition of the ledger's counts, read fresh on each scrape."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

from opsloop.service import OpsLoop


class LedgerCollector(Collector):
    def __init__(self, service: OpsLoop) -> None:
        self.service = service

    def collect(self) -> Iterator[Metric]:
        ledger = self.service.ledger_counts()
        events, decisions, actions, held = (
            ledger.events,
            ledger.decisions,
            ledger.actions,
            ledger.held,
        )
        yield GaugeMetricFamily("opsloop_events", "Events stored in the ledger", value=events)
        family = GaugeMetricFamily(
            "opsloop_decisions", "Decisions by playbook and status", labels=["playbook", "status"]
        )
        for playbook, counts in decisions.items():
            for status, count in counts.items():
                family.add_metric([playbook, status], count)
        yield family
        family = GaugeMetricFamily(
            "opsloop_actions", "Actions by delivery status", labels=["status"]
        )
        for status, count in actions.items():
            family.add_metric([status], count)
        yield family
        yield GaugeMetricFamily(
            "opsloop_quarantine_held", "Refused inputs held in quarantine", value=held
        )


def render_prometheus(service: OpsLoop) -> tuple[bytes, str]:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(LedgerCollector(service))
    return generate_latest(registry), CONTENT_TYPE_LATEST
