"""Browser sign-in for the customer portal and the staff console: one-time codes and links
exchanged for server-side sessions (pure rules here; storage in
``collector.storage.signin_store``; routes in ``collector.api.signin_routes``)."""
