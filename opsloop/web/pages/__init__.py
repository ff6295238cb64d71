"""The browser UI: one router per page module, built on ui.py (whose docstring says how to add a
page), with the helpers only pages use. Templates and static files are in opsloop/web/templates/
and opsloop/web/static/ (located by opsloop/web/assets.py)."""
