"""PostgreSQL/TimescaleDB storage: the only place in Tally that writes SQL."""
