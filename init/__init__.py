"""Provisioning (installed as stockpipe.provision): `stockpipe plan`, `stockpipe init` and its
teardown, and the compose init container. The pipeline is one list of resources (stack.py); each
kind lives in the module its name says: streams, tables, storage, messaging, functions, waits."""

from stockpipe.provision.model import Action, ProvisionError
from stockpipe.provision.stack import Outcome, Stack, resources

__all__ = ["Action", "Outcome", "ProvisionError", "Stack", "resources"]
