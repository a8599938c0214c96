"""Operating Tally's database: roles, health of background jobs, retention and archive."""
