"""The energy API (/api/v1/energy/...) by area: sources and emission factors, sites (caps and
outlook), hourly rates (batch and CSV import), consumption (its summary, a job's energy) and a
node's opportunities; routes in apps/energy/api_urls.py. Management is scoped by ENERGY_MANAGE
through apps.energy.selectors; consumption also by JOB_VIEW for the people whose jobs it is."""

from apps.users.permissions import action_required
from apps.users.roles import Action

MANAGE = action_required(Action.ENERGY_MANAGE)
