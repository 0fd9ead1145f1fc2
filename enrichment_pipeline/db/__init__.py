"""PostgreSQL: URLs, the embedded server, the one resource that owns every connection, migrations."""
