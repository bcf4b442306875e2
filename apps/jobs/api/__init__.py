"""The jobs API by area (jobs, vendor parts, the node work API, templates); routes in
apps/jobs/api_urls.py."""
