"""SenML (RFC 8428) packs in JSON and CBOR: resolution into records, readings and batches."""
