"""The web app's pages, templates and static assets (GOV.UK Design System, not a GOV.UK service).

- ``templates/``: Jinja templates; ``base.html`` is the layout (skip link, service navigation with the
  partnership's name, ``<main id="main-content">``, footer). Macros come from govuk-frontend-jinja.
- ``static/``: built by ``make assets`` (``npm ci``; govuk-frontend's JS, the stylesheet compiled with our
  font stack, Swagger UI); never committed.
- ``render.py``: ``page()``, the filters (``words``, ``london``, ``long_date``...) and the navigation.
- ``auth.py``: login and logout, the session cookie, the role guards ``signed_in_as`` and ``posted_by``.
- ``security.py``: security headers on every response and the CSRF check.
- one module per area of pages (``inbox.py``, ...), each with its own ``APIRouter``, wired in
  ``pipeline.entrypoints.web.ROUTERS``.
"""
