"""State and its rules: the interaction shard actors and the feed shard actors."""
