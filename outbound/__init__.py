"""Outbound connections to addresses that customers configure (webhooks; later SIEM streams).

A plain package, not a Django app: no models, no views, no settings of its own. Callers pass
their own policy (allow private addresses in development, timeouts), so a feature app can use it
without importing another feature app.
"""
