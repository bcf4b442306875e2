"""What the marketplace plugs into jobs from `MarketplaceConfig.ready`."""

from __future__ import annotations


def connect() -> None:
    """Registers the marketplace's providers with apps.jobs.providers (filled in by uses)."""
