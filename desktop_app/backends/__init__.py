"""Inference backends: each turns a prompt into tokens; the worker process drives one."""
