"""The regions AWS has, as the installed botocore knows them: offline (its bundled endpoint data)."""

from __future__ import annotations

import functools


@functools.cache
def known_regions() -> frozenset[str]:
    """Every region of every partition in botocore's bundled endpoint data, read once. Empty if its
    data has another shape (then no region should be refused for being unknown)."""
    try:
        from botocore.loaders import create_loader

        data = create_loader().load_data("endpoints")
        return frozenset(region for partition in data["partitions"] for region in partition["regions"])
    except Exception:  # noqa: BLE001 - a check that cannot run must not stop the pipeline
        return frozenset()


__all__ = ["known_regions"]
