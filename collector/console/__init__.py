"""The staff console: server-rendered pages over the billing, fleet and ingest data (pure view
builders and rules here; reads in ``collector.storage``; routes in
``collector.api.console_routes``)."""
