"""Provisioning (installed as stockpipe.provision): `stockpipe init` and the compose init container."""

from stockpipe.provision.resources import Outcome, Provisioner, ProvisionError

__all__ = ["Outcome", "ProvisionError", "Provisioner"]
