"""Customer portal view models: consumption clipped to a customer's subscriptions, calendar
navigation in the customer's zone, inline SVG charts and server-rendered HTML pages.

Pure code (no database, no clock): the storage layer (``collector.storage.portal_queries``)
loads what a page needs and ``collector.api.portal_routes`` glues the two together.
"""
