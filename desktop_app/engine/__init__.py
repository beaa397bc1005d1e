"""The engine: model processes, the wire they speak, and the backends that generate."""
