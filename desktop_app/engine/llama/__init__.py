"""llama.cpp through llama-cpp-python: the only place that imports it (with the model process and bench)."""
