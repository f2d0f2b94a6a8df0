"""The `tenantry` command: servers, migrations and operator tools, one module per group."""
