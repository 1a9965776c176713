"""Runs the shipped Argo CD health check and resource actions for ScheduledTasks
(helm/cronwarden/files/argocd/cronwarden.io/ScheduledTask/) the way Argo CD does:
Lua 5.1 (Argo CD embeds gopher-lua, a Lua 5.1), a fresh interpreter per call, the
object as the global `obj` (JSON null fields absent, arrays as 1-based tables, numbers
as Lua numbers), and the returned tables converted back to JSON, an empty table
keeping the type the input had at that place (Argo CD's cleanReturnedObj).

Shared by the unit tests on hand-made objects (tests/chart/test_argocd.py) and the
end-to-end test that runs them on live objects (tests/e2e/test_gitops.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lupa.lua51 as lua51

ROOT = Path(__file__).resolve().parents[1]
CUSTOMIZATIONS = (
    ROOT / "helm" / "cronwarden" / "files" / "argocd" / "cronwarden.io" / "ScheduledTask"
)
HEALTH = CUSTOMIZATIONS / "health.lua"
DISCOVERY = CUSTOMIZATIONS / "actions" / "discovery.lua"
ACTIONS = ("suspend", "resume")
# The health statuses Argo CD knows.
STATUSES = {"Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown"}


class LuaError(Exception):
    """The script raised an error (Argo CD shows its message and changes nothing)."""


def action_path(name: str) -> Path:
    return CUSTOMIZATIONS / "actions" / name / "action.lua"


def _runtime(obj: dict[str, Any]) -> Any:
    runtime = lua51.LuaRuntime(unpack_returned_tuples=True, register_eval=False)
    # Argo CD opens no io and no file loading: a script that needs them fails here too.
    runtime.execute("io, dofile, loadfile, require, package = nil, nil, nil, nil, nil")
    runtime.globals().obj = runtime.table_from(obj, recursive=True)
    return runtime


def _to_python(value: Any, like: Any = None) -> Any:
    """A Lua value as JSON-compatible Python; `like` is the input at the same place."""
    if lua51.lua_type(value) != "table":
        if isinstance(value, float) and value.is_integer():
            return int(value)
        return value
    items = list(value.items())
    if not items:
        return {} if isinstance(like, dict) else []
    keys = [k for k, _ in items]
    if all(isinstance(k, int) for k in keys) and sorted(keys) == list(range(1, len(keys) + 1)):
        like_list = like if isinstance(like, list) else []
        return [
            _to_python(value[i], like_list[i - 1] if i <= len(like_list) else None)
            for i in range(1, len(keys) + 1)
        ]
    like_dict = like if isinstance(like, dict) else {}
    return {str(k): _to_python(v, like_dict.get(str(k))) for k, v in items}


def run(script: Path, obj: dict[str, Any]) -> Any:
    runtime = _runtime(obj)
    try:
        result = runtime.execute(script.read_text())
    except lua51.LuaError as err:
        # The message, without lupa's Lua traceback.
        raise LuaError(str(err).splitlines()[0]) from None
    return _to_python(result, obj)


def health(obj: dict[str, Any]) -> dict[str, str]:
    """health.lua's verdict: {"status": ..., "message": ...}."""
    result: dict[str, str] = run(HEALTH, obj)
    assert isinstance(result, dict), f"health.lua returned {result!r}"
    assert result.get("status") in STATUSES, result
    return result


def discovery(obj: dict[str, Any]) -> dict[str, Any]:
    """The actions discovery.lua offers, by name."""
    result = run(DISCOVERY, obj)
    # An empty table comes back as an empty list: no actions.
    return result if isinstance(result, dict) else {}


def action(name: str, obj: dict[str, Any]) -> dict[str, Any]:
    """The object an action returns (Argo CD patches the live object to it)."""
    result: dict[str, Any] = run(action_path(name), obj)
    return result
