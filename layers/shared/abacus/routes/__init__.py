"""The API's routes, one Powertools router per part: each function includes the routers it serves
(template.yaml sends it their paths), and the OpenAPI document is generated from all of them.

Handlers take what they need by injection (Depends(admin_project), Request) rather than from the
router's current event, so a router can also be included in the resolver that builds the document.
Admin routes share routes/admin.py (the admin key, by injection); the console's routes share
routes/console_access.py (the signed-in session and the CSRF check, by injection).

May import: every package of Abacus; nothing imports routes but the functions' handlers (and the
OpenAPI document's generator).
"""
