"""Where other features add to the studio without a core edit: a distribution registers, under
the entry-point group `gencore.studio`, a function `register(app, studio) -> list[str]` that adds
its endpoints to the FastAPI app and returns the URLs of scripts for the page. Each script calls
`window.genStudio.addPanel({id, title, domains, mount(element, context)})`; the page loads them
after its own and shows a panel for the runs it applies to. Attribute steering (issue #20) is
meant to plug in here."""
from __future__ import annotations

import logging
from importlib import metadata

GROUP = "gencore.studio"
log = logging.getLogger("gencore.studio")


def mount(app, studio) -> None:
    scripts: list[str] = []
    for ep in metadata.entry_points(group=GROUP):
        try:
            scripts += list(ep.load()(app, studio) or [])
        except Exception as exc:  # noqa: BLE001 -- a broken extension must not take the studio down
            log.warning("studio extension %s failed to load: %s: %s", ep.value, type(exc).__name__, exc)

    @app.get("/api/extensions")
    def listing():
        return {"scripts": scripts}
