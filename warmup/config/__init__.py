"""Configuration: YAML files -> frozen values built from core types.

Every problem in every file is collected and raised at once as one
:class:`~warmup.core.errors.ConfigError`, each with file, line and dotted path.
"""

from warmup.config.files import EXAMPLE_CONFIG, load_config, resolve_config_path
from warmup.config.settings import Config, Settings

__all__ = ["EXAMPLE_CONFIG", "Config", "Settings", "load_config", "resolve_config_path"]
