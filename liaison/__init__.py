"""Liaison: the hub that carries the Ministry's traffic between institutions."""

from liaison.errors import BrokerError, ConfigError, ContractError, DirectoryError, LiaisonError
from liaison.settings import Settings, load_settings

__all__ = [
    "BrokerError",
    "ConfigError",
    "ContractError",
    "DirectoryError",
    "LiaisonError",
    "Settings",
    "load_settings",
]
