"""Where the browser's files live: templates/ and static/, beside this module.

The pages render the templates (pages/ui.py) and serve static/ at `/static`; the tracking API
serves static/t.js at `/t.js` (api/tracking.py)."""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"
