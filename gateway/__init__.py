"""The edges: REST and WebSocket endpoints, authentication, and batching toward actors."""
