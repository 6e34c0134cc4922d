"""Adapters to Kafka, Cassandra, Redis and the search index, and the projections."""
