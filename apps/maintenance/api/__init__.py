"""The maintenance agent's API by area: tickets, alerts and threshold rules, maintenance windows,
node health and predictions, and the model registry; routes in apps/maintenance/api_urls.py.
Everything is scoped by the TICKET_MANAGE matrix through apps.maintenance.selectors."""
