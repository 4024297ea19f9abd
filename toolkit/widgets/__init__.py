"""ipywidgets views over the public API, one per step of the job; no logic of their own.

    SetupWizard(config_path)      create-sync-pipe-config as a form
    ConfigViewer(config)          the effective config (secrets as references), Validate
    PlanExplorer(plan)            summary, filters, one object's diff, records and requests
    ResyncPanel(config, options)  Preview, then a confirm button showing the guard problems
    RealtimePanel(config)         set-startpoint, run until idle, start/stop, status, recent
                                  changes, lag and rate over time
    Finder(config, plan)          search both sides, page, pick, provision on demand, export
    MappingPreview(config)        one LDAP entry as the mapping makes it; what the schema refuses
    EndpointChecklist(config)     prepare-endpoint-server's checks per server

Every button's handler runs in Python, so `button.click()` drives a view headless (papermill).
"""

from __future__ import annotations

from toolkit.widgets.config_view import ConfigViewer
from toolkit.widgets.endpoints import EndpointChecklist
from toolkit.widgets.find import Finder
from toolkit.widgets.mapping_preview import MappingPreview
from toolkit.widgets.plan_explorer import PlanExplorer
from toolkit.widgets.realtime_panel import RealtimePanel
from toolkit.widgets.resync_panel import ResyncPanel
from toolkit.widgets.setup import SetupWizard, check_connections

__all__ = [
    "ConfigViewer",
    "EndpointChecklist",
    "Finder",
    "MappingPreview",
    "PlanExplorer",
    "RealtimePanel",
    "ResyncPanel",
    "SetupWizard",
    "check_connections",
]
