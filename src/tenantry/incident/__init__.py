"""Incidents: status posts as they move, the public status notice, mail to the affected
tenants' owners, and the post-incident timeline."""
