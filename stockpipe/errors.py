"""The one base class of every error the CLI reports as one line (no traceback).

Each subsystem raises its own subclass (settings, provisioning, the target, the producer, the
engine...), and the message alone must tell the user what is wrong and what to do.
"""

from __future__ import annotations


class StockpipeError(RuntimeError):
    """A failure the user can act on; ``str(error)`` is the whole message."""


__all__ = ["StockpipeError"]
