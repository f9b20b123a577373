"""What waits for the scheme owner: claims to approve or refuse, and overlapping claims to
settle."""

from __future__ import annotations

from mamori.earlywarning.models import Asset, AssetKind, AssetOverlap, AssetState


def approval_queue():
    """Address blocks and AS numbers awaiting approval, oldest first (a domain is verified by
    its DNS record, never approved)."""
    return (
        Asset.objects.filter(state=AssetState.PENDING)
        .exclude(kind=AssetKind.DOMAIN)
        .select_related("organisation", "created_by")
        .order_by("created_at", "pk")
    )


def open_overlaps():
    return (
        AssetOverlap.objects.filter(settled_at__isnull=True)
        .select_related("asset__organisation", "other__organisation")
        .order_by("found_at", "pk")
    )


def settled_overlaps(limit: int = 20):
    return (
        AssetOverlap.objects.filter(settled_at__isnull=False)
        .select_related("asset__organisation", "other__organisation", "settled_by")
        .order_by("-settled_at", "-pk")[:limit]
    )
