"""The ScheduledTask API's names, as the plugin needs them without the pydantic models
(cronwarden.api.models defines them; tests/unit/plugin/test_artifact.py keeps the two
equal). The single-file plugin (hack/plugin_zipapp.py) also serves these as
cronwarden.api.models to the pure core modules it carries."""

from __future__ import annotations

GROUP = "cronwarden.io"
VERSION = "v1alpha1"
KIND = "ScheduledTask"
PLURAL = "scheduledtasks"
API_VERSION = f"{GROUP}/{VERSION}"
DEFAULT_TIME_ZONE = "Etc/UTC"
