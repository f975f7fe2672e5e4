"""SQL for each entity of the system of record, one module per entity."""
